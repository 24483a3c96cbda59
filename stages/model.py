"""The book's models and a compiled training loop for them (the only module that imports TensorFlow).

`build` makes the chapter's Sequential of Dense layers from a params section. `fit` does what
`model.fit(x, y, epochs, batch_size, validation_data=...)` does -- shuffle every epoch, rmsprop steps on
mini-batches, per-epoch mean training loss/metric and validation loss/metric -- but runs each epoch as one
`tf.function`, so a 303-sample housing epoch costs milliseconds instead of Keras's per-epoch overhead.
Multi-hot inputs stay sparse: a batch is a tf.SparseTensor of the samples' word ids, and the first Dense
layer's product with the 0/1 rows is `tf.sparse.sparse_dense_matmul` (the sum of the kernel rows of the
words present). The saved model is the book's plain Sequential, taking dense 0/1 rows.
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402

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
    """Training inputs on the TF side: dense rows, or multi-hot rows kept as CSR word ids."""

    def __init__(self, data, rows=None):
        if "indptr" in data:
            indptr, indices = data["indptr"], data["indices"]
            if rows is not None:      # restrict the CSR to `rows`
                lengths = (indptr[1:] - indptr[:-1])[rows]
                take = np.concatenate([np.arange(indptr[r], indptr[r + 1]) for r in rows]) if len(rows) else []
                indptr = np.concatenate([[0], np.cumsum(lengths)])
                indices = indices[np.asarray(take, dtype=np.int64)]
            self.width = int(data["num_words"])
            self.ids = tf.RaggedTensor.from_row_splits(tf.constant(indices.astype(np.int64)),
                                                       tf.constant(indptr.astype(np.int64)))
            self.n = len(indptr) - 1
        else:
            x = data["x"] if rows is None else data["x"][rows]
            self.width, self.ids, self.n = x.shape[1], tf.constant(x.astype(np.float32)), len(x)
        self.sparse = "indptr" in data

    def take(self, idx):
        """Rows `idx`: a dense float32 batch, or for multi-hot rows a SparseTensor of their 1s."""
        rows = tf.gather(self.ids, idx)
        if not self.sparse:
            return rows
        coo = rows.to_sparse()            # values: word ids at [row, position]; ids are sorted within a row
        return tf.SparseTensor(tf.stack([coo.indices[:, 0], coo.values], axis=1),
                               tf.ones_like(coo.values, dtype=tf.float32),
                               tf.stack([coo.dense_shape[0], tf.constant(self.width, tf.int64)]))


def forward(model, x, training=False):
    """model(x) for a dense batch; for a SparseTensor batch the same layers, the first one as a sparse product."""
    if not isinstance(x, tf.SparseTensor):
        return model(x, training=training)
    first, *rest = model.layers
    h = first.activation(tf.sparse.sparse_dense_matmul(x, first.kernel) + first.bias)
    for layer in rest:
        h = layer(h, training=training)
    return h


def _metric(name, y, pred):
    """Per-sample metric values, as keras's `accuracy` / `mae` metrics compute them for these heads."""
    if name == "mae":
        return tf.reduce_mean(tf.abs(y - pred), axis=-1)
    if pred.shape[-1] == 1:                                   # sigmoid head: threshold 0.5
        return tf.cast(tf.equal(tf.cast(y[:, 0] > 0.5, tf.int32), tf.cast(pred[:, 0] > 0.5, tf.int32)), tf.float32)
    labels = tf.argmax(y, axis=-1) if len(y.shape) == 2 else tf.cast(y, tf.int64)
    return tf.cast(tf.equal(labels, tf.argmax(pred, axis=-1)), tf.float32)


def fit(model, spec, x, y, *, epochs, batch_size, seed, validation=None, on_epoch=None):
    """Train `model` in place like keras's fit; returns the history dict (one list per metric)."""
    y = tf.constant(y)
    metric, loss_fn = spec.metric, model.loss
    loss_fn = keras.losses.get(loss_fn)
    variables = model.trainable_variables
    model.optimizer.build(variables)
    n, bs = x.n, batch_size
    n_batches = -(-n // bs)

    def score(yb, pred):
        return tf.reduce_mean(loss_fn(yb, pred)), tf.reduce_mean(_metric(metric, yb, pred))

    @tf.function
    def train_epoch(order):
        total = tf.zeros(2)
        for i in tf.range(n_batches):
            idx = order[i * bs: tf.minimum((i + 1) * bs, n)]
            xb, yb = x.take(idx), tf.gather(y, idx)
            with tf.GradientTape() as tape:
                pred = forward(model, xb, training=True)
                loss, m = score(yb, pred)
            model.optimizer.apply(tape.gradient(loss, variables), variables)
            total += tf.cast(tf.shape(idx)[0], tf.float32) * tf.stack([loss, m])
        return total / n

    if validation is not None:
        vx, vy = validation[0], tf.constant(validation[1])

        @tf.function
        def evaluate():
            total = tf.zeros(2)
            for i in tf.range(-(-vx.n // bs)):
                idx = tf.range(i * bs, tf.minimum((i + 1) * bs, vx.n))
                yb = tf.gather(vy, idx)
                pred = forward(model, vx.take(idx))
                total += tf.cast(tf.shape(idx)[0], tf.float32) * tf.stack(score(yb, pred))
            return total / vx.n

    history = {"loss": [], metric: []} | ({"val_loss": [], f"val_{metric}": []} if validation else {})
    rng = np.random.RandomState(seed)
    for epoch in range(epochs):
        loss, m = train_epoch(tf.constant(rng.permutation(n))).numpy().tolist()
        history["loss"].append(loss)
        history[metric].append(m)
        if validation is not None:
            vloss, vm = evaluate().numpy().tolist()
            history["val_loss"].append(vloss)
            history[f"val_{metric}"].append(vm)
        if on_epoch:
            on_epoch(epoch, {k: v[-1] for k, v in history.items()})
    return history


def save(model, path):
    """model.save, made byte-reproducible: fixed zip timestamps, no `date_saved` in the metadata, and
    config.json's `shared_object_id`s (memory addresses) renumbered 1, 2, ... in order of appearance."""
    import json
    import zipfile

    from stages import io
    with io.atomic_path(path) as tmp:
        raw = tmp.with_name(tmp.name + ".raw.keras")
        try:
            model.save(raw)
            with zipfile.ZipFile(raw) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as dst:
                for info in src.infolist():
                    data = src.read(info)
                    if info.filename == "metadata.json":
                        meta = json.loads(data)
                        meta.pop("date_saved", None)
                        data = json.dumps(meta).encode()
                    elif info.filename == "config.json":
                        data = json.dumps(_renumber_shared_ids(json.loads(data), {})).encode()
                    dst.writestr(zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0)), data,
                                 compress_type=zipfile.ZIP_DEFLATED)
        finally:
            raw.unlink(missing_ok=True)


def _renumber_shared_ids(node, ids):
    if isinstance(node, dict):
        return {k: (ids.setdefault(v, len(ids) + 1) if k == "shared_object_id" else _renumber_shared_ids(v, ids))
                for k, v in node.items()}
    if isinstance(node, list):
        return [_renumber_shared_ids(v, ids) for v in node]
    return node
