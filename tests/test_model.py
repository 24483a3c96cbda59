"""The fast paths compute what Keras computes: same forward maths, same training steps, same saved model."""
import numpy as np
import pytest

from stages import encode, inference, tasks

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")
M = pytest.importorskip("stages.model")

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
        flat, splits = encode.keras_ids(*encode.to_ragged(seqs), width)
        indptr, indices = encode.multi_hot_csr(flat, splits, width)
        y = rng.integers(0, spec.classes, n)
        d = {"indptr": indptr, "indices": indices, "y": y, "num_words": np.int64(width)}
        dense = encode.multi_hot(indptr, indices, width, dtype=np.float32)
    else:
        dense = rng.normal(size=(n, 13)).astype(np.float32)
        d = {"x": dense, "y": rng.normal(22, 9, n)}
    return spec, d, dense


def setup(task, seed=1):
    spec, d, dense = data(task)
    p = {**P, **CASES[task]}
    M.seed_everything(seed)
    x = M.Inputs(d)
    return spec, p, d, dense, x, M.build(spec, p, x.width), M.targets(spec, p, d["y"])


@pytest.mark.parametrize("task", CASES)
def test_sparse_forward_equals_dense_model_call(task):
    spec, p, d, dense, x, model, y = setup(task)
    idx = tf.constant([5, 0, 17, 299, 42], tf.int64)
    ours = M.forward(model, x.take(idx)).numpy()
    ref = model(dense[idx.numpy()]).numpy()
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("task", CASES)
def test_training_steps_equal_keras_train_on_batch(task):
    """Two epochs of our compiled loop == Keras's own train_on_batch over the same batches, same start."""
    spec, p, d, dense, x, model, y = setup(task)
    ref = M.build(spec, p, x.width)
    ref.set_weights(model.get_weights())
    history = M.fit(model, spec, x, y, epochs=2, batch_size=64, seed=7)
    rng = np.random.RandomState(7)                    # the loop's shuffling: one permutation per epoch
    for _ in range(2):
        order = rng.permutation(len(y))
        for start in range(0, len(y), 64):
            idx = order[start:start + 64]
            ref.train_on_batch(dense[idx], y[idx])
    for ours, theirs in zip(model.get_weights(), ref.get_weights()):
        np.testing.assert_allclose(ours, theirs, rtol=2e-4, atol=2e-5)
    assert len(history["loss"]) == 2 and np.isfinite(history["loss"]).all()


@pytest.mark.parametrize("task", CASES)
def test_validation_history_equals_keras_evaluate(task):
    spec, p, d, dense, x, model, y = setup(task)
    val = M.Inputs(d, np.arange(100))
    history = M.fit(model, spec, M.Inputs(d, np.arange(100, 300)), y[100:], epochs=1, batch_size=32, seed=3,
                    validation=(val, y[:100]))
    logs = model.evaluate(dense[:100], y[:100], batch_size=32, return_dict=True, verbose=0)
    np.testing.assert_allclose(history["val_loss"][0], logs["loss"], rtol=1e-4)
    np.testing.assert_allclose(history[f"val_{spec.metric}"][0], logs[spec.metric], rtol=1e-4)


def test_same_seed_same_weights_bit_for_bit():
    weights = []
    for _ in range(2):
        spec, p, d, dense, x, model, y = setup("reuters", seed=5)
        M.fit(model, spec, x, y, epochs=2, batch_size=50, seed=5)
        weights.append(model.get_weights())
    for a, b in zip(*weights):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("task", CASES)
def test_numpy_inference_equals_keras_predict(task, tmp_path):
    spec, p, d, dense, x, model, y = setup(task)
    M.fit(model, spec, x, y, epochs=1, batch_size=64, seed=1)
    M.save(model, tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    ref = loaded.predict(dense, verbose=0)
    ours = inference.Model(tmp_path / "m.keras")
    got = (ours.predict(indptr=d["indptr"], indices=d["indices"], chunk=128) if spec.text
           else ours.predict(d["x"], chunk=128))
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)
    logs = loaded.evaluate(dense, y, verbose=0, return_dict=True)
    np.testing.assert_allclose(inference.loss(p["loss"], d["y"], got), logs["loss"], rtol=1e-3)
    if spec.metric == "accuracy":
        assert inference.accuracy(d["y"], got) == pytest.approx(logs["accuracy"], abs=1e-6)
    else:
        np.testing.assert_allclose(inference.loss("mae", d["y"], got), logs["mae"], rtol=1e-4)


SAVE_ONE = """
import sys
from stages import model as M, tasks
spec = tasks.get("housing")
M.seed_everything(3)
model = M.build(spec, {"units": [8], "activation": "relu", "optimizer": "rmsprop", "learning_rate": 0.001,
                       "loss": "mse"}, 13)
M.save(model, sys.argv[1])
"""


def test_saved_model_bytes_are_reproducible_across_processes(tmp_path):
    """Same weights, two processes (object ids and clocks differ): the same .keras bytes, loadable by Keras."""
    import subprocess
    import sys
    from tests.conftest import ROOT
    for name in ("a.keras", "b.keras"):
        subprocess.run([sys.executable, "-c", SAVE_ONE, str(tmp_path / name)], cwd=ROOT, check=True)
    assert (tmp_path / "a.keras").read_bytes() == (tmp_path / "b.keras").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.keras", "b.keras"]
    model = keras.models.load_model(tmp_path / "a.keras")
    assert [layer.units for layer in model.layers] == [8, 1]
