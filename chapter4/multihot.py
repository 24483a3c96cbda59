"""The book's multi-hot encoding (`vectorize_sequences`) stored sparse: each row's distinct word ids, sorted
(CSR: `indptr`, `indices`), computed without the dense matrix, and the dense rows back from it bit for bit
(tests/test_encode.py compares both with the book's listing in bench/book.py).
"""
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np


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
