"""Run a saved `.keras` model of the chapter with numpy alone (no TensorFlow import for evaluate/predict).

The chapter's models are Sequential stacks of Dense layers, so inference is `act(x @ W + b)` per layer. A
multi-hot input is never densified: its first layer is the sum of the kernel rows of each sample's word ids
(an embedding bag), which is the same product as the 0/1 row times the kernel.
"""
import json
import zipfile
from pathlib import Path

import h5py
import numpy as np

ACTIVATIONS = {
    "linear": lambda z: z,
    "relu": lambda z: np.maximum(z, 0),
    "tanh": np.tanh,
    "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
    "softmax": lambda z: (e := np.exp(z - z.max(axis=-1, keepdims=True))) / e.sum(axis=-1, keepdims=True),
    "elu": lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0))),
    "selu": lambda z: 1.0507009873554805 * np.where(z > 0, z, 1.6732632423543772 * np.expm1(np.minimum(z, 0))),
    "softplus": lambda z: np.logaddexp(z, 0),
    "swish": lambda z: z / (1 + np.exp(-z)),
}


class Model:
    """The Dense stack of a `.keras` file: `layers` is a list of (kernel, bias, activation name)."""

    def __init__(self, path):
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
            with archive.open("model.weights.h5") as raw, h5py.File(raw, "r") as h5:
                groups = sorted(h5["layers"], key=lambda g: int(g.rpartition("_")[2]) if "_" in g else 0)
                weights = [(h5["layers"][g]["vars"]["0"][()], h5["layers"][g]["vars"]["1"][()]) for g in groups]
        dense = [layer["config"] for layer in config["config"]["layers"] if layer["class_name"] == "Dense"]
        if len(dense) != len(weights):
            raise SystemExit(f"{path}: expected a Sequential stack of Dense layers")
        self.layers = [(w, b, c["activation"]) for (w, b), c in zip(weights, dense)]
        self.loss = config.get("compile_config", {}).get("loss")

    def predict(self, x=None, *, indptr=None, indices=None, chunk=256):
        """Outputs for dense rows `x`, or for multi-hot rows given as CSR (`indptr`, `indices`)."""
        return predict_all([self], x, indptr=indptr, indices=indices, chunk=chunk)[0]


def predict_all(models, x=None, *, indptr=None, indices=None, chunk=256):
    """Each model's outputs for dense rows `x`, or for multi-hot rows as CSR (`indptr`, `indices`), `chunk` rows
    at a time (fewer when the first layers are wider than 64 units): 256 reviews' gathered rows of a 64-unit
    kernel (~5 MB) stay in cache; 4096 at a time ran 3-4x slower, and so did five 64-unit replicates. For
    multi-hot rows the models' first kernels sit side by side, [num_words, sum of units], so each chunk's kernel
    rows are gathered once for all models (each column's sums are the ones its model alone makes)."""
    n = len(x) if x is not None else len(indptr) - 1
    kernel = None if x is not None else np.concatenate([m.layers[0][0] for m in models], axis=1)
    if kernel is not None and kernel.shape[1] > 64:          # as many gathered floats a chunk as 64 units take
        chunk = max(8, chunk * 64 // kernel.shape[1])
    splits = np.cumsum([m.layers[0][0].shape[1] for m in models])[:-1]
    outs = [[] for _ in models]
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        if x is not None:
            zs = [x[start:stop].astype(np.float32) @ m.layers[0][0] for m in models]
        else:
            lo, hi = indptr[start], indptr[stop]
            z = np.zeros((stop - start, kernel.shape[1]), dtype=np.float32)
            rows = np.repeat(np.arange(stop - start), np.diff(indptr[start:stop + 1]))
            _bag(z, rows, kernel[indices[lo:hi]])
            zs = np.split(z, splits, axis=1)
        for model, z, out in zip(models, zs, outs):
            (_, b, act), rest = model.layers[0], model.layers[1:]
            h = ACTIVATIONS[act](z + b)
            for w, b, act in rest:
                h = ACTIVATIONS[act](h @ w + b)
            out.append(h)
    return [np.concatenate(out) if out else np.zeros((0, m.layers[-1][0].shape[1]), np.float32)
            for m, out in zip(models, outs)]


class Ensemble:
    """The replicates of a task's model, data/model/<task>/replicate-<r>.keras: `predict` averages their
    outputs (probabilities, or prices); `predict_each` gives each replicate's."""

    def __init__(self, folder):
        paths = sorted(Path(folder).glob("replicate-*.keras"), key=lambda p: int(p.stem.rpartition("-")[2]))
        if not paths:
            raise SystemExit(f"{folder}: no trained models (replicate-<r>.keras)")
        self.models = [Model(p) for p in paths]
        self.loss = self.models[0].loss
        self.width = self.models[0].layers[0][0].shape[0]      # input width (num_words for multi-hot rows)

    def predict_each(self, x=None, **csr):
        return predict_all(self.models, x, **csr)

    def predict(self, x=None, **csr):
        return np.mean(self.predict_each(x, **csr), axis=0, dtype=np.float64).astype(np.float32)


def _bag(z, rows, vectors):
    """z[r] += sum of vectors whose row is r (rows sorted): a segment sum by reduceat."""
    if len(rows) == 0:
        return
    starts = np.flatnonzero(np.concatenate([[True], rows[1:] != rows[:-1]]))
    z[rows[starts]] = np.add.reduceat(vectors, starts, axis=0)


EPS = 1e-7


def loss(name, y, pred):
    """keras's losses (probability outputs) averaged over samples; y as the task stores it (ints or floats)."""
    if name == "binary_crossentropy":
        p = np.clip(pred[:, 0], EPS, 1 - EPS)
        return float(np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p))))
    if name in ("categorical_crossentropy", "sparse_categorical_crossentropy"):
        p = np.clip(pred / pred.sum(axis=-1, keepdims=True), EPS, 1 - EPS)
        return float(np.mean(-np.log(p[np.arange(len(y)), y])))
    err = pred[:, 0] - y
    if name == "mse":
        return float(np.mean(err ** 2))
    if name == "mae":
        return float(np.mean(np.abs(err)))
    if name == "huber":
        a = np.abs(err)
        return float(np.mean(np.where(a <= 1, 0.5 * err ** 2, a - 0.5)))
    raise SystemExit(f"unsupported loss {name!r}")


def accuracy(y, pred):
    guess = (pred[:, 0] > 0.5).astype(np.int64) if pred.shape[1] == 1 else pred.argmax(axis=1)
    return float(np.mean(guess == y))
