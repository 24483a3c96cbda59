"""The chapter's network, said once: its layers, loss, metric and optimizer, and their maths in numpy.

`of(spec, p, inputs)` is the network of a task: the hidden `Dense` layers of params (units, activation), the
head from the Task (`spec.outputs` units, `spec.output_activation`), the loss, optimizer and learning rate of
params and the Task's metric. Each executor is derived from it, layer by layer:
- chapter4/model.py (TensorFlow) builds the Keras model saved for users from `Layer.keras()`, and
  chapter4/training.py trains K runs side by side through `Layer.stacked()`, with Keras's activations, losses
  and metrics by name;
- `chapter4/inference.py` (numpy) runs `Layer.numpy()` with the numpy activations below, on the weights `save`
  wrote.
A layer kind is one class here (its Keras layer, its stacked TensorFlow call, its numpy call, the names of its
weight arrays); an activation is one line of ACTIVATIONS. tests/test_model.py proves each numpy function equal
to Keras's. Importing this module loads numpy only.

Saved weights, one file per trained run (`save` / `load`; train writes data/model/<task>/replicate-<r>.npz):
a numpy .npz archive, read without pickle, holding
    network          the network as JSON text: {"inputs": int, "layers": [{"kind": "dense", "units": int,
                     "activation": str}, ...], "loss": str, "metric": str, "optimizer": str,
                     "learning_rate": float}
    <i>.<weight>     float32 arrays of layer i (0 = the layer fed by the input), named by the layer kind:
                     Dense: <i>.kernel [inputs of the layer, units] and <i>.bias [units].
"""
import dataclasses
import json

import numpy as np


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# The names the network is made of, each said once here: the params check reads its allowed values from them
# (chapter4/params.py), and every executor looks them up by these Keras names.
# Keras's activations, in numpy (the TensorFlow executors use Keras's own by name); softmax only for a head.
ACTIVATIONS = {
    "relu": lambda z: np.maximum(z, 0),
    "tanh": np.tanh,
    "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
    "elu": lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0))),
    "selu": lambda z: 1.0507009873554805 * np.where(z > 0, z, 1.6732632423543772 * np.expm1(np.minimum(z, 0))),
    "swish": lambda z: z / (1 + np.exp(-z)),
    "softplus": lambda z: np.logaddexp(z, 0),
    "linear": lambda z: z,
    "softmax": _softmax,
}
HIDDEN_ACTIVATIONS = tuple(name for name in ACTIVATIONS if name != "softmax")    # the `activation` param
# Keras's optimizers by name (the `optimizer` param); rmsprop, the book's, runs fused (chapter4/optimizers.py).
OPTIMIZERS = ("rmsprop", "adam", "sgd", "adamw", "nadam", "adagrad")
# Losses and metrics: LOSSES and METRICS at the end, beside their numpy maths.


@dataclasses.dataclass(frozen=True)
class Dense:
    """activation(x @ kernel + bias): keras.layers.Dense."""
    units: int
    activation: str = "linear"
    kind = "dense"
    weights = ("kernel", "bias")        # its arrays, in the order of Keras's layer.get_weights()

    def keras(self):
        """The Keras layer of the model saved for users."""
        import keras
        return keras.layers.Dense(self.units, activation=self.activation)

    def stacked(self, w, x, product=None):
        """K runs side by side (TensorFlow): w["kernel"] [K, in, units], w["bias"] [K, 1, units], x [K, B, in]
        -> [K, B, units]. `product`: x @ kernel when the executor computed it (multi-hot rows as a bag)."""
        import keras
        z = keras.ops.matmul(x, w["kernel"]) if product is None else product
        return keras.activations.get(self.activation)(keras.ops.add(z, w["bias"]))

    def numpy(self, w, x, product=None):
        """One run (numpy): x [B, in] -> [B, units]; `product` as in `stacked`."""
        z = x @ w["kernel"] if product is None else product
        return ACTIVATIONS[self.activation](z + w["bias"])


LAYERS = {layer.kind: layer for layer in (Dense,)}


@dataclasses.dataclass(frozen=True)
class Network:
    inputs: int             # width of an input row (num_words for multi-hot rows)
    layers: tuple           # from the input to the head
    loss: str               # a Keras loss name
    metric: str             # "accuracy" or "mae" (the Task's)
    optimizer: str          # a Keras optimizer name
    learning_rate: float

    @property
    def outputs(self):
        return self.layers[-1].units

    def to_json(self):
        d = dataclasses.asdict(self)
        d["layers"] = [{"kind": layer.kind, **dataclasses.asdict(layer)} for layer in self.layers]
        return json.dumps(d)

    @classmethod
    def from_json(cls, text):
        d = json.loads(text)
        d["layers"] = tuple(LAYERS[layer.pop("kind")](**layer) for layer in d["layers"])
        return cls(**d)


def of(spec, p, inputs):
    """The book's network for Task `spec` with the hidden layers, activation, loss and optimizer of params `p`."""
    return Network(inputs, tuple(Dense(u, p["activation"]) for u in p["units"])
                   + (Dense(spec.outputs, spec.output_activation or "linear"),),
                   p["loss"], spec.metric, p["optimizer"], p["learning_rate"])


def save(path, net, weights):
    """One run's weights (per layer, a dict of its arrays by name) in the layout above, written atomically."""
    from chapter4 import io
    io.write_npz(path, network=np.array(net.to_json()),
                 **{f"{i}.{name}": np.asarray(w[name], np.float32)
                    for i, (layer, w) in enumerate(zip(net.layers, weights)) for name in layer.weights})


def load(path):
    """(network, weights) of a file `save` wrote."""
    from chapter4 import io
    data = io.read_npz(path)
    net = Network.from_json(str(data["network"]))
    return net, [{name: data[f"{i}.{name}"] for name in layer.weights} for i, layer in enumerate(net.layers)]


# Keras's losses and the chapter's metrics in numpy, over samples; y as the task stores it (ints or floats).
EPS = 1e-7       # keras.backend.epsilon(): probabilities clipped to [EPS, 1 - EPS]


def _binary_crossentropy(y, pred):
    p = np.clip(pred[:, 0], EPS, 1 - EPS)
    return float(np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p))))


def _crossentropy(y, pred):
    """categorical (one-hot targets) and sparse (integer targets) alike: y holds the class ids."""
    p = np.clip(pred / pred.sum(axis=-1, keepdims=True), EPS, 1 - EPS)
    return float(np.mean(-np.log(p[np.arange(len(y)), y])))


def _huber(y, pred):
    err = pred[:, 0] - y
    a = np.abs(err)
    return float(np.mean(np.where(a <= 1, 0.5 * err ** 2, a - 0.5)))


def _accuracy(y, pred):
    """keras's `accuracy`: threshold 0.5 for one output, else the argmax."""
    guess = (pred[:, 0] > 0.5).astype(np.int64) if pred.shape[1] == 1 else pred.argmax(axis=1)
    return float(np.mean(guess == y))


# Keras's losses by name (the `loss` param; each Task allows those that fit its head, chapter4/tasks.py) and the
# Tasks' metrics, in numpy.
LOSSES = {
    "binary_crossentropy": _binary_crossentropy,
    "categorical_crossentropy": _crossentropy,
    "sparse_categorical_crossentropy": _crossentropy,
    "mse": lambda y, pred: float(np.mean((pred[:, 0] - y) ** 2)),
    "mae": lambda y, pred: float(np.mean(np.abs(pred[:, 0] - y))),
    "huber": _huber,
}
METRICS = {"accuracy": _accuracy, "mae": LOSSES["mae"]}


def loss(name, y, pred):
    if name not in LOSSES:
        raise SystemExit(f"unsupported loss {name!r}")
    return LOSSES[name](y, pred)


def metric(name, y, pred):
    return METRICS[name](y, pred)
