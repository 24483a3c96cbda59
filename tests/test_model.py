"""The fast paths compute what Keras computes: same forward maths, same training steps, same saved model."""
import numpy as np
import pytest

from chapter4 import datasets, inference, network, stats, tasks
from chapter4 import multihot
from tests.floats import assert_close_float32, dense_stack_bound, keras_layers

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")
M = pytest.importorskip("chapter4.model")
from chapter4 import batching, optimizers, stacked, training  # noqa: E402

P = {"units": [16, 8], "activation": "relu", "optimizer": "rmsprop", "learning_rate": 0.001}
CASES = {  # task -> params overrides
    "imdb": {"loss": "binary_crossentropy"},
    "reuters": {"loss": "categorical_crossentropy"},
    "reuters_sparse": {"loss": "sparse_categorical_crossentropy"},
    "housing": {"loss": "mse", "activation": "tanh"},
}


def data(task, n=300, width=200, seed=0):
    rng = np.random.default_rng(seed)
    spec = tasks.get(task.split("_")[0])
    if spec.text:
        seqs = np.empty(n, dtype=object)
        seqs[:] = [rng.integers(0, width, rng.integers(1, 30)).tolist() for _ in range(n)]
        flat, splits = datasets.keras_ids(*datasets.to_ragged(seqs), width)
        indptr, indices = multihot.multi_hot_csr(flat, splits, width)
        y = rng.integers(0, spec.classes, n)
        d = {"indptr": indptr, "indices": indices, "y": y, "num_words": np.int64(width)}
        dense = multihot.multi_hot(indptr, indices, width, dtype=np.float32)
    else:
        dense = rng.normal(size=(n, 13)).astype(np.float32)
        d = {"x": dense, "y": rng.normal(22, 9, n)}
    return spec, d, dense


def setup(task, seed=1):
    spec, d, dense = data(task)
    x = batching.Inputs(d)
    net = network.of(spec, {**P, **CASES[task]}, x.width)
    M.seed_everything(seed)
    return net, d, dense, x, M.build(net), training.targets(net, d["y"])


def batch(x, idx, i=0, bs=None):
    """Batch i of one pass over `x` in order `idx`, as the training loop takes it."""
    bs = bs or len(idx)
    fed = batching.bags([x], np.asarray(idx)[None], bs) if x.sparse else ()
    return batching.batches([x])(i, tf.constant(idx[i * bs:(i + 1) * bs], tf.int64)[None], fed)


@pytest.mark.parametrize("task", CASES)
def test_sparse_forward_equals_dense_model_call(task):
    net, d, dense, x, model, y = setup(task)
    idx = [5, 0, 17, 299, 42]
    ours = stacked.forward(net, stacked.stack([model], net), batch(x, idx))[0].numpy()
    ref = model(dense[idx]).numpy()
    assert_close_float32(ours, ref, dense_stack_bound(keras_layers(model), dense[idx]))   # (other sum orders)


@pytest.mark.parametrize("task", CASES)
def test_training_steps_equal_keras_train_on_batch(task):
    """Two epochs of our compiled loop == Keras's own train_on_batch over the same batches, same start."""
    net, d, dense, x, model, y = setup(task)
    ref = M.build(net)
    ref.set_weights(model.get_weights())
    history, = training.fit([model], net, [x], [y], epochs=2, batch_size=64, seeds=[7])
    rng = np.random.RandomState(7)                    # the loop's shuffling: one permutation per epoch
    for _ in range(2):
        order = rng.permutation(len(y))
        for start in range(0, len(y), 64):
            idx = order[start:start + 64]
            ref.train_on_batch(dense[idx], y[idx])
    for ours, theirs in zip(model.get_weights(), ref.get_weights()):
        np.testing.assert_allclose(ours, theirs, rtol=2e-4, atol=2e-5)
    for ours, theirs in zip(model.optimizer.variables, ref.optimizer.variables):   # saved with the model
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=2e-3, atol=1e-6)
    assert len(history["loss"]) == 2 and np.isfinite(history["loss"]).all()


@pytest.mark.parametrize("task", CASES)
def test_validation_history_equals_keras_evaluate(task):
    net, d, dense, x, model, y = setup(task)
    val = batching.Inputs(d, np.arange(100))
    history, = training.fit([model], net, [batching.Inputs(d, np.arange(100, 300))], [y[100:]], epochs=1, batch_size=32,
                     seeds=[3], validation=[(val, y[:100])])
    logs = model.evaluate(dense[:100], y[:100], batch_size=32, return_dict=True, verbose=0)
    np.testing.assert_allclose(history["val_loss"][0], logs["loss"], rtol=1e-4)
    np.testing.assert_allclose(history[f"val_{net.metric}"][0], logs[net.metric], rtol=1e-4)


@pytest.mark.parametrize("optimizer", ["rmsprop", "sgd"])    # sgd: a run's gradient scaled by 1/K would show
def test_stacked_runs_train_as_each_would_alone(optimizer):
    """K-fold: K models trained side by side in one graph end where each ends trained alone, histories too."""
    spec, d, dense = data("housing")
    net = network.of(spec, {**P, **CASES["housing"], "optimizer": optimizer, "learning_rate": 0.01}, 13)
    folds = [np.arange(300) % 3 != f for f in range(3)]
    M.seed_everything(1)
    stacked = [M.build(net) for _ in folds]
    alone = [M.build(net) for _ in folds]
    for a, b in zip(alone, stacked):
        a.set_weights(b.get_weights())
    y = training.targets(net, d["y"])
    runs = [(batching.Inputs(d, np.flatnonzero(f)), y[f], (batching.Inputs(d, np.flatnonzero(~f)), y[~f])) for f in folds]
    together = training.fit(stacked, net, [r[0] for r in runs], [r[1] for r in runs], epochs=3, batch_size=16,
                     seeds=[4, 5, 6], validation=[r[2] for r in runs])
    for model, (x, y_run, val), seed, history in zip(alone, runs, [4, 5, 6], together):
        own, = training.fit([model], net, [x], [y_run], epochs=3, batch_size=16, seeds=[seed], validation=[val])
        for key in own:
            np.testing.assert_allclose(history[key], own[key], rtol=1e-5)
    for a, b in zip(alone, stacked):
        for ours, theirs in zip(a.get_weights(), b.get_weights()):
            np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    assert not np.allclose(stacked[0].get_weights()[0], stacked[1].get_weights()[0])   # runs stay apart


def test_fused_rmsprop_equals_keras_rmsprop_apply():
    """The network's RMSprop as TF's fused kernel on our own velocity variables, against Keras's RMSprop (same
    learning rate, its default rho and epsilon) applied to the same variables: same variables, velocities (rows
    with a zero gradient decay too) and step count; and `keep` hands the state to a Keras RMSprop, as saved."""
    rng = np.random.default_rng(0)
    start = [rng.normal(size=shape).astype(np.float32) for shape in [(2, 30, 4), (2, 1, 4)]]   # 2 runs stacked
    grads = [[rng.normal(size=w.shape).astype(np.float32) for w in start] for _ in range(5)]
    for g in grads:
        g[0][:, :10] = 0                               # words absent from a batch
    ours_vars, ref_vars = [tf.Variable(w) for w in start], [keras.Variable(w) for w in start]
    ref = keras.optimizers.RMSprop(learning_rate=0.01)
    ref.build(ref_vars)
    ours = optimizers.FusedRMSprop(keras.optimizers.RMSprop(learning_rate=0.01).get_config(), ours_vars)
    graph = tf.function(ours.apply).get_concrete_function([tf.TensorSpec(w.shape) for w in start]).graph
    assert "ResourceApplyRMSProp" in {op.type for op in graph.get_operations()}
    for g in grads:
        ours.apply([tf.constant(a) for a in g])
        ref.apply([tf.constant(a) for a in g], ref_vars)
    assert int(ours.iterations.numpy()) == int(ref.iterations.numpy()) == len(grads)
    for a, b in zip(ours_vars + ours.velocities, ref_vars + ref.variables[2:]):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-7)
    model = keras.Sequential([keras.Input((30,)), keras.layers.Dense(4)])        # run 1's state, as saved
    model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=0.01), loss="mse")
    model.optimizer.build(model.trainable_variables)
    ours.keep(1, model.optimizer, model.trainable_variables)
    saved = [v.numpy() for v in model.optimizer.variables]        # what model.save writes, in Keras's order
    expected = [len(grads), np.float32(0.01), ours.velocities[0].numpy()[1], ours.velocities[1].numpy()[1, 0]]
    assert len(saved) == len(expected)
    for a, b in zip(saved, expected):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", network.ACTIVATIONS)
def test_numpy_activation_equals_keras(name):
    """Each numpy activation against Keras's of that name on random inputs, large ones included."""
    z = np.random.default_rng(0).normal(0, 4, size=(64, 7)).astype(np.float32)
    z[0] = [-100, -30, -1e-3, 0, 1e-3, 30, 100]
    np.testing.assert_allclose(network.ACTIVATIONS[name](z), np.asarray(keras.activations.get(name)(tf.constant(z))),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", network.LOSSES)
def test_numpy_loss_equals_keras(name):
    rng = np.random.default_rng(1)
    if "crossentropy" in name:
        outputs = 1 if name.startswith("binary") else 5
        pred = rng.uniform(size=(50, outputs)).astype(np.float32)
        pred = pred if outputs == 1 else pred / pred.sum(axis=1, keepdims=True)
        pred[0] = 0                                              # clipped at keras's epsilon
        if outputs > 1:
            pred[0, 0] = 1
        y = rng.integers(0, max(outputs, 2), 50)
        target = (y[:, None].astype(np.float32) if outputs == 1 else y if name.startswith("sparse")
                  else np.eye(outputs, dtype=np.float32)[y])
    else:
        pred, y = rng.normal(20, 9, size=(50, 1)).astype(np.float32), rng.normal(20, 9, 50)
        target = y[:, None].astype(np.float32)
    ref = float(np.mean(keras.losses.get(name)(target, pred).numpy()))
    np.testing.assert_allclose(network.loss(name, y, pred), ref, rtol=1e-5)


@pytest.mark.parametrize("outputs", [1, 5])
def test_numpy_accuracy_equals_keras(outputs):
    rng = np.random.default_rng(2)
    pred = rng.uniform(size=(200, outputs)).astype(np.float32)
    y = rng.integers(0, max(outputs, 2), 200)
    metric = keras.metrics.get("accuracy" if outputs == 1 else "sparse_categorical_accuracy")
    if outputs == 1:
        metric = keras.metrics.BinaryAccuracy()
    metric.update_state(y[:, None] if outputs == 1 else y, pred)
    assert network.metric("accuracy", y, pred) == pytest.approx(float(metric.result()), abs=1e-6)


def test_embedding_bag_is_sparse_dense_matmul():
    """The multi-hot first layer against tf.sparse.sparse_dense_matmul on the 0/1 rows, batch by batch of a
    shuffled pass (`bags`' layout), an empty row included: same sums and kernel gradient to float rounding."""
    net, d, dense, x, model, y = setup("reuters")
    kernel = stacked.stack([model], net)[0]["kernel"]
    rows = [d["indices"][d["indptr"][r]:d["indptr"][r + 1]] for r in (3, 1, 4, 15, 9, 26, 5, 35)]
    rows.insert(2, rows[0][:0])
    x = batching.Inputs({"indptr": np.cumsum([0] + [len(r) for r in rows]), "indices": np.concatenate(rows),
                  "num_words": d["num_words"]})
    order = [7, 2, 0, 8, 4, 1, 6, 3, 5]
    for i, idx in enumerate([order[:4], order[4:8], order[8:]]):
        bag = batch(x, order, i, bs=4)
        multi_hot = np.zeros((len(idx), x.width), np.float32)
        for j, r in enumerate(idx):
            multi_hot[j, rows[r]] = 1
        g = tf.random.stateless_normal([len(idx), kernel.shape[2]], seed=[1, i])
        with tf.GradientTape(persistent=True) as tape:
            ours = stacked.embedding_bag(kernel[0], *bag)
            ref = tf.sparse.sparse_dense_matmul(tf.sparse.from_dense(multi_hot), kernel[0])
        no_bias = np.zeros(kernel.shape[2])                  # (sums of kernel rows; of g's rows for the gradient)
        assert_close_float32(ours.numpy(), ref.numpy(), dense_stack_bound([(kernel[0], no_bias, "linear")], multi_hot))
        assert ours.numpy().any(axis=1).tolist() == [r != 2 for r in idx]          # the empty row is 0
        grads = [tf.convert_to_tensor(tape.gradient(out, kernel, output_gradients=g)).numpy() for out in (ours, ref)]
        assert_close_float32(*grads, dense_stack_bound([(g.numpy(), no_bias, "linear")], multi_hot.T)[None])
        assert grads[0].any()


@pytest.mark.parametrize("task", ["imdb", "reuters", "housing"])
@pytest.mark.parametrize("inputs", ["shared", "own"])
def test_replicates_side_by_side_equal_each_alone(task, inputs):
    """Replicates (seeds by stats.seeds) trained side by side in one graph, multi-hot (one stacked kernel, ids
    offset into its blocks) or dense: after 2 epochs each equals the same replicate trained alone from a fresh
    seed_everything, weights and histories, to float rounding. `own`: each run on its own rows, as folds."""
    spec, d, dense = data(task)
    seeds = stats.seeds(11, 3)
    rows = [np.arange(300) if inputs == "shared" else np.flatnonzero(np.arange(300) % 3 != r) for r in range(3)]
    shared = batching.Inputs(d)
    xs = [shared if inputs == "shared" else batching.Inputs(d, r) for r in rows]
    val = batching.Inputs(d, np.arange(40))
    net = network.of(spec, {**P, **CASES[task]}, xs[0].width)
    y = training.targets(net, d["y"])
    models = []
    for seed in seeds:
        M.seed_everything(seed)
        models.append(M.build(net))
    together = training.fit(models, net, xs, [y[r] for r in rows], epochs=2, batch_size=64, seeds=seeds,
                     validation=[(val, y[:40])] * 3)
    for r, seed in enumerate(seeds):
        M.seed_everything(seed)
        alone = M.build(net)
        own, = training.fit([alone], net, [batching.Inputs(d, rows[r])], [y[rows[r]]], epochs=2, batch_size=64, seeds=[seed],
                     validation=[(batching.Inputs(d, np.arange(40)), y[:40])])
        for ours, theirs in zip(models[r].get_weights(), alone.get_weights()):
            np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
        for key in own:
            np.testing.assert_allclose(together[r][key], own[key], rtol=1e-5)
    assert not np.allclose(models[0].get_weights()[0], models[1].get_weights()[0])   # replicates differ


def test_same_seed_same_weights_bit_for_bit():
    weights = []
    for _ in range(2):
        net, d, dense, x, model, y = setup("reuters", seed=5)
        training.fit([model], net, [x], [y], epochs=2, batch_size=50, seeds=[5])
        weights.append(model.get_weights())
    for a, b in zip(*weights):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("task", CASES)
def test_numpy_inference_equals_keras_predict(task, tmp_path):
    """The weights file save writes, run by numpy, against Keras's predict and evaluate of the saved .keras."""
    net, d, dense, x, model, y = setup(task)
    training.fit([model], net, [x], [y], epochs=1, batch_size=64, seeds=[1])
    M.save(model, net, tmp_path / "m")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    ref = loaded.predict(dense, verbose=0)
    ours = inference.Model(tmp_path / "m.npz")
    assert ours.net == net
    for w, keras_layer in zip(ours.weights, loaded.layers):
        assert [a.tolist() for a in w.values()] == [a.tolist() for a in keras_layer.get_weights()]
    got = (ours.predict(indptr=d["indptr"], indices=d["indices"], chunk=128) if "indptr" in d
           else ours.predict(d["x"], chunk=128))
    assert_close_float32(got, ref, dense_stack_bound(keras_layers(loaded), dense))
    logs = loaded.evaluate(dense, y, verbose=0, return_dict=True)
    np.testing.assert_allclose(network.loss(net.loss, d["y"], got), logs["loss"], rtol=1e-3)
    if net.metric == "accuracy":
        assert network.metric("accuracy", d["y"], got) == pytest.approx(logs["accuracy"], abs=1e-6)
    else:
        np.testing.assert_allclose(network.metric("mae", d["y"], got), logs["mae"], rtol=1e-4)


SAVE_ONE = """
import sys
from pathlib import Path
from chapter4 import model as M, network, tasks
net = network.of(tasks.get("housing"), {"units": [8], "activation": "relu", "optimizer": "rmsprop",
                                        "learning_rate": 0.001, "loss": "mse"}, 13)
M.seed_everything(3)
M.save(M.build(net), net, Path(sys.argv[1]))
"""


def test_saved_model_bytes_are_reproducible_across_processes(tmp_path):
    """Same weights, two processes (object ids and clocks differ): the same .keras and .npz bytes, the .keras
    file loadable by Keras."""
    import subprocess
    import sys
    from tests.conftest import ROOT
    for name in ("a", "b"):
        subprocess.run([sys.executable, "-c", SAVE_ONE, str(tmp_path / name)], cwd=ROOT, check=True)
    for suffix in (".keras", ".npz"):
        assert (tmp_path / f"a{suffix}").read_bytes() == (tmp_path / f"b{suffix}").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.keras", "a.npz", "b.keras", "b.npz"]
    model = keras.models.load_model(tmp_path / "a.keras")
    assert [layer.units for layer in model.layers] == [8, 1]


def saved_replicates(task, folder):
    """Five untrained replicates of `task` saved as train saves them: (x for predict, dense rows)."""
    folder.mkdir(exist_ok=True)
    spec, d, dense = data(task)
    net = network.of(spec, {**P, **CASES[task]}, 200 if spec.text else 13)
    for r, seed in enumerate(stats.seeds(3, 5)):
        M.seed_everything(seed)
        M.save(M.build(net), net, folder / f"replicate-{r}")
    return ({"indptr": d["indptr"], "indices": d["indices"]} if spec.text else {"x": d["x"]}), dense, net


def assert_replicate_as_alone(got, folder, r, x, dense):
    """`got` is replicate r of `folder` predicting alone, to float32 rounding (the ensemble runs other BLAS
    calls: 80 columns, not 16, and other chunks), and Keras's prediction to the Keras tolerance above."""
    ref = keras.models.load_model(folder / f"replicate-{r}.keras")
    alone = inference.Model(folder / f"replicate-{r}.npz").predict(**x)
    assert_close_float32(got, alone, dense_stack_bound(keras_layers(ref), dense))
    np.testing.assert_allclose(got, ref.predict(dense, verbose=0), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("task", ["reuters", "housing"])
def test_ensemble_predicts_each_replicate_as_it_predicts_alone(task, tmp_path):
    """The replicates' first kernels gathered side by side (5 x 16 units: wider than 64, so fewer rows a chunk)
    give each replicate its own numpy prediction to float32 rounding, which equals Keras's; the ensemble is their
    mean."""
    x, dense, net = saved_replicates(task, tmp_path)
    ensemble = inference.Ensemble(tmp_path)
    assert ensemble.width == net.inputs and ensemble.loss == net.loss
    each = ensemble.predict_each(**x)
    for r, got in enumerate(each):
        assert_replicate_as_alone(got, tmp_path, r, x, dense)
    np.testing.assert_allclose(ensemble.predict(**x), np.mean(each, axis=0), rtol=1e-6, atol=1e-6)   # (float32)
    assert not np.allclose(each[0], each[1])


@pytest.mark.parametrize("mutation", ["shift", "swap"])
def test_the_tolerance_still_catches_a_misaligned_replicate_block(mutation, tmp_path):
    """The check above fails when the side-by-side kernel is misaligned: the outputs of an ensemble whose
    concatenated first kernels are shifted by one column (every replicate's block takes its neighbour's
    column), or whose replicates 1 and 2 are swapped, fail it for each replicate so affected."""
    x, dense, net = saved_replicates("reuters", tmp_path / "good")
    models = [keras.models.load_model(tmp_path / "good" / f"replicate-{r}.keras") for r in range(5)]
    kernels = [m.layers[0].kernel.numpy() for m in models]
    if mutation == "shift":
        blocks = np.split(np.roll(np.concatenate(kernels, axis=1), 1, axis=1), 5, axis=1)
        for m, block in zip(models, blocks):
            m.layers[0].kernel.assign(block)
        affected = range(5)
    else:
        models[1], models[2] = models[2], models[1]
        affected = (1, 2)
    (tmp_path / "bad").mkdir()
    for r, m in enumerate(models):
        M.save(m, net, tmp_path / "bad" / f"replicate-{r}")
    bad = inference.Ensemble(tmp_path / "bad").predict_each(**x)
    for r in affected:
        with pytest.raises(AssertionError, match="float32 rounding cannot explain"):
            assert_replicate_as_alone(bad[r], tmp_path / "good", r, x, dense)
