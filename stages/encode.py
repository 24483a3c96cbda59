"""encode: the arrays keras.datasets.*.load_data returns, as the book's multi-hot matrices (stored sparse).

    python -m stages.encode <task>     reads data/raw/<task>/, writes data/encoded/<task>/

IMDB / Reuters: `train.npz` and `test.npz` hold the multi-hot rows as CSR (`indptr`, `indices`: the distinct
word ids of each sample, sorted) plus integer labels `y`; `multi_hot(...)` turns them back into the book's
`vectorize_sequences` matrix bit for bit. Housing: the features normalized with the training mean/std
(`train.npz`, `test.npz`) and those statistics (`stats.json`).
"""
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from chapter4 import datasets, io, params, tasks


def multi_hot_csr(flat, splits, num_words, span=1 << 18):
    """Distinct ids of each row, sorted: the CSR form of the book's vectorize_sequences(seqs, num_words).

    Rows are cut into spans of about `span` ids, encoded independently on every core (numpy releases the GIL).
    """
    cuts = np.unique(np.concatenate([[0], np.searchsorted(splits, np.arange(0, splits[-1], span)), [len(splits) - 1]]))
    with ThreadPoolExecutor(os.cpu_count()) as pool:
        parts = list(pool.map(lambda a, b: _distinct_sorted(flat, splits[a:b + 1], num_words), cuts[:-1], cuts[1:]))
    counts = np.concatenate([[0]] + [c for c, _ in parts])
    indices = np.concatenate([np.empty(0, dtype=np.uint16 if num_words <= 1 << 16 else np.int32)]
                             + [i for _, i in parts])
    return np.cumsum(counts), indices


def _distinct_sorted(flat, splits, num_words):
    """(per-row count, ids) of rows splits[0]..splits[-1]: each (row, id) is one integer key (row << bits) | id;
    sorting the keys and dropping repeats leaves exactly the ones of the book's matrix, in row-major order.
    A row's keys sort into the row's own positions, so the ids are the keys' low bits and a row's count is
    the number of keys kept there."""
    n, lengths = len(splits) - 1, np.diff(splits)
    bits = max(int(num_words - 1).bit_length(), 1)
    key_type = np.uint32 if n << bits <= 2**32 else np.uint64              # 32-bit keys sort twice as fast
    keys = np.repeat(np.arange(n, dtype=key_type) << key_type(bits), lengths)
    np.bitwise_or(keys, flat[splits[0]:splits[-1]], out=keys, casting="unsafe")  # ids < num_words <= 1 << bits
    keys.sort()
    keep = np.empty(len(keys), dtype=bool)
    keep[:1] = True
    np.not_equal(keys[1:], keys[:-1], out=keep[1:])                         # np.unique without its hash path
    ids = np.bitwise_and(keys, key_type((1 << bits) - 1)).astype(np.uint16 if num_words <= 1 << 16 else np.int32)
    counts = np.zeros(n, dtype=np.int64)
    rows = lengths > 0                                                      # reduceat needs non-empty rows
    counts[rows] = np.add.reduceat(keep.view(np.uint8), (splits[:-1] - splits[0])[rows], dtype=np.int64)
    return counts, np.compress(keep, ids)


def multi_hot(indptr, indices, num_words, rows=None, dtype=np.float64):
    """Dense multi-hot rows (all, or `rows`) from the CSR form: the book's matrix."""
    rows = np.arange(len(indptr) - 1) if rows is None else np.asarray(rows)
    out = np.zeros((len(rows), num_words), dtype=dtype)
    counts = indptr[rows + 1] - indptr[rows]
    cols = np.concatenate([indices[indptr[r]:indptr[r + 1]] for r in rows]) if len(rows) else []
    out[np.repeat(np.arange(len(rows)), counts), cols] = 1
    return out


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
