"""evaluate: test-set metrics of the trained replicates and of their ensemble, plus the validation summary.

    python -m stages.evaluate <task>    writes data/metrics/<task>.json and data/metrics/<task>_replicates.json

Headline keys (IMDB, Reuters `test.accuracy`, `test.loss`; housing `test.mae`, `test.mse`, `kfold.mean_mae`)
are means over the replicates, each with `_std`, `_ci95_low`, `_ci95_high`, `_min`, `_max` (chapter4/stats.py).
`test.ensemble_accuracy` / `test.ensemble_mae`: the replicates' predicted probabilities (prices) averaged, then
scored once. `test.random_baseline`: the metric for the test labels shuffled, as the book does for Reuters
(~0.19); `validate.best_epoch` and the fold table from the validation runs. <task>_replicates.json holds each
replicate's value of every headline key (what `python -m stages.compare` tests). Runs with numpy (no TensorFlow).
"""
import sys

import numpy as np

from chapter4 import inference, io, network, params, stats, tasks


def random_baseline(spec, y, seed):
    """The book's baseline: how well the shuffled test labels "predict" the real ones."""
    shuffled = y.copy()
    np.random.RandomState(seed).shuffle(shuffled)
    if spec.regression:
        return float(np.mean(np.abs(shuffled - y)))
    return float(np.mean(shuffled == y))


def test_metrics(spec, loss, y, pred):
    if spec.regression:
        return {"mae": network.loss("mae", y, pred), "mse": network.loss("mse", y, pred)}
    return {"accuracy": network.metric("accuracy", y, pred), "loss": network.loss(loss, y, pred)}


def main(task):
    spec = tasks.get(task)
    p = params.load("evaluate", task)
    test = io.read_npz(f"data/encoded/{task}/test.npz")
    summary = io.read_json(f"data/validate/{task}/summary.json")
    models = inference.Ensemble(f"data/model/{task}")
    x = {"indptr": test["indptr"], "indices": test["indices"]} if spec.text else {"x": test["x"]}
    preds = models.predict_each(**x)
    each = [test_metrics(spec, models.loss, test["y"], pred) for pred in preds]
    replicates = {f"test.{k}": [round(m[k], 6) for m in each] for k in each[0]}    # summarized as stored
    metrics = {"test": {k: v for name in each[0] for k, v in stats.summary(name, replicates[f"test.{name}"]).items()}}
    ensemble = test_metrics(spec, models.loss, test["y"], np.mean(preds, axis=0, dtype=np.float64))
    metrics["test"][f"ensemble_{spec.metric}"] = round(ensemble[spec.metric], 6)
    metrics["test"]["random_baseline"] = round(random_baseline(spec, test["y"], p["seed"]), 6)
    metrics["test"]["replicates"] = len(preds)
    metrics["validate"] = {k: v for k, v in summary.items() if k not in ("kfold", "replicates", "per_replicate")}
    if spec.kfold:
        metrics["kfold"] = summary["kfold"]
    replicates |= summary.get("per_replicate", {})
    io.write_json(f"data/metrics/{task}.json", metrics)
    io.write_json(f"data/metrics/{task}_replicates.json",
                  {"replicates": len(preds), "seeds": stats.seeds(p["seed"], len(preds)), **replicates})
    print(f"evaluate@{task}: {metrics}")


if __name__ == "__main__":
    main(*sys.argv[1:])
