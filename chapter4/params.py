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
import re
from pathlib import Path

import yaml

ACTIVATIONS = ("relu", "tanh", "sigmoid", "elu", "selu", "swish", "softplus", "linear")
OPTIMIZERS = ("rmsprop", "adam", "sgd", "adamw", "nadam", "adagrad")


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
    from chapter4.tasks import TASKS
    _choice(TASKS[task].losses)(key, v, task)


def _units(key, v, task):
    if (not isinstance(v, list) or not v
            or any(isinstance(u, bool) or not isinstance(u, int) or u < 1 for u in v)):
        raise ParamError(key, "a non-empty list of integers >= 1", v)


def _num_words(key, v, task):
    from chapter4.tasks import TASKS
    _int(4, TASKS[task].vocabulary)(key, v, task)


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
    "activation": _choice(ACTIVATIONS),
    "loss": _loss,
    "optimizer": _choice(OPTIMIZERS),
    "learning_rate": _float(0, 10, "a number > 0 and < 10"),
}


def read_yaml(path):
    """A YAML file's contents, parsed once per process and text (libyaml's C parser where PyYAML has it).
    Callers must not modify the result."""
    return _parse(Path(path).read_text())


Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@functools.lru_cache(maxsize=8)
def _parse(text):
    return yaml.load(text, Loader=Loader)


def read_params(params_yaml="params.yaml", dvc_yaml="dvc.yaml"):
    """params.yaml's values, read strictly; any problem exits with one line. Callers must not modify them."""
    try:
        data = Path(params_yaml).read_bytes()
    except OSError as e:
        raise SystemExit(f"params.yaml: {e.strerror}") from None
    values = _parse_strictly(data)
    _refuse_unknown(values, known_keys(dvc_yaml))
    return values


@functools.lru_cache(maxsize=8)
def _parse_strictly(data):
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SystemExit(f"params.yaml: not UTF-8 text (byte {e.start + 1})") from None
    loader = Loader(text)
    try:
        node = loader.get_single_node()          # the node tree keeps each key's line: checked, then built
        if node is not None:
            _refuse_duplicates(node)
            values = loader.construct_document(node)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        raise SystemExit(f"params.yaml: line {mark.line + 1}, column {mark.column + 1}: {e.problem}") from None
    except yaml.reader.ReaderError as e:         # a control character
        line, column = text.count("\n", 0, e.position) + 1, e.position - text.rfind("\n", 0, e.position)
        raise SystemExit(f"params.yaml: line {line}, column {column}: unacceptable character #x{e.character:04x}: "
                         f"{e.reason}") from None
    finally:
        loader.dispose()
    if node is None:
        raise SystemExit("params.yaml: the file is empty: expected seed, the task sections imdb, reuters, housing, ...")
    if not isinstance(values, dict):
        raise SystemExit(f"params.yaml: expected a mapping of keys (seed: 42, imdb: ...), got {type(values).__name__} "
                         f"{values!r:.40}")
    return values


def _refuse_duplicates(node, prefix=""):
    """YAML lets a later `epochs:` silently win over an earlier one in the same mapping; we do not."""
    if isinstance(node, yaml.MappingNode):
        first = {}
        for key, value in node.value:
            name = f"{prefix}{key.value}"
            line = key.start_mark.line + 1
            if name in first:
                raise SystemExit(f"params.yaml: line {line}: {name} is given twice (first on line {first[name]})")
            first[name] = line
            _refuse_duplicates(value, name + ".")
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _refuse_duplicates(item, prefix)


def known_keys(dvc_yaml="dvc.yaml"):
    """Every params key some stage of dvc.yaml declares: 'seed', 'imdb' (a section), 'imdb.epochs', ..."""
    from chapter4.tasks import TASKS
    keys = set()
    for stage, body in read_yaml(dvc_yaml)["stages"].items():
        if "foreach" in body:
            for task in TASKS:
                keys.update(declared(stage, task, dvc_yaml))
        else:
            keys.update(k for k in body.get("params", []) if isinstance(k, str))
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
    doc = read_yaml(dvc_yaml)
    item = {}
    for entry in doc.get("vars", []):
        if isinstance(entry, dict) and "tasks" in entry:
            item = entry["tasks"][task]
    names = {"key": task, **{f"item.{k}": v for k, v in item.items()}}
    keys = []
    for entry in doc["stages"][stage]["do"].get("params", []):
        key = re.sub(r"\$\{([\w.]+)\}", lambda m: str(names[m.group(1)]), entry)
        if key not in keys:
            keys.append(key)
    return keys


def check(key, value, task):
    name = key.split(".")[-1]
    CHECKS[name](key, value, task)


def check_all(params_yaml="params.yaml", dvc_yaml="dvc.yaml"):
    """Validate every key every stage declares (the `params` stage): one line and exit 1 on the first bad one."""
    from chapter4.tasks import TASKS
    doc = read_yaml(dvc_yaml)
    for stage, body in doc["stages"].items():
        if "foreach" in body:
            for task in TASKS:
                load(stage, task, params_yaml, dvc_yaml)


def load(stage, task, params_yaml="params.yaml", dvc_yaml="dvc.yaml"):
    """Validated values of exactly the keys `<stage>@<task>` declares, keyed without the task prefix."""
    from chapter4.tasks import get
    get(task)
    values = read_params(params_yaml, dvc_yaml)
    out = {}
    for key in declared(stage, task, dvc_yaml):
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
