"""evaluate: test-set metrics of the trained model, plus the validation summary, into data/metrics/<task>.json.

    python -m stages.evaluate <task>

Keys: `test.loss`, `test.accuracy` (IMDB, Reuters) or `test.mse`, `test.mae` (housing); `test.random_baseline`:
the same metric for the test labels shuffled, as the book does for Reuters (~0.19); `validate.best_epoch`;
housing `kfold.mean_mae` and `kfold.fold<i>_mae`. Runs the model with numpy (no TensorFlow).
"""
import sys

import numpy as np

from stages import inference, io, params, tasks


def random_baseline(spec, y, seed):
    """The book's baseline: how well the shuffled test labels "predict" the real ones."""
    shuffled = y.copy()
    np.random.RandomState(seed).shuffle(shuffled)
    if spec.metric == "mae":
        return float(np.mean(np.abs(shuffled - y)))
    return float(np.mean(shuffled == y))


def test_metrics(spec, model, test):
    pred = (model.predict(indptr=test["indptr"], indices=test["indices"]) if spec.text
            else model.predict(test["x"]))
    y = test["y"]
    if spec.metric == "mae":
        return {"mse": inference.loss("mse", y, pred), "mae": inference.loss("mae", y, pred)}
    return {"loss": inference.loss(model.loss, y, pred), "accuracy": inference.accuracy(y, pred)}


def main(task):
    spec = tasks.get(task)
    p = params.load("evaluate", task)
    test = io.read_npz(f"data/encoded/{task}/test.npz")
    summary = io.read_json(f"data/validate/{task}/summary.json")
    metrics = {"test": test_metrics(spec, inference.Model(f"data/model/{task}.keras"), test)}
    metrics["test"]["random_baseline"] = random_baseline(spec, test["y"], p["seed"])
    metrics["test"] = {k: round(v, 6) for k, v in metrics["test"].items()}
    metrics["validate"] = {k: v for k, v in summary.items() if k != "kfold"}
    if "kfold" in summary:
        metrics["kfold"] = summary["kfold"]
    io.write_json(f"data/metrics/{task}.json", metrics)
    print(f"evaluate@{task}: {metrics}")


if __name__ == "__main__":
    main(*sys.argv[1:])
