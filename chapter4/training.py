"""The training loop: `fit` does what `model.fit(x, y, epochs, batch_size, validation_data=...)` does --
shuffle every epoch, optimizer steps on mini-batches, per-epoch mean training loss/metric and validation
loss/metric -- but runs each epoch as one `tf.function`, so a 303-sample housing epoch costs milliseconds
instead of Keras's per-epoch overhead. It trains K models of one shape side by side (replicates, and the folds
of a K-fold): each step is one set of ops for all K runs (chapter4/stacked.py), and each run still gets exactly
its own shuffle (chapter4/batching.py), gradients and optimizer updates (chapter4/optimizers.py).
"""
import numpy as np

from chapter4.backend import keras, tf
from chapter4.batching import batches, feed, shuffled_passes
from chapter4.optimizers import optimizer_for
from chapter4.stacked import forward, stack, unstack


def targets(net, y):
    """Labels as the loss wants them: one-hot for categorical_crossentropy, float column otherwise."""
    if net.loss == "categorical_crossentropy":
        return np.eye(net.outputs, dtype=np.float32)[y]
    if net.loss == "sparse_categorical_crossentropy":
        return y.astype(np.int32)
    return y.astype(np.float32).reshape(-1, 1)


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
