"""How far apart rounding alone may put two float32 computations of the same Dense stack done in different orders
(other BLAS kernels, chunk sizes, gathered vs multiplied first layer): the tolerance of tests that compare two
code paths. A computation run twice the same way is compared bit for bit instead."""
import numpy as np

EPS32 = float(np.finfo(np.float32).eps)       # 2**-23 = 2u, u = float32's unit roundoff


def dense_stack_bound(layers, x):
    """Per-output bound on |a - b| for two float32 evaluations `a`, `b` of the Dense stack `layers` (a list of
    (kernel, bias, activation name)) on the rows `x` that may sum each dot product in a different order.

    Why: each pre-activation z = x . w + b is a sum of n = len(w) + 1 products (the bias times 1). Computed in
    float32 in ANY order, blocked or not, with or without FMA, it lies within gamma_n * sum|x_i w_i| of the exact
    value, gamma_n = n u / (1 - n u) (Higham, Accuracy and Stability of Numerical Algorithms, 2nd ed., eq. 3.5).
    Two orders are thus at most 2 gamma_n sum|terms| <= (n + 1) EPS32 sum|terms| apart (n u < 1 / (n + 1) for
    any n here). A difference d already in a layer's input adds |d| @ |w|. An activation of slope <= s carries
    s |d| and rounds its two (different) inputs itself: numpy's float32 exp, tanh, ... are within 2 ulp, so
    4 EPS32 |out| for the pair; softmax also sums its C exponentials and divides, 2 (C + 3) EPS32 p_i for the
    pair, and moves p_i by at most p_i (|d_i| + sum_j p_j |d_j|). First order in EPS32: the terms in EPS32^2
    left out are ~1e-7 of the bound. Sums |terms| and exact values are taken in float64 from the same weights.
    A misplaced kernel column or a swapped replicate moves outputs by far more (tests/test_model.py proves it)."""
    h = np.asarray(x, np.float64)
    d = np.zeros_like(h)
    for kernel, bias, act in layers:
        w, b = np.asarray(kernel, np.float64), np.asarray(bias, np.float64)
        terms = np.abs(h) @ np.abs(w) + np.abs(b)
        dz = (len(w) + 1) * EPS32 * terms + d @ np.abs(w)
        z = h @ w + b
        if act == "softmax":
            e = np.exp(z - z.max(axis=-1, keepdims=True))
            h = e / e.sum(axis=-1, keepdims=True)
            d = h * (dz + (h * dz).sum(axis=-1, keepdims=True)) + 2 * (z.shape[-1] + 3) * EPS32 * h
            continue
        h, slope = {"linear": (z, 1.0), "relu": (np.maximum(z, 0), 1.0), "tanh": (np.tanh(z), 1.0),
                    "sigmoid": (1 / (1 + np.exp(-z)), 0.25)}[act]
        d = slope * dz + 4 * EPS32 * np.abs(h)
    return d


def keras_layers(model):
    """(kernel, bias, activation name) of each Dense layer of a Keras model: what `dense_stack_bound` takes."""
    return [(layer.kernel.numpy(), layer.bias.numpy(), layer.get_config()["activation"]) for layer in model.layers]


def assert_close_float32(got, want, bound):
    """|got - want| <= bound everywhere (a bound from `dense_stack_bound`); the message names the worst element."""
    excess = np.abs(np.asarray(got, np.float64) - np.asarray(want, np.float64)) - bound
    worst = np.unravel_index(np.argmax(excess), excess.shape)
    assert excess[worst] <= 0, (f"float32 rounding cannot explain {got[worst]!r} vs {want[worst]!r} at {worst}: "
                                f"|difference| exceeds the bound {bound[worst]:.3g} by {excess[worst]:.3g}")
