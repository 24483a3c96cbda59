"""decode: show a sample as the book does (`decoded_review`), words for IMDB/Reuters, features for housing.

    python -m stages.decode <task> <index> [--split train|test]

Reads data/raw/<task>/ with the `encode` params (same num_words and split as the pipeline). Reserved ids
(0 padding, 1 start, 2 out-of-vocabulary) print as "?". Prints one JSON line: {"text": ..., "label": ...}
(IMDB, Reuters) or {"features": {"CRIM": ..., ...}, "price": ...} (housing, raw values, price in $1000s).
"""
import argparse
import json
from pathlib import Path

from chapter4 import datasets, params, tasks


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
    spec = tasks.get(args.task)
    p = params.load("encode", spec.name)
    raw = Path("data/raw") / spec.name
    if not raw.is_dir():
        raise SystemExit(f"decode: no data in {raw}: run `dvc repro download@{spec.name}` first")
    if spec.text:
        flat, splits, y = datasets.load_sequences(raw, spec.name, p)[args.split]
    else:
        train, test = datasets.load_housing(raw, p)
        x, y = train if args.split == "train" else test
    if not 0 <= args.index < len(y):
        raise SystemExit(f"decode: index must be between 0 and {len(y) - 1} for the {args.split} split, "
                         f"got {args.index}")
    if spec.text:
        ids = flat[splits[args.index]:splits[args.index + 1]].tolist()
        out = {"text": datasets.decode_words(ids, datasets.load_word_index(raw, spec.name)),
               "label": spec.label(y[args.index])}
    else:
        out = {"features": dict(zip(spec.features, x[args.index].tolist())), spec.target: spec.label(y[args.index])}
    print(json.dumps(out, allow_nan=False))


if __name__ == "__main__":
    main()
