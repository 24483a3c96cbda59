"""predict: use a trained model. Runs with numpy (no TensorFlow).

    python -m stages.predict <task> [FILE]     raw inputs, one per line (stdin when FILE is - or missing)
    python -m stages.predict <task> --test     the stage: test-set predictions -> data/predict/<task>/

Raw inputs: English review text (imdb), newswire text (reuters), or 13 comma-separated raw feature values
(housing, unnormalized: the cached training mean/std are applied). The prediction is the replicates'
ensemble: their outputs averaged. Prints one JSON object per line:
imdb {"positive": p}; reuters {"topic": name, "probability": p, "top3": [[name, p], ...]}; housing {"price": v}
in $1000s. A bad line gets one error line on stderr (the other lines still print) and the exit code is 1.
"""
import json
import sys
from pathlib import Path

import numpy as np

from stages import encode, inference, io, tasks

# keras's text_to_word_sequence defaults: lowercase, these characters become spaces, split on " ".
KERAS_FILTERS = '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n'
HOUSING_FEATURES = 13


def tokenize(text, word_index, num_words):
    """Text -> keras word ids as load_data gives them: start char 1, rank + 3, OOV 2 at or past num_words."""
    text = text.lower().translate(str.maketrans(KERAS_FILTERS, " " * len(KERAS_FILTERS)))
    words = [w for w in text.split(" ") if w]     # keras splits on " " only (not on e.g. "\x85")
    ids = [encode.START_CHAR]
    for w in words:
        rank = word_index.get(w)
        i = rank + encode.INDEX_FROM if rank is not None else encode.OOV_CHAR
        ids.append(i if i < num_words else encode.OOV_CHAR)
    return ids


def describe(spec, row):
    """One prediction as the CLI prints it."""
    if spec.name == "imdb":
        return {"positive": round(float(row[0]), 6)}
    if spec.name == "reuters":
        top = np.argsort(-row, kind="stable")[:3]
        return {"topic": tasks.REUTERS_TOPICS[top[0]], "probability": round(float(row[top[0]]), 6),
                "top3": [[tasks.REUTERS_TOPICS[i], round(float(row[i]), 6)] for i in top]}
    return {"price": round(float(row[0]), 4)}


def parse(spec, line, word_index, num_words, stats):
    """One raw input line -> a model input row (CSR ids or normalized features); ValueError if bad."""
    if not line.strip():
        raise ValueError("empty input")
    if spec.text:
        return tokenize(line, word_index, num_words)
    fields = line.split(",")
    if len(fields) != HOUSING_FEATURES:
        raise ValueError(f"expected {HOUSING_FEATURES} comma-separated numbers, got {len(fields)}")
    try:
        values = np.array([float(f) for f in fields])
    except ValueError as e:
        raise ValueError(str(e).replace("could not convert string to float: ", "not a number: ")) from None
    if not np.isfinite(values).all():
        raise ValueError("not a finite number")
    return (values - np.array(stats["mean"])) / np.array(stats["std"])


def predict_rows(spec, model, rows):
    """Model outputs for parsed rows: word-id lists (multi-hot, as CSR) or normalized feature vectors."""
    if spec.text:
        ids = [np.unique(r) for r in rows]
        indptr = np.concatenate([[0], np.cumsum([len(i) for i in ids])])
        return model.predict(indptr=indptr, indices=np.concatenate(ids))
    return model.predict(np.array(rows, dtype=np.float32))


def cli(task, lines, out=sys.stdout, err=sys.stderr):
    spec = tasks.get(task)
    model = inference.Ensemble(f"data/model/{task}")
    num_words = model.width
    word_index = encode.load_word_index(Path("data/raw") / task, task) if spec.text else None
    stats = None if spec.text else io.read_json("data/encoded/housing/stats.json")
    failed = False
    for n, line in enumerate(lines, 1):
        try:
            row = parse(spec, line.rstrip("\n"), word_index, num_words, stats)
        except ValueError as e:
            print(f"predict: line {n}: {e}", file=err, flush=True)
            failed = True
            continue
        print(json.dumps(describe(spec, predict_rows(spec, model, [row])[0])), file=out, flush=True)
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
    if spec.name == "housing":
        lines = ["actual,predicted"] + [f"{a:.1f},{p:.4f}" for a, p in zip(y, pred[:, 0])]
        pairs = [{"actual": round(float(a), 1), "predicted": round(float(p), 2)} for a, p in zip(y, pred[:, 0])]
    elif spec.name == "imdb":
        lines = ["label,positive"] + [f"{a},{p:.6f}" for a, p in zip(y, pred[:, 0])]
        names = ("negative", "positive")
        pairs = [{"actual": names[a], "predicted": names[int(p > 0.5)]} for a, p in zip(y, pred[:, 0])]
    else:
        top = pred.argmax(axis=1)
        lines = ["label,topic,probability"] + [f"{tasks.REUTERS_TOPICS[a]},{tasks.REUTERS_TOPICS[t]},{p[t]:.6f}"
                                               for a, t, p in zip(y, top, pred)]
        pairs = [{"actual": tasks.REUTERS_TOPICS[a], "predicted": tasks.REUTERS_TOPICS[t]} for a, t in zip(y, top)]
    io.write_bytes(out / "test.csv", ("\n".join(lines) + "\n").encode())
    io.write_json(out / "pairs.json", pairs)
    first = describe(spec, pred[0])
    if spec.name == "reuters":           # the book's checks on predictions[0]
        first |= {"sum": round(float(pred[0].sum()), 6), "argmax": int(pred[0].argmax())}
    print(f"predict@{task}: predictions[0] = {json.dumps(first)} (label {y[0]})")


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        raise SystemExit(__doc__)
    task, rest = argv[0], argv[1:]
    if rest == ["--test"]:
        return test_set(task)
    if len(rest) > 1:
        raise SystemExit("usage: python -m stages.predict <task> [FILE | -]")
    if not any(Path(f"data/model/{tasks.get(task).name}").glob("replicate-*.keras")):
        raise SystemExit(f"predict: no trained models in data/model/{task}/: run `dvc repro train@{task}` "
                         f"(or `dvc pull`) first")
    if not rest or rest[0] == "-":
        return cli(task, sys.stdin)
    try:
        with open(rest[0], encoding="utf-8") as f:
            return cli(task, f)
    except OSError as e:
        raise SystemExit(f"predict: {rest[0]}: {e.strerror}") from None


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
