"""The chapter's network in TensorFlow (the only module that imports TensorFlow): the Keras model saved for users,
and a compiled training loop that trains K runs of it side by side.

Both are derived from the network's definition (chapter4/network.py). `build` makes the Keras Sequential of its
layers (`Layer.keras`). `fit` does what `model.fit(x, y, epochs, batch_size, validation_data=...)` does --
shuffle every epoch, optimizer steps on mini-batches, per-epoch mean training loss/metric and validation
loss/metric -- but runs each epoch as one `tf.function`, so a 303-sample housing epoch costs milliseconds
instead of Keras's per-epoch overhead. It trains K models of one shape side by side (replicates, and the folds
of a K-fold): their weights are stacked along a first axis (kernels [K, in, out]) in variables of our own, each
layer runs its `Layer.stacked` on them, so each step is one set of ops for all K runs, and each run still gets
exactly its own shuffle, gradients and optimizer updates.
Multi-hot inputs stay sparse: each epoch's batches are the samples' word ids, laid out by `bags` (numpy, in
a thread while the previous epoch trains), and the first layer's product with the 0/1 rows is an
embedding-bag sum of the kernel rows of the words present (`embedding_bag`: to float rounding what
`tf.sparse.sparse_dense_matmul` computes, and faster); K runs' first kernels are one [K * width, units]
table, each run's word ids offset into its own block. The chapter's RMSprop steps run as TF's fused kernel
on velocity variables of our own (`FusedRMSprop`). `save` writes the book's plain Sequential, taking dense 0/1
rows, and the weights file numpy inference reads.
"""
import collections
import concurrent.futures
import copy
import gc
import os
import sys
from pathlib import Path

# TensorFlow's C++ log lines below WARNING (its start-up INFO lines) are hidden unless the user asks for them;
# set before TensorFlow loads, so nothing stands between a fatal error during the import and stderr.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

import numpy as np  # noqa: E402

# Loading TensorFlow is most of a training stage's start-up; two things cut it by ~2.5 s on a 2-core machine:
# - Keras imports matplotlib.pyplot when it loads, only for its image-gallery helper (1-2 s). Training never
#   plots, so matplotlib is hidden while TensorFlow and Keras load (Keras then leaves that helper disabled)
#   and later imports in this process load it as usual.
# - Python's cyclic garbage collector keeps re-scanning the hundreds of thousands of objects the import
#   creates, there and again while tracing the training functions: it is off during the import, and what
#   the import made is then frozen (gc.freeze: never scanned again; none of it is garbage).
_hide = "matplotlib" not in sys.modules
if _hide:
    sys.modules["matplotlib"] = None
_collecting = gc.isenabled()
gc.disable()
try:
    import tensorflow as tf  # noqa: E402
    import keras  # noqa: E402
finally:
    if _hide:
        del sys.modules["matplotlib"]
    if _collecting:
        gc.enable()
    gc.freeze()

from chapter4 import network  # noqa: E402


def seed_everything(seed):
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def build(net):
    """The Keras model of network `net` (a Sequential of its layers), compiled with its loss, metric and
    optimizer: what the `.keras` file saved for users holds. Its initial weights are the run's seeded start."""
    model = keras.Sequential([keras.Input((net.inputs,))] + [layer.keras() for layer in net.layers])
    model.compile(optimizer=keras.optimizers.get({"class_name": net.optimizer,
                                                  "config": {"learning_rate": net.learning_rate}}),
                  loss=net.loss, metrics=[net.metric])
    return model


def targets(net, y):
    """Labels as the loss wants them: one-hot for categorical_crossentropy, float column otherwise."""
    if net.loss == "categorical_crossentropy":
        return np.eye(net.outputs, dtype=np.float32)[y]
    if net.loss == "sparse_categorical_crossentropy":
        return y.astype(np.int32)
    return y.astype(np.float32).reshape(-1, 1)


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


def stack(models, net):
    """The weights of K Keras models of network `net`, layer by layer, as new variables (ours) with the runs along a
    first axis: {"kernel": [K, in, out], "bias": [K, 1, out]} for a Dense layer (a rank-1 array gets an axis
    for the batch, so that it broadcasts over a batch [K, B, out])."""
    def stacked(arrays):
        a = np.stack(arrays)
        return tf.Variable(a[:, None] if a.ndim == 2 else a)
    return [{name: stacked([m.layers[i].get_weights()[j] for m in models]) for j, name in enumerate(layer.weights)}
            for i, layer in enumerate(net.layers)]


def unstack(models, weights):
    """Run k's slice of the stacked `weights` into model k."""
    for k, model in enumerate(models):
        for keras_layer, w in zip(model.layers, weights):
            keras_layer.set_weights([tf.reshape(v[k], shape).numpy()
                                     for v, shape in zip(w.values(), (x.shape for x in keras_layer.weights))])


def forward(net, weights, x):
    """What each stacked run computes on its batch: [K, B, outputs], each layer's `stacked` on its weights
    (the Keras layer's ops; the batched product may sum in another order than a single run's, so equal to
    float32 rounding: tests/floats.py). For a batch of word ids (a `Bag`) the first
    layer's product is an embedding bag: row i of `multi_hot @ kernel` is the sum of the kernel rows of row i's
    word ids; run k's ids index its own block of the runs' kernels as one [K * width, units] table (reshaped,
    not indexed: the gradient of kernel[k] would copy the whole kernel gradient once more every step)."""
    product = None
    if isinstance(x, Bag):
        k, width, units = weights[0]["kernel"].shape
        bag = embedding_bag(tf.reshape(weights[0]["kernel"], [k * width, units]), *x)
        x, product = None, tf.reshape(bag, [k, -1, units])
    for layer, w in zip(net.layers, weights):
        x, product = layer.stacked(w, x, product), None
    return x


@tf.custom_gradient
def embedding_bag(kernel, ids, perm, lengths):
    """multi_hot @ kernel for a `Bag` of rows: each row's sum of the kernel rows of its word ids. Forward and
    kernel gradient are each one sorted segment sum (tf.sparse.segment_sum gathers and adds in one pass): the
    forward over the ids in row order, the gradient (the rows' gradients summed per word id) over the ids in
    word-id order, `perm`, which `bags` sorted outside the graph. The sums agree with sparse_dense_matmul's and
    its gradient's to float rounding; TF's own gradients of these ops (masking, de-duplication, an unsorted
    scatter into the whole kernel) took most of a Reuters training step."""
    n = tf.shape(lengths)[0]
    rows = tf.repeat(tf.range(n), lengths)
    bag = tf.sparse.segment_sum(kernel, ids, rows, num_segments=n)

    def grad(d_bag):
        return (tf.sparse.segment_sum(d_bag, tf.gather(rows, perm), tf.gather(ids, perm),
                                      num_segments=tf.shape(kernel)[0]), None, None, None)
    return bag, grad


class FusedRMSprop:
    """Keras's RMSprop as `build` makes it for the network (no momentum, not centered; its learning rate, rho
    and epsilon read from the Keras optimizer's public config) run as TensorFlow's fused kernel,
    ResourceApplyRMSProp, on velocity variables of our own: one pass over each variable where Keras's update
    makes ten elementwise passes with a temporary array each (for the 10 000 x 64 first kernel, a third of a
    Reuters step). Same update (velocity = rho*velocity + (1-rho)*g^2, variable -= lr*g / sqrt(velocity +
    epsilon)) to float rounding, and the same step count."""

    def __init__(self, config, variables):
        self.lr, self.rho, self.epsilon = config["learning_rate"], config["rho"], config["epsilon"]
        self.variables = variables
        self.velocities = [tf.Variable(tf.zeros(v.shape), trainable=False) for v in variables]
        self.scratch = [tf.Variable(tf.zeros(v.shape), trainable=False) for v in variables]   # the `mom` input
        self.iterations = tf.Variable(0, dtype=tf.int64, trainable=False)

    def apply(self, grads):
        for grad, variable, velocity, mom in zip(grads, self.variables, self.velocities, self.scratch):
            tf.raw_ops.ResourceApplyRMSProp(var=variable.handle, ms=velocity.handle, mom=mom.handle, lr=self.lr,
                                            rho=self.rho, momentum=0.0, epsilon=self.epsilon, grad=grad)
        self.iterations.assign_add(1)

    def keep(self, k, optimizer, variables):
        """Run k's state into the Keras RMSprop `optimizer` of its model (built on the model's `variables`), saved
        with the model: the step count, and each variable's velocity, which Keras names after the variable's path.
        A Keras that names or lays out its state otherwise stops here (KeyError or ValueError), not silently."""
        velocity = {f"{v.path.replace('/', '_')}_velocity": ours[k] for v, ours in zip(variables, self.velocities)}
        for v in optimizer.variables:
            if v is optimizer.iterations:
                v.assign(self.iterations)
            elif v is not optimizer.learning_rate:
                v.assign(tf.reshape(velocity.pop(v.name), v.shape))
        if velocity:
            raise ValueError(f"keras's RMSprop has no state for {sorted(velocity)}")


class KerasOptimizer:
    """Any other optimizer: Keras's own update (elementwise, so each run's slice gets its own update)."""

    def __init__(self, optimizer, variables):
        self.optimizer, self.variables = optimizer.from_config(optimizer.get_config()), variables
        self.optimizer.build(variables)

    def apply(self, grads):
        self.optimizer.apply(grads, self.variables)

    def keep(self, k, optimizer, variables):
        """Run k's state into its model's `optimizer` (of the same class, built on the model's `variables` in
        the same order, so its variables are ours one for one)."""
        for mine, stacked in zip(optimizer.variables, self.optimizer.variables):
            mine.assign(tf.reshape(stacked[k], mine.shape) if len(stacked.shape) else stacked)


def optimizer_for(net, model, variables):
    """The update of network `net`'s optimizer (`model`'s, as `build` made it) on the stacked `variables`: the
    fused kernel for RMSprop, else Keras's own."""
    if net.optimizer == "rmsprop":
        return FusedRMSprop(model.optimizer.get_config(), variables)
    return KerasOptimizer(model.optimizer, variables)


def per_sample_metric(name, y, pred):
    """The metric of each sample, by Keras's function behind `compile(metrics=[name])` for these targets and
    outputs: for "accuracy" binary, sparse or categorical, as Keras picks it from their shapes."""
    if name == "accuracy" and pred.shape[-1] == 1:
        fn = keras.metrics.binary_accuracy
    elif name == "accuracy":
        fn = keras.metrics.sparse_categorical_accuracy if y.shape.rank < pred.shape.rank else \
            keras.metrics.categorical_accuracy
    else:
        fn = {"mae": keras.metrics.mean_absolute_error}[name]
    return fn(y, pred)


def one_pass(net, weights, take, y, size, bs, order, fed, update=None):
    """K runs' pass over batches of `bs` of their `size` samples in `order` [K, size] (`take`: the batches,
    `fed`: the pass's multi-hot layout), with an optimizer step after each batch if `update`. Returns each
    run's mean loss and metric over the pass, [2, K]. The loss is the sum of the K runs' mean losses, so each
    run's gradient is its own."""
    k, loss_fn = order.shape[0], keras.losses.get(net.loss)
    variables = [v for w in weights for v in w.values()]

    def step(i, total):
        idx = order[:, i * bs: tf.minimum((i + 1) * bs, size)]
        yb = tf.gather(y, idx, batch_dims=1)
        with tf.GradientTape() as tape:
            pred = forward(net, weights, take(i, idx, fed))
            losses = loss_fn(yb, pred)
            metric = tf.reshape(per_sample_metric(net.metric, yb, pred), tf.shape(losses))
            scores = tf.stack([tf.reduce_mean(losses, axis=1), tf.reduce_mean(metric, axis=1)])
            loss = tf.reduce_sum(scores[0])
        if update:
            update(tape.gradient(loss, variables))
        return i + 1, total + tf.cast(tf.shape(idx)[1], tf.float32) * scores
    _, total = tf.while_loop(lambda i, _: i < -(-size // bs), step, (tf.constant(0), tf.zeros([2, k])))
    return total / size


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


def validator(net, weights, validation, bs):
    """A compiled pass over K runs' validation (inputs, targets) pairs in order, without steps: [2, K]."""
    vx, vy = [v[0] for v in validation], tf.stack([tf.constant(v[1]) for v in validation])
    in_order = np.tile(np.arange(vx[0].n), [len(vx), 1])
    take, fed = batches(vx), feed(vx, in_order, bs)
    return tf.function(lambda: one_pass(net, weights, take, vy, vx[0].n, bs, tf.constant(in_order), fed),
                       autograph=False)


def fit(models, net, xs, ys, *, epochs, batch_size, seeds, validation=None):
    """Train K Keras models of network `net` side by side, each as keras's fit would train it alone on its own
    data (xs[k]: `Inputs`, ys[k]: targets; shuffled each epoch by RandomState(seeds[k])); validation: K
    (inputs, targets) pairs, all runs of equal sizes. Returns one history dict per model and leaves each run's
    weights and optimizer state in its model."""
    if any(x.n != xs[0].n for x in xs) or (validation and any(v.n != validation[0][0].n for v, _ in validation)):
        raise ValueError("runs trained side by side need equal sample counts")
    weights = stack(models, net)
    optimizer = optimizer_for(net, models[0], [v for w in weights for v in w.values()])
    take, y = batches(xs), tf.stack([tf.constant(t) for t in ys])
    train = tf.function(lambda order, fed: one_pass(net, weights, take, y, xs[0].n, batch_size, order, fed,
                                                    optimizer.apply), autograph=False)
    check = validator(net, weights, validation, batch_size) if validation else None
    histories = [{"loss": [], net.metric: []} | ({"val_loss": [], f"val_{net.metric}": []} if validation else {})
                 for _ in models]
    for order, fed in shuffled_passes(xs, seeds, batch_size, epochs):
        record(histories, [train(order, fed)] + ([check()] if check else []))
    unstack(models, weights)
    for k, model in enumerate(models):
        model.optimizer.build(model.trainable_variables)
        optimizer.keep(k, model.optimizer, model.trainable_variables)
    return histories


def record(histories, logs):
    """Append an epoch's [2, K] results (training, then validation) to the K runs' histories, in key order."""
    for history, values in zip(histories, np.concatenate([t.numpy() for t in logs]).T.tolist()):
        for key, value in zip(history, values):
            history[key].append(value)


def save(model, net, path):
    """Run `model` of network `net` as <path>.keras, Keras's file for users, and <path>.npz, the weights file
    numpy inference reads (layout in chapter4/network.py), each written atomically."""
    path = Path(path)
    network.save(path.with_suffix(".npz"), net, [dict(zip(layer.weights, keras_layer.get_weights()))
                                                 for layer, keras_layer in zip(net.layers, model.layers)])
    save_keras(model, path.with_suffix(".keras"))


def save_keras(model, path):
    """model.save, made byte-reproducible: fixed zip timestamps, no `date_saved` in the metadata, and
    config.json's `shared_object_id`s (memory addresses) renumbered 1, 2, ... in order of appearance.
    Stored uncompressed: deflate saves 8% of float32 weights and costs ~0.1 s at every save and load."""
    import json
    import zipfile

    from chapter4 import io
    with io.atomic_path(path) as tmp:
        raw = tmp.with_name(tmp.name + ".raw.keras")
        try:
            model.save(raw)
            with zipfile.ZipFile(raw) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as dst:
                for info in src.infolist():
                    data = src.read(info)
                    if info.filename == "metadata.json":
                        meta = json.loads(data)
                        meta.pop("date_saved", None)
                        data = json.dumps(meta).encode()
                    elif info.filename == "config.json":
                        data = json.dumps(_renumber_shared_ids(json.loads(data), {})).encode()
                    dst.writestr(zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0)), data,
                                 compress_type=zipfile.ZIP_STORED)
        finally:
            raw.unlink(missing_ok=True)


def _renumber_shared_ids(node, ids):
    if isinstance(node, dict):
        return {k: (ids.setdefault(v, len(ids) + 1) if k == "shared_object_id" else _renumber_shared_ids(v, ids))
                for k, v in node.items()}
    if isinstance(node, list):
        return [_renumber_shared_ids(v, ids) for v in node]
    return node
