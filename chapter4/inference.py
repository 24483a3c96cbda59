"""Run the trained replicates with numpy alone (no TensorFlow import for evaluate/predict).

Each replicate is read from the weights file train writes beside its `.keras` file, data/model/<task>/
replicate-<r>.npz (layout in chapter4/network.py), and run layer by layer by `Layer.numpy`. A multi-hot input is
never densified: its first layer's product is the sum of the kernel rows of each sample's word ids (an
embedding bag), which is the same product as the 0/1 row times the kernel.
"""
from pathlib import Path

import numpy as np

from chapter4 import network


class Model:
    """One trained run: `net` (a network.Network) and `weights` (per layer, its arrays by name)."""

    def __init__(self, path):
        self.net, self.weights = network.load(path)
        self.loss = self.net.loss

    def predict(self, x=None, *, indptr=None, indices=None, chunk=256):
        """Outputs for dense rows `x`, or for multi-hot rows given as CSR (`indptr`, `indices`)."""
        return predict_all([self], x, indptr=indptr, indices=indices, chunk=chunk)[0]


def predict_all(models, x=None, *, indptr=None, indices=None, chunk=256):
    """Each model's outputs for dense rows `x`, or for multi-hot rows as CSR (`indptr`, `indices`), `chunk` rows
    at a time (fewer when the first layers are wider than 64 units): 256 reviews' gathered rows of a 64-unit
    kernel (~5 MB) stay in cache; 4096 at a time ran 3-4x slower, and so did five 64-unit replicates. For
    multi-hot rows the models' first kernels sit side by side, [num_words, sum of units], so each chunk's kernel
    rows are gathered once for all models (each column's sums are its model's own; the
    later layers' products, other BLAS calls than a model alone makes, agree with its own to float32 rounding)."""
    n = len(x) if x is not None else len(indptr) - 1
    firsts = [m.weights[0]["kernel"] for m in models]
    kernel = None if x is not None else np.concatenate(firsts, axis=1)
    if kernel is not None and kernel.shape[1] > 64:          # as many gathered floats a chunk as 64 units take
        chunk = max(8, chunk * 64 // kernel.shape[1])
    splits = np.cumsum([k.shape[1] for k in firsts])[:-1]
    outs = [[] for _ in models]
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        if x is not None:
            products = [x[start:stop].astype(np.float32) @ k for k in firsts]
        else:
            lo, hi = indptr[start], indptr[stop]
            z = np.zeros((stop - start, kernel.shape[1]), dtype=np.float32)
            rows = np.repeat(np.arange(stop - start), np.diff(indptr[start:stop + 1]))
            _bag(z, rows, kernel[indices[lo:hi]])
            products = np.split(z, splits, axis=1)
        for model, product, out in zip(models, products, outs):
            h = None
            for layer, w in zip(model.net.layers, model.weights):
                h, product = layer.numpy(w, h, product), None
            out.append(h)
    return [np.concatenate(out) if out else np.zeros((0, m.net.outputs), np.float32)
            for m, out in zip(models, outs)]


class Ensemble:
    """The replicates of a task's model, data/model/<task>/replicate-<r>.npz: `predict` averages their
    outputs (probabilities, or prices); `predict_each` gives each replicate's."""

    def __init__(self, folder):
        paths = replicates(folder)
        if not paths:
            raise SystemExit(f"{folder}: no trained models (replicate-<r>.npz)")
        self.models = [Model(p) for p in paths]
        self.loss = self.models[0].loss
        self.width = self.models[0].net.inputs      # input width (num_words for multi-hot rows)

    def predict_each(self, x=None, **csr):
        return predict_all(self.models, x, **csr)

    def predict(self, x=None, **csr):
        return np.mean(self.predict_each(x, **csr), axis=0, dtype=np.float64).astype(np.float32)


def replicates(folder):
    """The weights files of a task's trained replicates, data/model/<task>/replicate-<r>.npz, in replicate order."""
    return sorted(Path(folder).glob("replicate-*.npz"), key=lambda p: int(p.stem.rpartition("-")[2]))


def _bag(z, rows, vectors):
    """z[r] += sum of vectors whose row is r (rows sorted): a segment sum by reduceat."""
    if len(rows) == 0:
        return
    starts = np.flatnonzero(np.concatenate([[True], rows[1:] != rows[:-1]]))
    z[rows[starts]] = np.add.reduceat(vectors, starts, axis=0)
