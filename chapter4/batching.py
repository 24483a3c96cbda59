"""The training inputs and their batches, laid out by numpy for the compiled epoch (chapter4/training.py).

Dense rows stay a TF constant gathered per batch. Multi-hot rows stay sparse: each epoch's batches are the
samples' word ids, laid out by `bags` (numpy, in a thread while the previous epoch trains), which the first
layer turns into an embedding-bag sum (chapter4/stacked.py); K runs' first kernels are one [K * width, units]
table, each run's word ids offset into its own block.
"""
import collections
import concurrent.futures
import copy

import numpy as np

from chapter4.backend import tf


class Inputs:
    """Training inputs: dense rows as a TF constant, or multi-hot rows kept as numpy CSR word ids."""

    def __init__(self, data, rows=None):
        self.sparse = "indptr" in data
        if self.sparse:
            indptr, indices = data["indptr"].astype(np.int64), data["indices"]
            if rows is not None:      # restrict the CSR to `rows`
                lengths = (indptr[1:] - indptr[:-1])[rows]
                take = np.concatenate([np.arange(indptr[r], indptr[r + 1]) for r in rows]) if len(rows) else []
                indptr = np.concatenate([[0], np.cumsum(lengths)])
                indices = indices[np.asarray(take, dtype=np.int64)]
            self.width, self.indptr, self.indices, self.n = int(data["num_words"]), indptr, indices, len(indptr) - 1
        else:
            x = data["x"] if rows is None else data["x"][rows]
            self.width, self.ids, self.n = x.shape[1], tf.constant(x.astype(np.float32)), len(x)


Bag = collections.namedtuple("Bag", "ids perm lengths")     # a batch of K runs' multi-hot rows, see `bags`


def _together(xs, orders):
    """K runs' multi-hot `Inputs` as one (the runs' own object when they share it, else their rows end to end)
    and each run's order as rows of it: [K, n]."""
    orders = np.asarray(orders)
    if all(x is xs[0] for x in xs):
        return xs[0], orders
    x = copy.copy(xs[0])
    x.indices = np.concatenate([v.indices for v in xs])
    x.indptr = np.concatenate([[0]] + [v.indptr[1:] + o for v, o in
                                       zip(xs, np.cumsum([0] + [len(v.indices) for v in xs[:-1]]))])
    x.n = sum(v.n for v in xs)
    return x, orders + np.cumsum([0] + [v.n for v in xs[:-1]])[:, None]


def bags(xs, orders, bs):
    """One pass of K runs over their multi-hot `Inputs` xs[k] in orders[k], `bs` rows a batch, laid out by numpy
    for the compiled epoch. The K runs share one stacked kernel [K * width, units]: batch i holds run 0's rows
    of its batch i, then run 1's, ..., and run k's word ids are offset by k * width into its own block of it.
    Returns, end to end over the batches: the rows' word ids in row order (`ids`), the permutation that sorts
    each batch's ids by (offset) word id, stably, as positions within the batch (`perm`), each row's id count
    (`lengths`), and where each batch starts in `ids` and in `lengths`."""
    x, orders = _together(xs, orders)
    k, n = orders.shape
    rows = np.concatenate([orders[:, a:a + bs].ravel() for a in range(0, n, bs)])   # batch by batch, runs inside
    lengths = (x.indptr[1:] - x.indptr[:-1])[rows].astype(np.int32)
    bounds = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)])   # where each row's ids go
    ids, perm = _aligned(bounds[-1]), _aligned(bounds[-1])
    row_starts = np.append(np.arange(0, n, bs), n) * k                   # each batch's first row (of K * B)
    starts = bounds[row_starts]                                          # and its first id
    key = np.uint16 if x.width <= 1 << 16 else np.int32                  # 16-bit keys: numpy radix-sorts them
    for i in range(len(row_starts) - 1):                                 # batch by batch: small temporaries
        size = (row_starts[i + 1] - row_starts[i]) // k
        for r in range(k):                                               # run r's block, sorted by word id
            a, b = row_starts[i] + r * size, row_starts[i] + (r + 1) * size
            words = x.indices[np.repeat(x.indptr[rows[a:b]] - bounds[a:b], lengths[a:b])
                              + np.arange(bounds[a], bounds[b])]
            ids[bounds[a]:bounds[b]] = words.astype(np.int32) + r * x.width
            perm[bounds[a]:bounds[b]] = np.argsort(words.astype(key), kind="stable") + (bounds[a] - starts[i])
    return _shared(ids), _shared(perm), *(tf.constant(v) for v in (lengths, starts, row_starts))


def _aligned(n, dtype=np.int32, align=64):
    """np.empty(n, dtype) starting on an `align`-byte boundary, as TensorFlow's tensors do."""
    raw = np.empty(n * np.dtype(dtype).itemsize + align, np.uint8)
    start = -raw.ctypes.data % align
    return raw[start:start + n * np.dtype(dtype).itemsize].view(dtype)


def _shared(array):
    """A tensor over an aligned numpy array's own memory (DLPack, no copy: an IMDB epoch of 5 replicates is
    ~130 MB of ids, and the next epoch is laid out while one trains)."""
    return tf.experimental.dlpack.from_dlpack(array.__dlpack__())


def batches(runs):
    """`take(i, idx, fed)` for K runs' `Inputs`: batch i, idx [K, B] (each run's own sample indices) -> a dense
    batch [K, B, width] gathered here, or for multi-hot rows batch i of `fed`, what `bags` laid out for this
    pass."""
    if runs[0].sparse:
        def take(i, idx, fed):
            ids, perm, lengths, starts, row_starts = fed
            return Bag(ids[starts[i]:starts[i + 1]], perm[starts[i]:starts[i + 1]],
                       lengths[row_starts[i]:row_starts[i + 1]])
        return take
    rows = tf.stack([x.ids for x in runs])
    return lambda i, idx, fed: tf.gather(rows, idx, batch_dims=1)


def feed(runs, orders, bs):
    """What `batches` takes for a pass of K runs in `orders`: the multi-hot layout, nothing for dense rows."""
    return bags(runs, orders, bs) if runs[0].sparse else ()


def shuffled_passes(xs, seeds, bs, epochs):
    """Each epoch's order of each run's samples (RandomState(seeds[k]).permutation, a new one each epoch) and
    its multi-hot layout: epoch e + 1 is laid out in a thread while epoch e trains."""
    rngs = [np.random.RandomState(seed) for seed in seeds]

    def shuffled():
        order = np.stack([rng.permutation(xs[0].n) for rng in rngs])
        return tf.constant(order), feed(xs, order, bs)
    with concurrent.futures.ThreadPoolExecutor(1) as ahead:
        upcoming = ahead.submit(shuffled)
        for epoch in range(epochs):
            current = upcoming.result()
            if epoch + 1 < epochs:
                upcoming = ahead.submit(shuffled)
            yield current
