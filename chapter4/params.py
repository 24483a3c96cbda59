"""The only way a stage reads params.yaml: `load(stage, task)`.

It returns exactly the keys dvc.yaml declares for `<stage>@<task>` (read from dvc.yaml itself), validated,
so a stage cannot depend on a key DVC does not track for it. Keys come back without the task prefix:
`load("train", "reuters")["epochs"]` is `reuters.epochs`. A bad value exits with one line:
`params.yaml: reuters.epochs must be an integer >= 1, got -1`. The file is read strictly: a YAML syntax error,
a file that is empty or not a mapping, a key given twice, or a key no stage declares (a typo) exits with one
line too: `params.yaml: reuters.epoch is not a known key (did you mean reuters.epochs?)`.
"""
import difflib
import functools
import types
from pathlib import Path

from chapter4 import network, tasks, yamlfile


class ParamError(SystemExit):
    def __init__(self, key, what, value):
        super().__init__(f"params.yaml: {key} must be {what}, got {value!r}")


def _int(lo, hi=None):
    def check(key, v, task):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo or (hi is not None and v > hi):
            raise ParamError(key, f"an integer >= {lo}" + (f" and <= {hi}" if hi is not None else ""), v)
    return check


def _float(lo, hi, what):
    def check(key, v, task):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo < v < hi:
            raise ParamError(key, what, v)
    return check


def _choice(options):
    def check(key, v, task):
        if v not in options:
            raise ParamError(key, "one of " + ", ".join(options), v)
    return check


def _loss(key, v, task):
    _choice(tasks.TASKS[task].losses)(key, v, task)


def _units(key, v, task):
    if (not isinstance(v, list) or not v
            or any(isinstance(u, bool) or not isinstance(u, int) or u < 1 for u in v)):
        raise ParamError(key, "a non-empty list of integers >= 1", v)


def _num_words(key, v, task):
    _int(4, tasks.TASKS[task].vocabulary)(key, v, task)


# Type and range of every key in params.yaml (by its name inside a task section). Bounds that depend on
# the data (val_size < training samples, k <= training samples) are checked by the stage that knows it.
CHECKS = {
    "seed": _int(0, 2**31 - 1),
    "replicates": _int(1, 32),
    "num_words": _num_words,
    "test_split": _float(0, 1, "a number strictly between 0 and 1"),
    "val_size": _int(1),
    "k": _int(2),
    "holdout_epochs": _int(1),
    "kfold_epochs": _int(1),
    "kfold_table_epoch": _int(1),
    "epochs": _int(1),
    "batch_size": _int(1),
    "units": _units,
    "activation": _choice(network.HIDDEN_ACTIVATIONS),
    "loss": _loss,
    "optimizer": _choice(network.OPTIMIZERS),
    "learning_rate": _float(0, 10, "a number > 0 and < 10"),
}


def read_params(params_yaml="params.yaml", dvc_yaml="dvc.yaml"):
    """params.yaml's values, read strictly; any problem exits with one line. Callers must not modify them."""
    try:
        data = Path(params_yaml).read_bytes()
    except OSError as e:
        raise SystemExit(f"params.yaml: {e.strerror}") from None
    values = yamlfile.parse_strictly(data)
    _refuse_unknown(values, known_keys(dvc_yaml))
    return values


def known_keys(dvc_yaml="dvc.yaml"):
    """Every params key some stage of dvc.yaml declares: 'seed', 'imdb' (a section), 'imdb.epochs', ..."""
    keys = {key for declared_keys in resolved(dvc_yaml).values() for key in declared_keys}
    return keys | {k.rpartition(".")[0] for k in keys if "." in k}


def _refuse_unknown(values, known, prefix=""):
    """A key no stage declares is a typo: refuse it, naming the closest known key."""
    for k, v in values.items():
        key = f"{prefix}{k}"
        section = any(x.startswith(key + ".") for x in known)
        if key not in known and not section:
            same_name = [x for x in sorted(known) if x.rpartition(".")[2] == str(k)]
            hint = same_name or difflib.get_close_matches(key, sorted(known), n=1)
            raise SystemExit(f"params.yaml: {key} is not a known key"
                             + (f" (did you mean {' or '.join(hint)}?)" if hint else ""))
        if section and isinstance(v, dict):
            _refuse_unknown(v, known, key + ".")


def declared(stage, task, dvc_yaml="dvc.yaml"):
    """The params keys dvc.yaml declares for stage `<stage>@<task>`, e.g. ['seed', 'reuters.epochs']."""
    return resolved(dvc_yaml)[f"{stage}@{task}"]


@functools.lru_cache(maxsize=8)
def resolved(dvc_yaml="dvc.yaml"):
    """{stage: its params keys} for every stage of dvc.yaml as DVC itself resolves it ('params', 'train@imdb',
    ...: `foreach` expanded, `${item.epochs}` interpolated) by its parser, dvc.parsing.DataResolver: the same
    names and keys `dvc repro` tracks (tests/test_params.py compares them with DVC's index). A key is listed once.
    The parser reads only two things of a repository, its file system and its `parsing` config (which shapes
    how a `cmd` is rendered, not params): it gets the local one and the default, not a `dvc.repo.Repo`, whose
    import and set-up cost about 1 s more in every stage (docs/design.md, "Params")."""
    from dvc.exceptions import DvcException
    from dvc.fs import LocalFileSystem
    from dvc.parsing import DataResolver

    path = Path(dvc_yaml).resolve()
    project = types.SimpleNamespace(fs=LocalFileSystem(), config={})
    try:
        resolver = DataResolver(project, str(path.parent), yamlfile.read(path))
        stages = {}
        for name in resolver.get_keys():
            stages.update(resolver.resolve_one(name))
    except DvcException as e:
        raise SystemExit(f"{dvc_yaml}: {e}") from None
    return {name: list(dict.fromkeys(k for k in body.get("params", []) if isinstance(k, str)))
            for name, body in stages.items()}


def check(key, value, task):
    name = key.split(".")[-1]
    CHECKS[name](key, value, task)


def check_all(params_yaml="params.yaml", dvc_yaml="dvc.yaml"):
    """Validate every key every stage declares (the `params` stage): one line and exit 1 on the first bad one."""
    values = read_params(params_yaml, dvc_yaml)     # the file itself first (DVC's parser reads it too), once
    for name, keys in resolved(dvc_yaml).items():
        if "@" in name:                             # a stage of a task: `<stage>@<task>`
            _validated(values, keys, name.split("@")[1])


def load(stage, task, params_yaml="params.yaml", dvc_yaml="dvc.yaml"):
    """Validated values of exactly the keys `<stage>@<task>` declares, keyed without the task prefix."""
    tasks.get(task)
    return _validated(read_params(params_yaml, dvc_yaml), declared(stage, task, dvc_yaml), task)


def _validated(values, keys, task):
    """`keys` of the params `values`, each checked, keyed without the task prefix."""
    out = {}
    for key in keys:
        node = values
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                raise SystemExit(f"params.yaml: {key} is missing")
            node = node[part]
        check(key, node, task)
        out[key.split(".")[-1]] = node
    if out.get("kfold_table_epoch", 0) > out.get("kfold_epochs", float("inf")):
        raise SystemExit(f"params.yaml: {task}.kfold_table_epoch must be <= {task}.kfold_epochs "
                         f"({out['kfold_epochs']}), got {out['kfold_table_epoch']}")
    return out
