"""encode: the arrays keras.datasets.*.load_data returns, as the book's multi-hot matrices (stored sparse).

    python -m stages.encode <task>     reads data/raw/<task>/, writes data/encoded/<task>/

IMDB / Reuters: `train.npz` and `test.npz` hold the multi-hot rows as CSR (`indptr`, `indices`: the distinct
word ids of each sample, sorted) plus integer labels `y` (chapter4/multihot.py; its `multi_hot` turns them back
into the book's `vectorize_sequences` matrix bit for bit). Housing: the features normalized with the training mean/std
(`train.npz`, `test.npz`) and those statistics (`stats.json`).
"""
import sys
from pathlib import Path

import numpy as np

from chapter4 import datasets, io, params, tasks
from chapter4.multihot import multi_hot_csr


def normalize(x_train, x_test):
    """The book's feature-wise normalization, with the training statistics only."""
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0)
    return (x_train - mean) / std, (x_test - mean) / std, {"mean": mean.tolist(), "std": std.tolist()}


def main(task):
    spec = tasks.get(task)
    p = params.load("encode", task)
    raw, out = Path("data/raw") / task, Path("data/encoded") / task
    if spec.text:
        for split, (flat, splits, y) in datasets.load_sequences(raw, task, p).items():
            indptr, indices = multi_hot_csr(flat, splits, p["num_words"])
            io.write_npz(out / f"{split}.npz", indptr=indptr, indices=indices, y=y,
                         num_words=np.int64(p["num_words"]))
    else:
        (x_train, y_train), (x_test, y_test) = datasets.load_housing(raw, p)
        x_train, x_test, stats = normalize(x_train, x_test)
        io.write_npz(out / "train.npz", x=x_train, y=y_train)
        io.write_npz(out / "test.npz", x=x_test, y=y_test)
        io.write_json(out / "stats.json", stats)


if __name__ == "__main__":
    main(*sys.argv[1:])
