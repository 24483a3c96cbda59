"""The chapter's data as keras.datasets gives it, read from the downloaded files; and text to and from word ids.

Shared by encode (the stage), predict, decode and bench/: loading is exactly
keras.datasets.{imdb,reuters,boston_housing}.load_data (tests/test_encode.py compares them), tokenising is
keras's text_to_word_sequence with load_data's ids, decoding is the book's `decoded_review`.
"""
import json
from pathlib import Path

import numpy as np

from chapter4 import io, tasks

START_CHAR, OOV_CHAR, INDEX_FROM, KERAS_SEED = 1, 2, 3, 113
# keras's text_to_word_sequence defaults: lowercase, these characters become spaces, split on " ".
KERAS_FILTERS = '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n'


def _shuffle(rng, *arrays):
    order = np.arange(len(arrays[0]))
    rng.shuffle(order)
    return [a[order] for a in arrays]


def load_arrays(raw_dir, task, test_split=None):
    """The ((x_train, y_train), (x_test, y_test)) keras's load_data returns before it maps word ids: its
    shuffle (seed 113), and its cut at `test_split` where the file holds one set (Reuters, housing)."""
    name = tasks.get(task).files[0]
    f = io.read_keras_npz(Path(raw_dir) / name, tasks.SHA256[name])
    rng = np.random.RandomState(KERAS_SEED)
    if "x_train" in f:                                    # IMDB: the file holds keras's own train/test sets
        return _shuffle(rng, f["x_train"], f["y_train"]), _shuffle(rng, f["x_test"], f["y_test"])
    xs, ys = _shuffle(rng, f["x"], f["y"])
    cut = int(len(xs) * (1 - test_split))
    return (xs[:cut], ys[:cut]), (xs[cut:], ys[cut:])


def to_ragged(seqs):
    """Object array of int lists -> (flat int64 ids, row_splits)."""
    lengths = np.fromiter(map(len, seqs), dtype=np.int64, count=len(seqs))
    splits = np.concatenate([[0], np.cumsum(lengths)])
    flat = np.fromiter((w for s in seqs for w in s), dtype=np.int64, count=int(splits[-1]))
    return flat, splits


def keras_ids(flat, splits, num_words):
    """keras's start_char=1, index_from=3, oov_char=2 applied to raw ids: returns the new (flat, splits)."""
    n = len(splits) - 1
    new_splits = splits + np.arange(n + 1)                 # one start char per row
    out = np.empty(new_splits[-1], dtype=np.int64)
    starts = new_splits[:-1]
    out[starts] = START_CHAR
    body = np.ones(len(out), dtype=bool)
    body[starts] = False
    ids = flat + INDEX_FROM
    if num_words:
        ids = np.where(ids < num_words, ids, OOV_CHAR)
    out[body] = ids
    return out, new_splits


def load_sequences(raw_dir, task, p):
    """Exactly keras.datasets.{imdb,reuters}.load_data(num_words=...), as ragged (flat, splits) arrays.

    Returns {"train": (flat, splits, y), "test": (flat, splits, y)}.
    """
    parts = load_arrays(raw_dir, task, p.get("test_split"))
    out = {}
    for name, (xs, ys) in zip(("train", "test"), parts):
        flat, splits = keras_ids(*to_ragged(xs), p["num_words"])
        out[name] = (flat, splits, np.asarray(ys, dtype=np.int64))
    return out


def load_housing(raw_dir, p):
    """Exactly keras.datasets.boston_housing.load_data(test_split=...)."""
    return load_arrays(raw_dir, "housing", p["test_split"])


def load_word_index(raw_dir, task):
    """{word: frequency rank} of keras's <task>_word_index.json, after checking its pin."""
    name = f"{task}_word_index.json"
    path = Path(raw_dir) / name
    actual = io.sha256(path)
    if actual != tasks.SHA256[name]:
        raise SystemExit(f"{path}: sha256 mismatch: expected {tasks.SHA256[name]}, got {actual}")
    return json.loads(path.read_text())


def tokenize(text, word_index, num_words):
    """Text -> keras word ids as load_data gives them: start char 1, rank + 3, OOV 2 at or past num_words."""
    text = text.lower().translate(str.maketrans(KERAS_FILTERS, " " * len(KERAS_FILTERS)))
    words = [w for w in text.split(" ") if w]     # keras splits on " " only (not on e.g. "\x85")
    ids = [START_CHAR]
    for w in words:
        rank = word_index.get(w)
        i = rank + INDEX_FROM if rank is not None else OOV_CHAR
        ids.append(i if i < num_words else OOV_CHAR)
    return ids


def decode_words(ids, word_index):
    """The book's decoding: id i is the word of rank i - 3; reserved ids are "?"."""
    reverse = {rank: word for word, rank in word_index.items()}
    return " ".join(reverse.get(i - INDEX_FROM, "?") for i in ids)
