"""predict: use a trained model. Runs with numpy (no TensorFlow).

    python -m stages.predict <task> [FILE]     raw inputs, one per line (stdin when FILE is - or missing)
    python -m stages.predict <task> --test     the stage: test-set predictions -> data/predict/<task>/

Raw inputs: English review text (imdb), newswire text (reuters), or 13 comma-separated raw feature values
(housing, unnormalized: the cached training mean/std are applied). The prediction is the replicates'
ensemble: their outputs averaged. Prints one JSON object per line:
imdb {"positive": p}; reuters {"topic": name, "probability": p, "top3": [[name, p], ...]}; housing {"price": v}
in $1000s. Input is read as bytes, one UTF-8 line at a time (CRLF line ends and a byte-order mark are fine).
A bad line gets one error line on stderr, `predict: line N: <reason>` (not UTF-8, empty, wrong field count,
not a number, a value the model cannot represent), the other lines still print, and the exit code is 1.
"""
import json
import os
import sys
from pathlib import Path

import numpy as np

from chapter4 import datasets, inference, io, tasks
from chapter4.rawinput import decode_line, parse, predict_rows, read_lines


def cli(task, lines, out=None, err=None):
    """Answer raw input lines (bytes, as read from a file): one JSON line per good line, in order, and one
    `predict: line N: <reason>` on stderr per bad one. Returns 1 if some line was bad, else 0."""
    out, err = out or sys.stdout, err or sys.stderr
    spec = tasks.get(task)
    model = inference.Ensemble(f"data/model/{task}")
    num_words = model.width
    word_index = datasets.load_word_index(Path("data/raw") / task, task) if spec.text else None
    stats = None if spec.text else io.read_json(f"data/encoded/{task}/stats.json")
    failed = False
    for n, raw in enumerate(lines, 1):
        try:
            with np.errstate(all="ignore"):    # an overflow is reported below, not as a numpy warning
                row = parse(spec, decode_line(raw, n), word_index, num_words, stats)
                pred = predict_rows(spec, model, [row])[0]
            if not np.isfinite(pred).all():
                raise ValueError("a value the model cannot represent: the prediction overflows float32")
            answer = json.dumps(spec.show(pred), allow_nan=False)
        except ValueError as e:
            print(f"predict: line {n}: {e}", file=err, flush=True)
            failed = True
            continue
        print(answer, file=out, flush=True)
    return 1 if failed else 0


def test_set(task):
    """The stage: every test sample's prediction, and (actual, predicted) pairs for the DVC plot."""
    spec = tasks.get(task)
    model = inference.Ensemble(f"data/model/{task}")
    test = io.read_npz(f"data/encoded/{task}/test.npz")
    pred = (model.predict(indptr=test["indptr"], indices=test["indices"]) if spec.text
            else model.predict(test["x"]))
    out = Path("data/predict") / task
    y = test["y"]
    lines, pairs = spec.table(y, pred)
    io.write_bytes(out / "test.csv", ("\n".join(lines) + "\n").encode())
    io.write_json(out / "pairs.json", pairs)
    first = spec.show(pred[0])
    if spec.classes > 2:                 # the book's checks on predictions[0] (Reuters)
        first |= {"sum": round(float(pred[0].sum()), 6), "argmax": int(pred[0].argmax())}
    print(f"predict@{task}: predictions[0] = {json.dumps(first)} (label {y[0]})")


USAGE = "usage: python -m stages.predict <task> [FILE | -]   (or --help)"


def main(argv):
    if argv[:1] in (["-h"], ["--help"]):
        print(__doc__)
        return 0
    if not argv:
        raise SystemExit(USAGE)
    task, rest = argv[0], argv[1:]
    if rest == ["--test"]:
        return test_set(task)
    if len(rest) > 1:
        raise SystemExit(USAGE)
    if not inference.replicates(f"data/model/{tasks.get(task).name}"):
        raise SystemExit(f"predict: no trained models in data/model/{task}/: run `dvc repro train@{task}` "
                         f"(or `dvc pull`) first")
    if not rest or rest[0] == "-":
        return cli(task, read_lines(sys.stdin.buffer, "stdin"))
    name = rest[0] if rest[0].isprintable() else repr(rest[0])
    try:
        f = open(rest[0], "rb")
    except OSError as e:
        raise SystemExit(f"predict: {name}: {e.strerror}") from None
    except ValueError as e:                      # a path no OS accepts (a NUL byte)
        raise SystemExit(f"predict: {name}: {e}") from None
    with f:
        return cli(task, read_lines(f, name))


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except BrokenPipeError:                    # the reader went away (`... | head -1`): stop without a traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
