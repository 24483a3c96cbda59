"""The real pipeline under the real `dvc` CLI, on the real data, with small epoch counts."""
import json
import re

import numpy as np
import pytest
import yaml

from chapter4 import tasks
from tests.conftest import run, set_params

HEADLINE = {"imdb": ["test.accuracy", "test.loss"], "reuters": ["test.accuracy", "test.loss"],
            "housing": ["test.mae", "test.mse", "kfold.mean_mae"]}
SPREAD = ("_std", "_ci95_low", "_ci95_high", "_min", "_max")
METRIC_KEYS = {
    "imdb": {"test.random_baseline", "test.ensemble_accuracy", "test.replicates", "validate.best_epoch",
             "validate.best_val_loss", "validate.best_val_accuracy"},
    "reuters": {"test.random_baseline", "test.ensemble_accuracy", "test.replicates", "validate.best_epoch",
                "validate.best_val_loss", "validate.best_val_accuracy"},
    "housing": {"test.random_baseline", "test.ensemble_mae", "test.replicates", "validate.best_epoch",
                "validate.best_val_mae", "kfold.epoch", "kfold.fold0_mae", "kfold.fold1_mae", "kfold.fold2_mae",
                "kfold.fold3_mae"},
}
for _task, _keys in HEADLINE.items():
    METRIC_KEYS[_task] |= {k + s for k in _keys for s in ("",) + SPREAD}
PLOTS = {"imdb": {"loss.png", "accuracy.png"}, "reuters": {"loss.png", "accuracy.png"},
         "housing": {"val_mae.png", "val_mae_from_epoch_11.png"}}


def flat(d, prefix=""):
    out = {}
    for k, v in d.items():
        out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def ran(proc):
    """Stages DVC reproduced: run, or restored from the run-cache (which the clones share with `pipeline`)."""
    return set(re.findall(r"Running stage '([^']+)'", proc.stdout)
               + re.findall(r"Stage '([^']+)' is cached - skipping run", proc.stdout))


def test_metrics_and_plots_of_every_task(pipeline):
    for task in tasks.TASKS:
        metrics = flat(json.loads((pipeline / f"data/metrics/{task}.json").read_text()))
        assert set(metrics) == METRIC_KEYS[task]
        assert metrics["test.replicates"] == 3
        assert {p.name for p in (pipeline / f"data/plots/{task}").iterdir()} == PLOTS[task]
        for png in (pipeline / f"data/plots/{task}").iterdir():
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        history = json.loads((pipeline / f"data/validate/{task}/history.json").read_text())
        assert [r["epoch"] for r in history] == ([1, 2] if task != "housing" else [1, 2, 3])
        watch = "val_mae" if task == "housing" else "val_loss"
        assert {watch, f"{watch}_std", f"{watch}_min", f"{watch}_max"} <= set(history[0])
    shown = json.loads(run("dvc metrics show --json", pipeline).stdout)
    files = shown[""]["data"]
    assert {f"data/metrics/{t}.json" for t in tasks.TASKS} <= set(files)
    assert 0 <= flat(files["data/metrics/reuters.json"]["data"])["test.accuracy"] <= 1


def test_metrics_are_the_replicates_summaries(pipeline):
    """Each headline key is the mean of the per-replicate values beside it, with their sample sd, Student-t 95%
    interval of the mean (scipy), min and max; the ensemble is scored from the replicates' averaged outputs."""
    from scipy import stats
    for task, keys in HEADLINE.items():
        metrics = flat(json.loads((pipeline / f"data/metrics/{task}.json").read_text()))
        values = json.loads((pipeline / f"data/metrics/{task}_replicates.json").read_text())
        assert values["replicates"] == 3 and values["seeds"] == [42, 1042, 2042]
        for key in keys:
            v = np.array(values[key])
            assert len(v) == 3 and len(set(v.tolist())) == 3                       # replicates differ
            low, high = stats.t.interval(0.95, 2, loc=v.mean(), scale=v.std(ddof=1) / np.sqrt(3))
            assert metrics[key] == pytest.approx(v.mean(), abs=1e-6)
            assert metrics[key + "_std"] == pytest.approx(v.std(ddof=1), abs=1e-6) and metrics[key + "_std"] > 0
            assert metrics[key + "_ci95_low"] == pytest.approx(low, abs=1e-6)
            assert metrics[key + "_ci95_high"] == pytest.approx(high, abs=1e-6)
            assert (metrics[key + "_min"], metrics[key + "_max"]) == (v.min(), v.max())
            assert metrics[key + "_ci95_low"] <= metrics[key] <= metrics[key + "_ci95_high"]
    pred = (pipeline / "data/predict/housing/test.csv").read_text().splitlines()[1:]
    actual, ensemble = np.array([[float(f) for f in line.split(",")] for line in pred]).T
    mae = flat(json.loads((pipeline / "data/metrics/housing.json").read_text()))["test.ensemble_mae"]
    assert mae == pytest.approx(np.mean(np.abs(ensemble - actual)), abs=1e-3)   # (test.csv: 4 decimals)


def test_plots_show_renders_the_histories(pipeline):
    shown = json.loads(run("dvc plots show --json", pipeline).stdout)["data"]
    for name, task, y in [("IMDB holdout loss", "imdb", "val_loss"), ("Reuters holdout accuracy", "reuters",
                          "val_accuracy"), ("Housing K-fold validation MAE", "housing", "val_mae")]:
        [plot] = shown[name]
        values = plot["content"]["data"]["values"]
        history = json.loads((pipeline / f"data/validate/{task}/history.json").read_text())
        assert sorted({(v["epoch"], v[y]) for v in values}) == [(r["epoch"], r[y]) for r in history]
    for task, names in PLOTS.items():
        for png in names:
            assert shown[f"data/plots/{task}/{png}"][0]["type"] == "image"


def test_second_repro_runs_nothing(pipeline):
    proc = run("dvc repro", pipeline)
    assert ran(proc) == set()
    assert "up to date" in proc.stdout
    assert run("dvc status --json", pipeline).stdout.strip() in ("{}", "")


# For each key, the stages whose declared params change (DVC re-runs these and what depends on their outputs).
ALT = {"seed": 43, "replicates": 2, "num_words": 5000, "test_split": 0.25, "val_size": 500, "k": 3, "holdout_epochs": 3,
       "kfold_epochs": 4, "kfold_table_epoch": 1, "epochs": 3, "batch_size": 128, "units": [8],
       "activation": "tanh", "optimizer": "adam", "learning_rate": 0.01,
       "loss": {"imdb": "mse", "reuters": "sparse_categorical_crossentropy", "housing": "mae"}}
DIRECT = {"num_words": ["encode"], "test_split": ["encode"], "val_size": ["split"], "k": ["split"],
          "holdout_epochs": ["validate"], "kfold_epochs": ["validate"], "kfold_table_epoch": ["validate"],
          "epochs": ["train"]}
MODEL = ["validate", "train"]


def expected(key):
    """`params` (the check of every key) plus the stages that declare `key`."""
    if key == "seed":
        return {"params"} | {f"{s}@{t}" for s in ("validate", "train", "evaluate") for t in tasks.TASKS}
    if key == "replicates":
        return {"params"} | {f"{s}@{t}" for s in ("validate", "train") for t in tasks.TASKS}
    task, name = key.split(".")
    return {"params"} | {f"{s}@{task}" for s in DIRECT.get(name, MODEL)}


def every_key(project):
    doc = yaml.safe_load((project / "params.yaml").read_text())
    return ["seed", "replicates"] + [f"{t}.{k}" for t in tasks.TASKS for k in doc[t]]


def test_each_param_key_changes_exactly_its_stages(pipeline):
    keys = every_key(pipeline)
    assert len(keys) == 34
    original = (pipeline / "params.yaml").read_text()
    try:
        for key in keys:
            name = key.split(".")[-1]
            value = ALT[name][key.split(".")[0]] if isinstance(ALT[name], dict) else ALT[name]
            set_params(pipeline, **{key: value})
            changed = set(json.loads(run("dvc status --json", pipeline).stdout or "{}"))
            assert changed == expected(key), key
            (pipeline / "params.yaml").write_text(original)
    finally:
        (pipeline / "params.yaml").write_text(original)


def test_exp_run_epochs_reruns_only_that_tasks_training(clone, mirror):
    proc = run("dvc exp run -S reuters.epochs=2", clone, env={"DATASETS_MIRROR": str(mirror)})
    assert ran(proc) == {"params", "train@reuters", "evaluate@reuters", "predict@reuters"}
    proc = run("dvc exp run -S housing.epochs=3", clone, env={"DATASETS_MIRROR": str(mirror)})
    assert ran(proc) == {"params", "train@housing", "evaluate@housing", "predict@housing"}


@pytest.mark.parametrize("change,message", [
    ({"reuters.epochs": -1}, "params.yaml: reuters.epochs must be an integer >= 1, got -1"),
    ({"reuters.epoch": 5}, "params.yaml: reuters.epoch is not a known key (did you mean reuters.epochs?)"),
])
def test_bad_param_stops_repro_and_keeps_outputs(clone, mirror, change, message):
    before = {p: p.read_bytes() for p in (clone / "data").rglob("*") if p.is_file()}
    set_params(clone, **change)
    proc = run("dvc repro", clone, env={"DATASETS_MIRROR": str(mirror)}, check=False)
    assert proc.returncode != 0
    assert message in proc.stderr.splitlines()
    after = {p: p.read_bytes() for p in (clone / "data").rglob("*") if p.is_file()}
    assert after == before
