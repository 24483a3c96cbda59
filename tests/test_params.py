"""params.load hands a stage exactly the keys dvc.yaml declares for it, validated."""
import json
import re
import sys

import pytest
import yaml

from chapter4 import params, tasks
from tests.conftest import ROOT, new_project, run, set_params

STAGES = ("encode", "split", "validate", "train", "evaluate")


def dvc_declared():
    """{stage address: set of params keys} as DVC itself resolves dvc.yaml."""
    from dvc.dependency.param import ParamsDependency
    from dvc.repo import Repo
    with Repo(str(ROOT)) as repo:
        return {s.addressing: {k for d in s.deps if isinstance(d, ParamsDependency) for k in d.params}
                for s in repo.index.stages if s.addressing != "params"}   # (that one checks them all)


def test_loader_knows_exactly_what_dvc_declares():
    dvc = dvc_declared()
    for stage in STAGES:
        for task in tasks.TASKS:
            assert set(params.declared(stage, task)) == dvc[f"{stage}@{task}"]
            assert set(params.load(stage, task)) == {k.split(".")[-1] for k in dvc[f"{stage}@{task}"]}
    for stage in ("download", "plot"):
        assert all(not dvc[f"{stage}@{t}"] for t in tasks.TASKS)


def test_every_params_key_is_read_by_some_stage():
    doc = yaml.safe_load((ROOT / "params.yaml").read_text())
    keys = {f"{t}.{k}" for t in tasks.TASKS for k in doc[t]} | {k for k in doc if k not in tasks.TASKS}
    read = set().union(*dvc_declared().values())
    assert keys == read


def test_params_stage_depends_on_the_whole_params_file():
    """Any edit of params.yaml (a new top-level key too) re-runs the check; a `params:` list would only repeat
    the file's keys in dvc.lock."""
    from dvc.dependency.param import ParamsDependency
    from dvc.repo import Repo
    with Repo(str(ROOT)) as repo:
        [stage] = [s for s in repo.index.stages if s.addressing == "params"]
        assert "params.yaml" in {d.def_path for d in stage.deps}
        assert not [d for d in stage.deps if isinstance(d, ParamsDependency)]


def test_stage_code_reads_params_only_through_the_loader():
    """No stage opens params.yaml itself: the loader is the one door, so an undeclared read is impossible. Stage
    code: every file a stage of dvc.yaml executes (its import closure; the sweep, which writes points'
    params.yaml through DVC, is no stage)."""
    from tests.test_deps import STAGE_BODIES, closure
    files = {f for module, _ in STAGE_BODIES.values() for f in closure(module)}
    assert "chapter4/params.py" in files and "stages/train.py" in files
    for f in sorted(files - {"chapter4/params.py"}):
        assert "params.yaml" not in (ROOT / f).read_text().replace('"params.yaml: ', ""), f


def test_a_stage_never_sees_an_undeclared_key():
    p = params.load("train", "reuters")
    assert "holdout_epochs" not in p and "num_words" not in p and "val_size" not in p
    with pytest.raises(KeyError):
        p["num_words"]


# One bad value for every key in params.yaml (at least): (key, value, message tail).
BAD = [
    ("seed", -1, "seed must be an integer >= 0 and <= 2147483647, got -1"),
    ("seed", "x", "seed must be an integer"),
    ("imdb.num_words", 0, "imdb.num_words must be an integer >= 4 and <= 88588, got 0"),
    ("imdb.num_words", 100000, "imdb.num_words must be an integer >= 4 and <= 88588, got 100000"),
    ("reuters.num_words", 1.5, "reuters.num_words must be an integer >= 4 and <= 30983, got 1.5"),
    ("reuters.test_split", 1.0, "reuters.test_split must be a number strictly between 0 and 1, got 1.0"),
    ("housing.test_split", 0, "housing.test_split must be a number strictly between 0 and 1, got 0"),
    ("imdb.val_size", 0, "imdb.val_size must be an integer >= 1, got 0"),
    ("reuters.val_size", "1000", "reuters.val_size must be an integer >= 1, got '1000'"),
    ("housing.k", 1, "housing.k must be an integer >= 2, got 1"),
    ("imdb.holdout_epochs", 0, "imdb.holdout_epochs must be an integer >= 1, got 0"),
    ("reuters.holdout_epochs", True, "reuters.holdout_epochs must be an integer >= 1, got True"),
    ("housing.kfold_epochs", -5, "housing.kfold_epochs must be an integer >= 1, got -5"),
    ("housing.kfold_table_epoch", 0, "housing.kfold_table_epoch must be an integer >= 1, got 0"),
    ("reuters.epochs", -1, "reuters.epochs must be an integer >= 1, got -1"),
    ("imdb.epochs", None, "imdb.epochs must be an integer >= 1, got None"),
    ("housing.epochs", 2.5, "housing.epochs must be an integer >= 1, got 2.5"),
    ("imdb.batch_size", 0, "imdb.batch_size must be an integer >= 1, got 0"),
    ("reuters.batch_size", -512, "reuters.batch_size must be an integer >= 1, got -512"),
    ("housing.batch_size", "16", "housing.batch_size must be an integer >= 1, got '16'"),
    ("imdb.units", [], "imdb.units must be a non-empty list of integers >= 1, got []"),
    ("reuters.units", [64, 0], "reuters.units must be a non-empty list of integers >= 1, got [64, 0]"),
    ("housing.units", 64, "housing.units must be a non-empty list of integers >= 1, got 64"),
    ("imdb.activation", "relux", "imdb.activation must be one of relu, tanh, sigmoid"),
    ("reuters.activation", 1, "reuters.activation must be one of"),
    ("housing.activation", "softmax", "housing.activation must be one of"),
    ("imdb.loss", "categorical_crossentropy", "imdb.loss must be one of binary_crossentropy, mse, got"),
    ("reuters.loss", "mse", "reuters.loss must be one of categorical_crossentropy, sparse_categorical"),
    ("housing.loss", "binary_crossentropy", "housing.loss must be one of mse, mae, huber, got"),
    ("imdb.optimizer", "adamax9", "imdb.optimizer must be one of rmsprop, adam, sgd"),
    ("reuters.optimizer", None, "reuters.optimizer must be one of"),
    ("housing.optimizer", "", "housing.optimizer must be one of"),
    ("imdb.learning_rate", 0, "imdb.learning_rate must be a number > 0 and < 10, got 0"),
    ("reuters.learning_rate", -0.1, "reuters.learning_rate must be a number > 0 and < 10, got -0.1"),
    ("housing.learning_rate", "fast", "housing.learning_rate must be a number > 0 and < 10, got 'fast'"),
]


def all_keys():
    doc = yaml.safe_load((ROOT / "params.yaml").read_text())
    return {f"{t}.{k}" for t in tasks.TASKS for k in doc[t]} | {"seed"}


def test_bad_value_table_covers_every_key():
    assert {key for key, _, _ in BAD} == all_keys()


@pytest.mark.parametrize("key,value,message", BAD, ids=[f"{k}={v!r}" for k, v, _ in BAD])
def test_bad_value_is_refused_in_one_line(tmp_path, key, value, message):
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    set_params(tmp_path, **{key: value})
    task = key.split(".")[0] if "." in key else "reuters"
    stage = next(s for s in STAGES if key in params.declared(s, task, ROOT / "dvc.yaml"))
    with pytest.raises(SystemExit) as err:
        params.load(stage, task, tmp_path / "params.yaml", ROOT / "dvc.yaml")
    text = str(err.value.code)
    assert text.startswith(f"params.yaml: {message}") and "\n" not in text


def test_table_epoch_must_not_pass_the_last_epoch(tmp_path):
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    set_params(tmp_path, **{"housing.kfold_epochs": 50})
    with pytest.raises(SystemExit, match=r"^params.yaml: housing.kfold_table_epoch must be <= "
                                         r"housing.kfold_epochs \(50\), got 100$"):
        params.load("validate", "housing", tmp_path / "params.yaml", ROOT / "dvc.yaml")


@pytest.mark.slow
def test_data_dependent_bounds_are_refused_before_writing(raw, tmp_path):
    """val_size >= training samples, k > training samples: one line, and data/ is untouched."""
    project = new_project(tmp_path / "p")
    for key, value, stage, message in [
        ("reuters.val_size", 8982, "split", "params.yaml: reuters.val_size must be an integer >= 1 and < 8982, got 8982"),
        ("housing.k", 405, "split", "params.yaml: housing.k must be an integer >= 2 and <= 404, got 405"),
    ]:
        task = key.split(".")[0]
        run(f"cp -r {raw / task} data_raw_{task} && mkdir -p data/raw && rm -rf data/raw/{task} "
            f"&& mv data_raw_{task} data/raw/{task}", project)
        run(f"python -m stages.encode {task} && python -m stages.split {task}", project)
        before = {p: p.read_bytes() for p in (project / "data").rglob("*") if p.is_file()}
        set_params(project, **{key: value})
        proc = run([sys.executable, "-m", f"stages.{stage}", task], project, check=False)
        assert proc.returncode != 0
        assert proc.stderr.strip().splitlines()[-1] == message
        after = {p: p.read_bytes() for p in (project / "data").rglob("*") if p.is_file()}
        assert after == before
        run("git checkout params.yaml", project)


def insert_after(text, pattern, line):
    """params.yaml's text with `line` inserted after the first line matching `pattern`; and both line numbers."""
    lines = text.splitlines()
    at = next(i for i, s in enumerate(lines) if re.match(pattern, s))
    return "\n".join(lines[:at + 1] + [line] + lines[at + 1:]) + "\n", at + 1, at + 2


def strict_case(edit):
    """(text of params.yaml, {first, line}) for an edit of the real file."""
    text = (ROOT / "params.yaml").read_text()
    if isinstance(edit, tuple):
        text, first, line = insert_after(text, *edit)
        return text, {"first": first, "line": line}
    return edit(text), {}


# A file DVC would happily run with, or one PyYAML would read with a surprise: (edit, exact one-line message).
STRICT = [
    (("seed:", "seeds: 1"), "params.yaml: seeds is not a known key (did you mean seed?)"),
    (("  epochs: 9", "  epoch: 5"), "params.yaml: reuters.epoch is not a known key (did you mean reuters.epochs?)"),
    (("  k: 4", "  batchsize: 8"),
     "params.yaml: housing.batchsize is not a known key (did you mean housing.batch_size?)"),
    (lambda t: t.replace("reuters:", "reuter:"), "params.yaml: reuter is not a known key (did you mean reuters?)"),
    (("seed:", "epochs: 9"),
     "params.yaml: epochs is not a known key (did you mean housing.epochs or imdb.epochs or reuters.epochs?)"),
    (lambda t: t + "zzz_unrelated: 1\n", "params.yaml: zzz_unrelated is not a known key"),
    (("  epochs: 9", "  epochs: 10"),
     "params.yaml: line {line}: reuters.epochs is given twice (first on line {first})"),
    (("seed:", "seed: 43"), "params.yaml: line {line}: seed is given twice (first on line {first})"),
    (lambda t: "seed: 42\nimdb: {num_words: 10000\nreuters: {}\n",
     "params.yaml: line 3, column 8: did not find expected ',' or '}'"),
    (lambda t: "seed: 42\n\timdb: {}\n",
     "params.yaml: line 2, column 1: found a tab character that violates indentation"),
    (lambda t: "seed: 42\n  imdb: 1\n",
     "params.yaml: line 2, column 7: mapping values are not allowed in this context"),
    (lambda t: "seed: 42\nimdb:\n  epochs: 4\a\n",
     "params.yaml: line 3, column 12: unacceptable character #x0007: control characters are not allowed"),
    (lambda t: "seed: 1\n---\nseed: 2\n", "params.yaml: line 2, column 1: but found another document"),
    (lambda t: "", "params.yaml: the file is empty: expected seed, the task sections imdb, reuters, housing, ..."),
    (lambda t: "# nothing here\n", "params.yaml: the file is empty: expected seed, the task sections imdb, reuters, "
                                   "housing, ..."),
    (lambda t: "- seed\n- 42\n",
     "params.yaml: expected a mapping of keys (seed: 42, imdb: ...), got list ['seed', 42]"),
    (lambda t: "42\n", "params.yaml: expected a mapping of keys (seed: 42, imdb: ...), got int 42"),
    (lambda t: t.replace("seed: 42", "seed: \xe9"), None),      # (written as latin-1 below: not UTF-8)
]


@pytest.mark.parametrize("edit,message", STRICT, ids=[m.split(": ", 1)[1][:50] if m else "not utf-8"
                                                      for _, m in STRICT])
def test_params_file_is_read_strictly(tmp_path, edit, message):
    text, lines = strict_case(edit)
    if message is None:
        data = text.encode("latin-1")
        message = f"params.yaml: not UTF-8 text (byte {data.index(bytes([0xe9])) + 1})"
    else:
        data, message = text.encode(), message.format(**lines) if lines else message
    (tmp_path / "params.yaml").write_bytes(data)
    with pytest.raises(SystemExit) as err:
        params.check_all(tmp_path / "params.yaml", ROOT / "dvc.yaml")
    assert str(err.value.code) == message


def test_params_stage_reports_one_line_and_writes_nothing(tmp_path):
    project = new_project(tmp_path / "p")
    text, first, line = insert_after((project / "params.yaml").read_text(), "  epochs:", "  epochs: 3")
    (project / "params.yaml").write_text(text)
    proc = run([sys.executable, "-m", "stages.params"], project, check=False)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr == f"params.yaml: line {line}: imdb.epochs is given twice (first on line {first})\n"
    assert not (project / "data").exists()
    (project / "params.yaml").unlink()
    proc = run([sys.executable, "-m", "stages.params"], project, check=False)
    assert (proc.returncode, proc.stderr) == (1, "params.yaml: No such file or directory\n")


def test_known_keys_are_what_dvc_yaml_declares():
    doc = yaml.safe_load((ROOT / "params.yaml").read_text())
    leaves = {f"{t}.{k}" for t in tasks.TASKS for k in doc[t]} | {k for k in doc if k not in tasks.TASKS}
    assert params.known_keys(ROOT / "dvc.yaml") == leaves | set(tasks.TASKS)
    assert params.read_params(ROOT / "params.yaml", ROOT / "dvc.yaml") == doc      # same values as before


def data_files(project):
    return {p: p.read_bytes() for p in (project / "data").rglob("*") if p.is_file()}


@pytest.mark.slow
def test_exp_run_with_a_new_top_level_key_is_refused_and_data_untouched(clone, mirror):
    """DVC refuses `-S epochs=9` (no such key) and hints `+epochs=9`; that one adds the key, and our check (the
    `params` stage depends on the whole params.yaml) refuses it in one line naming the keys meant."""
    env = {"DATASETS_MIRROR": str(mirror)}
    before = data_files(clone)
    proc = run("dvc exp run -S epochs=9", clone, env=env, check=False)
    assert proc.returncode != 0 and "use +epochs=9" in proc.stderr, proc.stderr
    proc = run("dvc exp run -S +epochs=9", clone, env=env, check=False)
    assert proc.returncode != 0
    assert ("params.yaml: epochs is not a known key (did you mean housing.epochs or imdb.epochs or reuters.epochs?)"
            in (proc.stdout + proc.stderr).splitlines()), proc.stdout + proc.stderr
    assert re.findall(r"Running stage '([^']+)'", proc.stdout) == ["params"]
    assert data_files(clone) == before
    assert run("dvc exp list --all-commits --name-only", clone).stdout.strip() == ""     # no experiment recorded


@pytest.mark.slow
def test_any_change_to_params_yaml_reruns_the_check_and_only_it(clone):
    before = data_files(clone)
    (clone / "params.yaml").write_text((clone / "params.yaml").read_text() + "# a comment\n")
    assert set(json.loads(run("dvc status --json", clone).stdout)) == {"params"}
    proc = run("dvc repro", clone)
    assert re.findall(r"Running stage '([^']+)'", proc.stdout) == ["params"], proc.stdout
    assert data_files(clone) == before
    (clone / "params.yaml").write_text((clone / "params.yaml").read_text() + "zzz_unrelated: 1\n")
    proc = run("dvc repro", clone, check=False)
    assert proc.returncode != 0 and "params.yaml: zzz_unrelated is not a known key" in proc.stderr.splitlines()
    assert data_files(clone) == before


def test_params_allow_exactly_the_networks_names():
    """The check reads its names from chapter4/network.py, where each is defined once: every hidden-layer
    activation and optimizer there passes, a head's softmax and a name not there do not, and every loss a task
    allows is one the network computes."""
    from chapter4 import network
    for name in network.HIDDEN_ACTIVATIONS:
        params.check("imdb.activation", name, "imdb")
    for name in network.OPTIMIZERS:
        params.check("imdb.optimizer", name, "imdb")
    for key, bad in (("imdb.activation", "softmax"), ("imdb.activation", "relu6"), ("imdb.optimizer", "adamax")):
        with pytest.raises(SystemExit, match=f"{key} must be one of"):
            params.check(key, bad, "imdb")
    assert set(network.HIDDEN_ACTIVATIONS) == set(network.ACTIVATIONS) - {"softmax"}
    for spec in tasks.TASKS.values():
        assert set(spec.losses) <= set(network.LOSSES), spec.name
        assert spec.metric in network.METRICS
