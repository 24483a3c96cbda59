"""A user's raw input lines, as `python -m stages.predict` reads them, turned into the model's input rows.

Text (IMDB, Reuters) becomes keras's word ids (chapter4/datasets.py `tokenize`); a housing line is 13
comma-separated raw feature values, normalized with the cached training mean/std. Every problem with a line
is a ValueError whose message names it (the CLI prints it as `predict: line N: <reason>`).
"""
import re

import numpy as np

from chapter4 import datasets

# A plain decimal number, as a CSV of features holds it (no nan/inf, no "1_000", no non-ASCII digits).
NUMBER = re.compile(r"\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\s*", re.ASCII)
FLOAT32_MAX = float(np.finfo(np.float32).max)


def shown(text, limit=40):
    """A field as an error message quotes it: repr'd (one line), cut at `limit` characters."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


def decode_line(raw, n):
    """Bytes of input line `n` (1-based) -> text: the line end (LF or CRLF) and, on line 1, a UTF-8 byte-order
    mark removed. ValueError if the bytes are not UTF-8."""
    raw = raw.removesuffix(b"\n").removesuffix(b"\r")
    if n == 1:
        raw = raw.removeprefix(b"\xef\xbb\xbf")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"not UTF-8 text (byte {e.start + 1} is 0x{raw[e.start]:02x})") from None


def parse(spec, line, word_index, num_words, stats):
    """One raw input line -> a model input row (CSR ids or normalized features); ValueError if bad."""
    if not line.strip():
        raise ValueError("empty input")
    if spec.text:
        return datasets.tokenize(line, word_index, num_words)
    fields = line.split(",")
    if len(fields) != len(spec.features):
        raise ValueError(f"expected {len(spec.features)} comma-separated numbers, got {len(fields)}")
    for f in fields:
        if not NUMBER.fullmatch(f):
            raise ValueError(f"not a number: {shown(f)}")
    values = np.array([float(f) for f in fields])
    row = (values - np.array(stats["mean"])) / np.array(stats["std"])
    for f, v in zip(fields, row):          # the model computes in float32: beyond ~3.4e38 is inf
        if not abs(v) <= FLOAT32_MAX:
            raise ValueError(f"a value the model cannot represent (beyond float32): {shown(f.strip())}")
    return row


def predict_rows(spec, model, rows):
    """Model outputs for parsed rows: word-id lists (multi-hot, as CSR) or normalized feature vectors."""
    if spec.text:
        ids = [np.unique(r) for r in rows]
        indptr = np.concatenate([[0], np.cumsum([len(i) for i in ids])])
        return model.predict(indptr=indptr, indices=np.concatenate(ids))
    return model.predict(np.array(rows, dtype=np.float32))


def read_lines(f, name):
    """The lines of a binary stream; a read error exits with one line."""
    try:
        yield from f
    except OSError as e:
        raise SystemExit(f"predict: {name}: {e.strerror}") from None
