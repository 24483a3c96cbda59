"""decode: show a sample as the book does (`decoded_review`), words for IMDB/Reuters, features for housing.

    python -m stages.decode <task> <index> [--split train|test]

Reads data/raw/<task>/ with the `encode` params (same num_words and split as the pipeline). Reserved ids
(0 padding, 1 start, 2 out-of-vocabulary) print as "?". Prints one JSON line: {"text": ..., "label": ...}
(IMDB, Reuters) or {"features": {"CRIM": ..., ...}, "price": ...} (housing, raw values, price in $1000s).
"""
import argparse
import json
from pathlib import Path

from stages import encode, params, tasks

HOUSING_FEATURES = ("CRIM", "ZN", "INDUS", "CHAS", "NOX", "RM", "AGE", "DIS", "RAD", "TAX", "PTRATIO", "B", "LSTAT")


def decode_words(ids, word_index):
    """The book's decoding: id i is the word of rank i - 3; reserved ids are "?"."""
    reverse = {rank: word for word, rank in word_index.items()}
    return " ".join(reverse.get(i - encode.INDEX_FROM, "?") for i in ids)


class Parser(argparse.ArgumentParser):
    def error(self, message):
        """A bad argument: one line (argparse's own usage message takes three)."""
        self.exit(2, f"decode: {message} (usage: python -m stages.decode <task> <index> [--split train|test])\n")


def main(argv=None):
    ap = Parser(prog="python -m stages.decode", description=__doc__.splitlines()[0], allow_abbrev=False)
    ap.add_argument("task", choices=list(tasks.TASKS))
    ap.add_argument("index", type=int)
    ap.add_argument("--split", choices=("train", "test"), default="train")
    args = ap.parse_args(argv)
    p = params.load("encode", args.task)
    raw = Path("data/raw") / args.task
    if not raw.is_dir():
        raise SystemExit(f"decode: no data in {raw}: run `dvc repro download@{args.task}` first")
    if args.task == "housing":
        (xtr, ytr), (xte, yte) = encode.load_housing(raw, p)
        x, y = (xtr, ytr) if args.split == "train" else (xte, yte)
    else:
        flat, splits, y = encode.load_sequences(raw, args.task, p)[args.split]
    if not 0 <= args.index < len(y):
        raise SystemExit(f"decode: index must be between 0 and {len(y) - 1} for the {args.split} split, "
                         f"got {args.index}")
    if args.task == "housing":
        out = {"features": dict(zip(HOUSING_FEATURES, x[args.index].tolist())), "price": float(y[args.index])}
    else:
        word_index = encode.load_word_index(raw, args.task)
        ids = flat[splits[args.index]:splits[args.index + 1]].tolist()
        label = int(y[args.index])
        out = {"text": decode_words(ids, word_index),
               "label": ("negative", "positive")[label] if args.task == "imdb" else tasks.REUTERS_TOPICS[label]}
    print(json.dumps(out, allow_nan=False))


if __name__ == "__main__":
    main()
