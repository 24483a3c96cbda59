"""K runs of one network side by side: their weights stacked along a first axis (kernels [K, in, out]) in
variables of our own, and the forward pass every run computes on its own batch in one set of ops, the first
layer of multi-hot rows as an embedding bag (to float rounding what `tf.sparse.sparse_dense_matmul`
computes, and faster).
"""
import numpy as np

from chapter4.backend import tf
from chapter4.batching import Bag


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
