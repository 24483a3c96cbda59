"""The book's models and a compiled training loop for them (the only module that imports TensorFlow).

`build` makes the chapter's Sequential of Dense layers from a params section. `fit` does what
`model.fit(x, y, epochs, batch_size, validation_data=...)` does -- shuffle every epoch, rmsprop steps on
mini-batches, per-epoch mean training loss/metric and validation loss/metric -- but runs each epoch as one
`tf.function`, so a 303-sample housing epoch costs milliseconds instead of Keras's per-epoch overhead.
It trains K models of one shape side by side (replicates, and the folds of a K-fold): their weights are
stacked along a first axis (kernels [K, in, out]), so each step is one set of ops for all K runs, and each
run still gets exactly its own shuffle, gradients and optimizer updates.
Multi-hot inputs stay sparse: each epoch's batches are the samples' word ids, laid out by `bags` (numpy, in
a thread while the previous epoch trains), and the first Dense layer's product with the 0/1 rows is an
embedding-bag sum of the kernel rows of the words present (`embedding_bag`: to float rounding what
`tf.sparse.sparse_dense_matmul` computes, and faster); K runs' first kernels are one [K * width, units]
table, each run's word ids offset into its own block. The chapter's RMSprop steps run as TF's fused kernel
(`fused_update`). The saved model is the book's plain Sequential, taking dense 0/1 rows.
"""
import collections
import concurrent.futures
import copy
import gc
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")   # warnings and errors still show

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

from stages import tasks  # noqa: E402


def seed_everything(seed):
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def build(spec, p, input_dim):
    """The book's network for `spec` with the hidden layers, activation, loss and optimizer of params `p`."""
    model = keras.Sequential(
        [keras.Input((input_dim,))]
        + [keras.layers.Dense(u, activation=p["activation"]) for u in p["units"]]
        + [keras.layers.Dense(spec.outputs, activation=spec.output_activation)])
    optimizer = keras.optimizers.get({"class_name": p["optimizer"],
                                      "config": {"learning_rate": p["learning_rate"]}})
    model.compile(optimizer=optimizer, loss=p["loss"], metrics=[spec.metric])
    return model


def targets(spec, p, y):
    """Labels as the loss wants them: one-hot for categorical_crossentropy, float column otherwise."""
    if p["loss"] == "categorical_crossentropy":
        return np.eye(spec.outputs, dtype=np.float32)[y]
    if p["loss"] == "sparse_categorical_crossentropy":
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


def stack(models):
    """The Dense layers of K same-shaped models as (kernel [K, in, out], bias [K, 1, out], activation) triples
    of new variables holding their weights."""
    return [(keras.Variable(np.stack([m.layers[i].kernel.numpy() for m in models])),
             keras.Variable(np.stack([m.layers[i].bias.numpy() for m in models])[:, None]),
             models[0].layers[i].activation) for i in range(len(models[0].layers))]


def forward(layers, x):
    """What each stacked model computes on its batch: [K, B, outputs]. Each layer is keras's Dense.call,
    activation(x @ kernel + bias), with keras's ops (for one run: bit for bit what the Dense layer computes).
    For a batch of word ids the first product is an embedding bag: row i of `multi_hot @ kernel` is the sum
    of the kernel rows of row i's word ids (the kernel squeezed, not indexed: the gradient of kernel[0] would
    copy the whole kernel gradient once more every step)."""
    (kernel, bias, activation), *rest = layers
    if isinstance(x, Bag) and kernel.shape[0] == 1:
        h = activation((embedding_bag(tf.squeeze(kernel, 0), *x) + bias[0])[None])
    elif isinstance(x, Bag):  # K runs: run k's word ids index its own block of the kernel, [K * width, units]
        k, units = kernel.shape[0], kernel.shape[2]
        bag = embedding_bag(tf.reshape(kernel, [k * kernel.shape[1], units]), *x)
        h = activation(keras.ops.add(tf.reshape(bag, [k, -1, units]), bias))
    else:
        h = activation(keras.ops.add(keras.ops.matmul(x, kernel), bias))
    for kernel, bias, activation in rest:
        h = activation(keras.ops.add(keras.ops.matmul(h, kernel), bias))
    return h


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


def fused_update(optimizer, variables):
    """`optimizer.apply(grads, variables)`; for the chapter's plain RMSprop (no momentum, not centered, no
    clipping, weight decay or EMA, a constant learning rate) TF's fused kernel instead: one pass over each
    variable, where Keras's update makes ten elementwise passes with a temporary array each (for the
    10 000 x 64 first kernel, a third of a Reuters step). Same update (velocity = rho*velocity + (1-rho)*g^2,
    variable -= lr*g / sqrt(velocity + epsilon)) to float rounding, in the same velocity variables, and the
    same step count."""
    c = optimizer.get_config()
    plain = {"momentum": 0, "centered": False, "weight_decay": None, "clipnorm": None, "clipvalue": None,
             "global_clipnorm": None, "use_ema": False, "loss_scale_factor": None,
             "gradient_accumulation_steps": None}
    velocities = optimizer.variables[2:]         # after iteration and learning_rate, one per variable, in order
    if (type(optimizer) is not keras.optimizers.RMSprop or any(c.get(k) != v for k, v in plain.items())
            or not isinstance(c["learning_rate"], float) or len(velocities) != len(variables)
            or any(a.shape != b.shape for a, b in zip(velocities, variables))):
        return lambda grads: optimizer.apply(grads, variables)
    scratch = [tf.Variable(tf.zeros(v.shape), trainable=False) for v in variables]   # the kernel's `mom` input

    def update(grads):
        for grad, variable, velocity, mom in zip(grads, variables, velocities, scratch):
            tf.raw_ops.ResourceApplyRMSProp(var=variable.value.handle, ms=velocity.value.handle, mom=mom.handle,
                                            lr=optimizer.learning_rate, rho=c["rho"], momentum=0.0,
                                            epsilon=c["epsilon"], grad=grad)
        optimizer.iterations.assign_add(1)
    return update


def _metric(name, y, pred):
    """Per-sample metric values, as keras's `accuracy` / `mae` metrics compute them for these heads."""
    if name == "mae":
        return tf.reduce_mean(tf.abs(y - pred), axis=-1)
    if pred.shape[-1] == 1:                                   # sigmoid head: threshold 0.5
        return tf.cast(tf.equal(tf.cast(y[..., 0] > 0.5, tf.int32), tf.cast(pred[..., 0] > 0.5, tf.int32)),
                       tf.float32)
    labels = tf.argmax(y, axis=-1) if y.shape.rank == pred.shape.rank else tf.cast(y, tf.int64)
    return tf.cast(tf.equal(labels, tf.argmax(pred, axis=-1)), tf.float32)


def fit(models, spec, xs, ys, *, epochs, batch_size, seeds, validation=None):
    """Train K same-shaped models side by side, each as keras's fit would train it alone on its own data
    (xs[k]: `Inputs`, ys[k]: targets; shuffled each epoch by RandomState(seeds[k])); validation: K
    (inputs, targets) pairs, all runs of equal sizes. The loss is the sum of the K runs' mean losses, so each
    run's gradient is its own, and the optimizer updates elementwise. Returns one history dict per model and
    leaves each run's weights and optimizer state in its model."""
    k, bs, n, metric = len(models), batch_size, xs[0].n, spec.metric
    if any(x.n != n for x in xs) or (validation and any(v.n != validation[0][0].n for v, _ in validation)):
        raise ValueError("runs trained side by side need equal sample counts")
    layers = stack(models)
    variables = [v for kernel, bias, _ in layers for v in (kernel, bias)]
    optimizer = models[0].optimizer.from_config(models[0].optimizer.get_config())
    optimizer.build(variables)
    update = fused_update(optimizer, variables)
    loss_fn = keras.losses.get(models[0].loss)

    def score(yb, pred):
        """Each run's mean loss and metric over its batch: [2, K]."""
        return tf.stack([tf.reduce_mean(loss_fn(yb, pred), axis=1),
                         tf.reduce_mean(_metric(metric, yb, pred), axis=1)])

    def epoch_of(take, y, size, order, fed, train):
        """One pass over batches of `size` samples in `order` [K, size] (`fed`: the pass's multi-hot batches);
        training steps if `train`."""
        def step(i, total):
            idx = order[:, i * bs: tf.minimum((i + 1) * bs, size)]
            yb = tf.gather(y, idx, batch_dims=1)
            with tf.GradientTape() as tape:
                scores = score(yb, forward(layers, take(i, idx, fed)))
                loss = tf.reduce_sum(scores[0])
            if train:
                update(tape.gradient(loss, variables))
            return i + 1, total + tf.cast(tf.shape(idx)[1], tf.float32) * scores
        _, total = tf.while_loop(lambda i, _: i < -(-size // bs), step, (tf.constant(0), tf.zeros([2, k])))
        return total / size

    def feed(runs, orders):
        return bags(runs, orders, bs) if runs[0].sparse else ()

    take, y = batches(xs), tf.stack([tf.constant(t) for t in ys])
    train_epoch = tf.function(lambda order, fed: epoch_of(take, y, n, order, fed, True), autograph=False)
    if validation:
        vx, vy = [v[0] for v in validation], tf.stack([tf.constant(v[1]) for v in validation])
        vtake, nv = batches(vx), vx[0].n
        in_order = np.tile(np.arange(nv), [k, 1])
        vfed = feed(vx, in_order)
        evaluate = tf.function(lambda: epoch_of(vtake, vy, nv, tf.constant(in_order), vfed, False),
                               autograph=False)

    histories = [{"loss": [], metric: []} | ({"val_loss": [], f"val_{metric}": []} if validation else {})
                 for _ in models]
    rngs = [np.random.RandomState(seed) for seed in seeds]

    def shuffled():
        order = np.stack([rng.permutation(n) for rng in rngs])
        return tf.constant(order), feed(xs, order)

    with concurrent.futures.ThreadPoolExecutor(1) as ahead:    # lays out epoch e+1 while epoch e trains
        upcoming = ahead.submit(shuffled)
        for epoch in range(epochs):
            order, fed = upcoming.result()
            if epoch + 1 < epochs:
                upcoming = ahead.submit(shuffled)
            logs = [train_epoch(order, fed)]
            if validation:
                logs.append(evaluate())
            for history, values in zip(histories, np.concatenate([t.numpy() for t in logs]).T.tolist()):
                for key, value in zip(history, values):
                    history[key].append(value)
    for i, model in enumerate(models):     # run i's weights and optimizer state (saved with the model)
        for layer, (kernel, bias, _) in zip(model.layers, layers):
            layer.kernel.assign(kernel[i])
            layer.bias.assign(bias[i, 0])
        model.optimizer.build(model.trainable_variables)
        for mine, stacked in zip(model.optimizer.variables, optimizer.variables):
            mine.assign(tf.reshape(stacked[i], mine.shape) if len(stacked.shape) else stacked)
    return histories


def save(model, path):
    """model.save, made byte-reproducible: fixed zip timestamps, no `date_saved` in the metadata, and
    config.json's `shared_object_id`s (memory addresses) renumbered 1, 2, ... in order of appearance.
    Stored uncompressed: deflate saves 8% of float32 weights and costs ~0.1 s at every save and load."""
    import json
    import zipfile

    from stages import io
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
