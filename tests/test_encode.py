"""encode and split against the book's own computation on the same inputs."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from bench.book import vectorize_sequences  # the book's listing 4.3
from chapter4 import datasets, io, multihot
from stages import encode, split


def ragged_rows(flat, splits):
    return [flat[a:b].tolist() for a, b in zip(splits[:-1], splits[1:])]


@pytest.fixture(scope="module")
def keras_datasets():
    from keras.datasets import boston_housing, imdb, reuters
    return {"imdb": imdb.load_data(num_words=10000), "reuters": reuters.load_data(num_words=10000),
            "reuters5000": reuters.load_data(num_words=5000, test_split=0.3),
            "housing": boston_housing.load_data()}


@pytest.mark.parametrize("task,p,ref", [
    ("imdb", {"num_words": 10000}, "imdb"),
    ("reuters", {"num_words": 10000, "test_split": 0.2}, "reuters"),
    ("reuters", {"num_words": 5000, "test_split": 0.3}, "reuters5000"),
])
def test_sequences_equal_keras_load_data(raw, keras_datasets, task, p, ref):
    ours = datasets.load_sequences(raw / task, task, p)
    for (x, y), part in zip(keras_datasets[ref], ("train", "test")):
        flat, splits, labels = ours[part]
        assert ragged_rows(flat, splits) == [list(s) for s in x]
        np.testing.assert_array_equal(labels, y)


def test_multi_hot_is_bit_identical_to_the_book_loop(raw, keras_datasets):
    (x_train, _), (x_test, _) = keras_datasets["imdb"]
    ours = datasets.load_sequences(raw / "imdb", "imdb", {"num_words": 10000})
    for x, part in ((x_train, "train"), (x_test, "test")):
        indptr, indices = multihot.multi_hot_csr(*ours[part][:2], 10000)
        for start in range(0, len(x), 5000):              # the book's float64 matrix, 5 000 rows at a time
            rows = np.arange(start, min(start + 5000, len(x)))
            book = vectorize_sequences(x[rows])
            mine = multihot.multi_hot(indptr, indices, 10000, rows)
            assert mine.dtype == book.dtype and np.array_equal(mine, book)


def test_housing_normalized_with_training_statistics(raw, keras_datasets):
    (train_data, train_targets), (test_data, test_targets) = keras_datasets["housing"]
    (x_train, y_train), (x_test, y_test) = datasets.load_housing(raw / "housing", {"test_split": 0.2})
    np.testing.assert_array_equal(y_train, train_targets)
    np.testing.assert_array_equal(y_test, test_targets)
    train_data, test_data = train_data.copy(), test_data.copy()
    mean = train_data.mean(axis=0)                        # the book's listing 4.24, verbatim
    train_data -= mean
    std = train_data.std(axis=0)
    train_data /= std
    test_data -= mean
    test_data /= std
    a, b, stats = encode.normalize(x_train, x_test)
    np.testing.assert_allclose(a, train_data, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(b, test_data, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(stats["std"], std)


sequences = st.lists(st.lists(st.integers(0, 300), max_size=40), min_size=1, max_size=30)


@settings(max_examples=200, deadline=None)
@given(seqs=sequences, num_words=st.integers(4, 320), span=st.integers(1, 64))
def test_property_encoding_equals_the_book_loop(seqs, num_words, span):
    xs = np.empty(len(seqs), dtype=object)
    xs[:] = seqs
    flat, splits = datasets.keras_ids(*datasets.to_ragged(xs), num_words)
    keras_like = [[1] + [w + 3 if w + 3 < num_words else 2 for w in s] for s in seqs]   # keras's list code
    assert ragged_rows(flat, splits) == keras_like
    indptr, indices = multihot.multi_hot_csr(flat, splits, num_words, span=span)   # rows encoded in many spans
    assert np.array_equal(multihot.multi_hot(indptr, indices, num_words), vectorize_sequences(keras_like, num_words))
    assert ragged_rows(indices, indptr) == [sorted(set(row)) for row in keras_like]  # canonical CSR


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(st.lists(st.integers(0, 88583), max_size=20), min_size=1, max_size=20),
       span=st.integers(1, 64))
def test_property_csr_of_any_rows(rows, span):
    """Empty rows, repeats, ids past 16 bits (IMDB's whole vocabulary): each row's distinct ids, sorted."""
    flat = np.array([i for row in rows for i in row], dtype=np.int64)
    splits = np.cumsum([0] + [len(row) for row in rows])
    indptr, indices = multihot.multi_hot_csr(flat, splits, 88584, span=span)
    assert ragged_rows(indices, indptr) == [sorted(set(row)) for row in rows]


@settings(max_examples=200, deadline=None)
@given(train=st.integers(2, 40), test=st.integers(1, 10), cols=st.integers(1, 5), seed=st.integers(0, 999))
def test_property_normalize_uses_training_statistics_only(train, test, cols, seed):
    rng = np.random.default_rng(seed)
    x_train = rng.normal(5, 3, (train, cols))
    x_test = rng.normal(-50, 30, (test, cols))              # wildly different test data must not matter
    a, b, stats = encode.normalize(x_train, x_test)
    np.testing.assert_allclose(stats["mean"], x_train.mean(axis=0))
    np.testing.assert_allclose(b, (x_test - x_train.mean(axis=0)) / x_train.std(axis=0))
    _, b2, _ = encode.normalize(x_train, x_test * 7 + 1)
    np.testing.assert_allclose(b2 * x_train.std(axis=0) + x_train.mean(axis=0), x_test * 7 + 1)
    np.testing.assert_allclose(a.mean(axis=0), 0, atol=1e-9)


@settings(max_examples=300, deadline=None)
@given(n=st.integers(2, 500), k=st.integers(2, 20))
def test_property_folds_partition_as_the_book_slices(n, k):
    if k > n:
        return
    fold = split.kfold(n, k)
    idx = np.arange(n)
    num_val_samples = n // k
    for i in range(k):                                    # the book's listing 4.27 slicing
        val = idx[i * num_val_samples: (i + 1) * num_val_samples]
        partial = np.concatenate([idx[:i * num_val_samples], idx[(i + 1) * num_val_samples:]])
        np.testing.assert_array_equal(np.flatnonzero(fold == i), val)
        np.testing.assert_array_equal(np.flatnonzero(fold != i), partial)


def test_holdout_is_the_first_val_size_samples():
    fold = split.holdout(25000, 10000)
    np.testing.assert_array_equal(np.flatnonzero(fold == 0), np.arange(10000))
    np.testing.assert_array_equal(np.flatnonzero(fold != 0), np.arange(10000, 25000))


def test_keras_npz_refuses_pickled_code(tmp_path):
    import pickle
    import zipfile

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))
    path = tmp_path / "evil.npz"
    with zipfile.ZipFile(path, "w") as z, z.open("x.npy", "w") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "|O", "fortran_order": False, "shape": (1,)})
        pickle.dump(np.array([Evil()], dtype=object), f)
    with pytest.raises(pickle.UnpicklingError, match="builtins.print"):
        io.read_keras_npz(path, io.sha256(path))
