"""Fidelity: the book's plain Keras code and the pipeline, trained over the same N seeds, shown equivalent.

    DATASETS_MIRROR=... python bench/seeds.py [--seeds auto] [--seed 42] [--tasks imdb,reuters,housing] [--out ...]
    python bench/seeds.py --summary [--md]   # every recorded run's tests, and the metrics pooled over them

Margins, fixed before any run: pipeline and book are called equivalent when their mean difference lies within
+-0.01 test accuracy (IMDB, Reuters) and +-0.15 MAE (housing test MAE, K-fold MAE after 100 epochs): the book
prints accuracies to two digits (0.88, 0.80), and its own K-fold runs spread over 2.38-2.6 MAE.
Seeds: `--seeds auto` takes the fewest that give TOST (two one-sided Welch tests at 0.05) 80% power at those
margins when the two sides truly agree, for the sds of the recorded runs (bench/fidelity.py `tost_replicates`).

Seeds: 42, 1042, 2042, ... (the pipeline's replicate seeds for params seed 42, chapter4/stats.py; --seed changes
the base, for an independent replication). The book's side, for each seed:
`keras.utils.set_random_seed(seed)`, then the book's listings as bench/book.py runs them -- float64
`vectorize_sequences` rows, `model.fit` -- for the four numbers compared: the IMDB and Reuters test accuracy of
the final models (4 and 9 epochs on all training data), the housing test MAE of the final model (130 epochs)
and the mean validation MAE of the 4-fold run after 100 epochs. The pipeline's side: `dvc repro` of a fresh
clone of this repo with `replicates: N`, its data/metrics/<task>_replicates.json. Each metric: mean +- sd of
both, the difference pipeline - book with its 95% CI and Welch's p (chapter4/comparison.py), and TOST:
"equivalent within +-m (p = ...)" or "not shown equivalent (p = ...)". Writes the values and the table to --out.

`--summary` pools every recorded run (bench/seeds*.json) per metric (bench/fidelity.py `pooled`: inverse
variance, Cochran's Q and I^2, and the DerSimonian-Laird random-effects estimate with tau^2, the one read where
Q's p < 0.05), with TOST of the estimate read; `--summary --md` prints that as the README's fidelity table.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import fidelity  # noqa: E402
from chapter4 import comparison, stats  # noqa: E402

METRICS = {"imdb": ["test.accuracy"], "reuters": ["test.accuracy"], "housing": ["test.mae", "kfold.mean_mae"]}
MARGINS = {"test.accuracy": 0.01, "test.mae": 0.15, "kfold.mean_mae": 0.15}
RECORDS = sorted((ROOT / "bench").glob("seeds*.json"))


def recorded():
    """Every recorded run: [(file name, document)]."""
    return [(p.name, json.loads(p.read_text())) for p in RECORDS]


def planning_sd(records, task, metric):
    """The sd of one replicate, pooled over both sides of every recorded run."""
    import numpy as np
    groups = [d[side][task][metric] for _, d in records for side in ("book", "pipeline") if task in d[side]]
    dev = sum(float(np.var(g, ddof=1)) * (len(g) - 1) for g in groups)
    return (dev / sum(len(g) - 1 for g in groups)) ** 0.5 if groups else None


def plan(tasks, records):
    """{task/metric: {sd, margin, seeds}}: seeds per side for 80% TOST power at the margin."""
    out = {}
    for task in tasks:
        for m in METRICS[task]:
            sd = planning_sd(records, task, m)
            out[f"{task}/{m}"] = {"sd": sd, "margin": MARGINS[m],
                                  "seeds": fidelity.tost_replicates(sd, MARGINS[m]) if sd else None}
    return out


def equivalence(book_values, pipeline_values):
    """TOST rows for one run: {task/metric: {margin, diff, p, verdict}}."""
    out = {}
    for task, metrics in pipeline_values.items():
        for m, values in metrics.items():
            t = fidelity.tost(book_values[task][m], values, MARGINS[m])
            out[f"{task}/{m}"] = t | {"verdict": verdict(t["p"], MARGINS[m])}
    return out


def verdict(p, margin):
    return (f"equivalent within ±{margin:g} (p = {p:.2g})" if p < fidelity.ALPHA
            else f"not shown equivalent within ±{margin:g} (p = {p:.2g})")


def summary(records):
    """Per run and metric: Welch's difference, TOST; per metric, over every recorded run: the pooled difference
    (fixed effect, and random effects beside it), Cochran's Q, I^2, and TOST of the estimate to read (random
    effects where Q's p < 0.05; one run: its own Welch difference and TOST)."""
    runs, pooled = [], {}
    for name, d in records:
        tost = equivalence(d["book"], d["pipeline"])
        for r in comparison.rows(d["book"], d["pipeline"]):
            key = f"{r['task']}/{r['metric']}"
            se = (r["sd_a"] ** 2 / r["n_a"] + r["sd_b"] ** 2 / r["n_b"]) ** 0.5
            runs.append({"file": name, "first_seed": d["seeds"][0], "n": len(d["seeds"]), "metric": key,
                         "script": d.get("script", "before layer order fix" if name in OLD else "current"),
                         "diff": r["diff"], "ci95": [r["ci95_low"], r["ci95_high"]], "p": r["p"], "se": se,
                         "tost": tost[key]})
    for key in dict.fromkeys(r["metric"] for r in runs):
        chosen = [r for r in runs if r["metric"] == key]
        pool = fidelity.pooled([(r["diff"], r["se"]) for r in chosen])
        margin = MARGINS[key.split("/", 1)[1]]
        if len(chosen) == 1:
            read = {"estimate": "one run (Welch)", "diff": chosen[0]["diff"], "ci95": chosen[0]["ci95"],
                    "tost_p": chosen[0]["tost"]["p"]}
        else:
            name, est = fidelity.headline(pool)
            read = {"estimate": name, "diff": est["diff"], "ci95": est["ci95"],
                    "tost_p": fidelity.pooled_tost(est["diff"], est["se"], margin)}
        pooled[key] = {"runs": [r["file"] for r in chosen], "seeds": [r["n"] for r in chosen], **pool,
                       "read": read | {"verdict": verdict(read["tost_p"], margin)}}
    current = {}                        # the runs of the current script alone (the book's layer order)
    for key in pooled:
        chosen = [r for r in runs if r["metric"] == key and r["script"] == "current"]
        if len(chosen) > 1:
            current[key] = {"runs": [r["file"] for r in chosen], **fidelity.pooled([(r["diff"], r["se"])
                                                                                 for r in chosen])}
    return {"margins": MARGINS, "runs": runs, "pooled": pooled, "pooled_current_script": current}


LABELS = {"imdb/test.accuracy": "IMDB test accuracy", "reuters/test.accuracy": "Reuters test accuracy",
          "housing/test.mae": "Housing test MAE", "housing/kfold.mean_mae": "Housing K-fold MAE, 100 epochs"}
HEADER = ["pipeline − book's code", "runs: seeds per side", "difference [95% CI]", "Cochran's Q (p)",
          "equivalence (TOST)"]


def table(summary):
    """The README's fidelity table: one row per metric, every recorded run pooled (`summary`)."""
    def num(x, digits):
        return f"{x:+.{digits}f}".replace("-", "−")

    def interval(est, digits):
        return f"{num(est['diff'], digits)} [{num(est['ci95'][0], digits)}, {num(est['ci95'][1], digits)}]"
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for key, pool in summary["pooled"].items():
        digits = 4 if MARGINS[key.split("/", 1)[1]] < 0.1 else 3
        read = pool["read"]
        if pool["q"] is None:
            diff, q = interval(read, digits), "—"
        else:
            diff = f"{read['estimate']} {interval(read, digits)}"
            if read["estimate"] == "random effects":
                diff += f", τ² = {pool['random']['tau2']:.1e}; fixed effect {interval(pool, digits)}"
            q = f"{pool['q']:.2f} on {pool['df']} df (p = {pool['p']:.2g})"
        seeds = " + ".join(map(str, pool["seeds"]))
        lines.append(f"| {LABELS[key]} | {len(pool['seeds'])}: {seeds} | {diff} | {q} | {read['verdict']} |")
    return "\n".join(lines)


# The two first runs' book side built the output layer before the hidden ones (commit 9a02320 fixed it).
OLD = ("seeds.json", "seeds_reuters_replication.json")


def book(seeds, tasks):
    """{task: {metric: [value per seed]}} from the book's code (one process, the data encoded once)."""
    mirror = os.environ.get("DATASETS_MIRROR")
    if mirror and "://" not in mirror:           # keras.datasets reads $KERAS_HOME/datasets/
        home = tempfile.mkdtemp(prefix="keras-home-")
        os.mkdir(f"{home}/datasets")
        for name in os.listdir(mirror):
            os.symlink(os.path.abspath(f"{mirror}/{name}"), f"{home}/datasets/{name}")
        os.environ["KERAS_HOME"] = home
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    from tensorflow import keras
    from tensorflow.keras import layers
    from tensorflow.keras.datasets import boston_housing, imdb, reuters

    from bench.book import vectorize_sequences                  # the book's listing 4.3

    def dense(units, outputs, activation, loss, metric):       # built in the book's order, after the seed
        model = keras.Sequential([layers.Dense(u, activation="relu") for u in units]
                                 + [layers.Dense(outputs, activation=activation)])
        model.compile(optimizer="rmsprop", loss=loss, metrics=[metric])
        return model

    out = {task: {m: [] for m in METRICS[task]} for task in tasks}
    text = {"imdb": (imdb, [16, 16], (1, "sigmoid"), "binary_crossentropy", 4),
            "reuters": (reuters, [64, 64], (46, "softmax"), "categorical_crossentropy", 9)}
    for task in [t for t in text if t in tasks]:                  # listings 4.1-4.10 and 4.11-4.21
        dataset, units, head, loss, epochs = text[task]
        (x, y), (xt, yt) = dataset.load_data(num_words=10000)
        x, xt = vectorize_sequences(x), vectorize_sequences(xt)
        if task == "imdb":
            y, yt = y.astype("float32"), yt.astype("float32")
        else:
            y, yt = keras.utils.to_categorical(y), keras.utils.to_categorical(yt)
        for seed in seeds:
            keras.utils.set_random_seed(seed)
            model = dense(units, *head, loss, "accuracy")
            model.fit(x, y, epochs=epochs, batch_size=512, verbose=0)
            out[task]["test.accuracy"].append(model.evaluate(xt, yt, verbose=0)[1])
            print(json.dumps({"seed": seed, task: out[task]["test.accuracy"][-1]}), flush=True)
        del x, xt
    if "housing" not in tasks:
        return out
    (x, y), (xt, yt) = boston_housing.load_data()
    mean, std = x.mean(axis=0), (x - x.mean(axis=0)).std(axis=0)
    x, xt = (x - mean) / std, (xt - mean) / std
    k, size = 4, len(x) // 4
    for seed in seeds:
        keras.utils.set_random_seed(seed)
        maes = []
        for i in range(k):                                        # listing 4.27, 100 epochs
            val = slice(i * size, (i + 1) * size)
            rest = np.r_[0:i * size, (i + 1) * size:len(x)]
            model = dense([64, 64], 1, None, "mse", "mae")
            model.fit(x[rest], y[rest], epochs=100, batch_size=16, verbose=0)
            maes.append(model.evaluate(x[val], y[val], verbose=0)[1])
        out["housing"]["kfold.mean_mae"].append(float(np.mean(maes)))
        model = dense([64, 64], 1, None, "mse", "mae")      # listing 4.31
        model.fit(x, y, epochs=130, batch_size=16, verbose=0)
        out["housing"]["test.mae"].append(model.evaluate(xt, yt, verbose=0)[1])
        print(json.dumps({"seed": seed, "housing": [out["housing"][m][-1] for m in METRICS["housing"]]}),
              flush=True)
    return out


def pipeline(n, seed, tasks):
    """{task: {metric: [value per replicate]}} from `dvc repro` of a fresh clone with `replicates: n`."""
    import yaml
    work = Path(tempfile.mkdtemp(prefix="seeds-")) / "ch4"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(work)], check=True)
    doc = yaml.safe_load((work / "params.yaml").read_text())
    doc["replicates"], doc["seed"] = n, seed
    (work / "params.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    subprocess.run(["dvc", "repro", "-q"] + [f"evaluate@{t}" for t in tasks], cwd=work, check=True)
    out = {}
    for task in tasks:
        values = json.loads((work / f"data/metrics/{task}_replicates.json").read_text())
        assert values["seeds"] == stats.seeds(seed, n), values["seeds"]
        out[task] = {m: values[m] for m in METRICS[task]}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="auto", help="seeds per side (2..32), or auto: 80%% TOST power")
    ap.add_argument("--summary", action="store_true", help="only print the equivalence tests and the pooled "
                                                           "estimate of every recorded run (no training)")
    ap.add_argument("--md", action="store_true", help="with --summary: the README's table (Markdown)")
    ap.add_argument("--seed", type=int, default=42, help="base seed (params.yaml's seed for the pipeline)")
    ap.add_argument("--tasks", default=",".join(METRICS), help="comma-separated, of " + ", ".join(METRICS))
    ap.add_argument("--out", default=str(ROOT / "bench" / "seeds.json"))
    args = ap.parse_args()
    tasks = [t for t in METRICS if t in args.tasks.split(",")]
    records = recorded()
    if args.summary:
        print(table(summary(records)) if args.md else json.dumps(summary(records), indent=1))
        return
    planned = plan(tasks, records)
    if args.seeds == "auto":
        args.seeds = max(p["seeds"] or 32 for p in planned.values())
    if not str(args.seeds).isdigit() or not 2 <= int(args.seeds) <= 32 or not tasks \
            or set(args.tasks.split(",")) - set(METRICS):
        raise SystemExit("bench/seeds.py: --seeds must be auto or between 2 and 32, --tasks among "
                         + ", ".join(METRICS))
    args.seeds = int(args.seeds)
    seeds = stats.seeds(args.seed, args.seeds)
    start = time.perf_counter()
    ours = pipeline(args.seeds, args.seed, tasks)
    pipeline_s = time.perf_counter() - start
    theirs = book(seeds, tasks)
    book_s = time.perf_counter() - start - pipeline_s
    rows = comparison.rows(theirs, ours)                     # A = the book's code, B = the pipeline
    side_a, side_b = ("book's code (model.fit)", None), ("pipeline", None)
    print(comparison.render_text(side_a, side_b, rows))
    print(comparison.render_md(side_a, side_b, rows))
    tost = equivalence(theirs, ours)
    for key, t in tost.items():
        print(f"{key}: {t['verdict']}")
    Path(args.out).write_text(json.dumps({
        "seeds": seeds, "book": theirs, "pipeline": ours, "rows": rows, "script": "current",
        "margins": {m: MARGINS[m] for t in tasks for m in METRICS[t]}, "plan": planned, "tost": tost,
        "seconds": {"book": round(book_s, 1), "pipeline": round(pipeline_s, 1)},
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}, indent=2) + "\n")


if __name__ == "__main__":
    main()
