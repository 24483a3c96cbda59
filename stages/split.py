"""split: which training samples validate which run.

    python -m stages.split <task>     reads data/encoded/<task>/train.npz, writes data/split/<task>.npz

`fold[i]` is the validation fold of training sample i, or -1 for samples that are always trained on.
Holdout (IMDB, Reuters): the first `val_size` samples are fold 0. K-fold (housing): k contiguous folds of
len(train) // k samples, as the book slices them; the remainder is always trained on.
"""
import sys

import numpy as np

from chapter4 import io, params, tasks


def holdout(n, val_size):
    fold = np.full(n, -1, dtype=np.int8)
    fold[:val_size] = 0
    return fold


def kfold(n, k):
    size = n // k
    fold = np.full(n, -1, dtype=np.int8)
    fold[:size * k] = np.repeat(np.arange(k, dtype=np.int8), size)
    return fold


def main(task):
    spec = tasks.get(task)
    p = params.load("split", task)
    with np.load(f"data/encoded/{task}/train.npz") as f:
        n = len(f["y"])
    if spec.kfold:
        if p["k"] > n:
            raise SystemExit(f"params.yaml: {task}.k must be an integer >= 2 and <= {n}, got {p['k']}")
        fold = kfold(n, p["k"])
    else:
        if p["val_size"] >= n:
            raise SystemExit(f"params.yaml: {task}.val_size must be an integer >= 1 and < {n}, got {p['val_size']}")
        fold = holdout(n, p["val_size"])
    io.write_npz(f"data/split/{task}.npz", fold=fold)


if __name__ == "__main__":
    main(*sys.argv[1:])
