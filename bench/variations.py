"""The book's "further experiments", each against the book's baseline with stages.compare's statistics.

    DATASETS_MIRROR=... python bench/variations.py [--project DIR] [--collect] [--out bench/variations.json]

Runs, in a fresh git clone of this repository (or in --project), one queued DVC experiment per variation,
`dvc exp run --queue -n <name> -S <key>=<value> evaluate@<task> predict@<task> plot@<task>`, then
`dvc queue start -j 2` and waits (stage times and peak RSS: bench/sweep.py's shim). Each variation changes
one thing of the book's model and keeps everything else, the retraining epochs included (IMDB 4, Reuters 9,
housing 130). The baseline is the committed run (HEAD's data/metrics/<task>_replicates.json, same code and
seeds). Each variation's replicates against the baseline's, per headline metric: mean and Student-t 95% CI
(chapter4/stats.py), the difference variation - baseline with its Welch 95% CI, Welch's p, that p adjusted by
Holm-Bonferroni over every test of the table (`correct`), and the verdict from the adjusted p (stages.compare:
better / worse at adjusted p < 0.05, else no detectable difference, with the difference detectable at 80% power). --collect reads experiments
already run in --project. Writes --out and prints a Markdown table.
"""
import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sweep  # noqa: E402
from sweep import ROOT  # noqa: E402

from chapter4 import stats
from chapter4 import comparison as compare  # noqa: E402

# (experiment name, task, what the book suggests, the params it changes)
VARIATIONS = [
    ("imdb-1-layer", "imdb", "1 hidden layer (16)", {"imdb.units": [16]}),
    ("imdb-3-layers", "imdb", "3 hidden layers (16, 16, 16)", {"imdb.units": [16, 16, 16]}),
    ("imdb-32-units", "imdb", "32 units (32, 32)", {"imdb.units": [32, 32]}),
    ("imdb-64-units", "imdb", "64 units (64, 64)", {"imdb.units": [64, 64]}),
    ("imdb-mse", "imdb", "mse loss", {"imdb.loss": "mse"}),
    ("imdb-tanh", "imdb", "tanh activation", {"imdb.activation": "tanh"}),
    ("reuters-32-units", "reuters", "32 units (32, 32)", {"reuters.units": [32, 32]}),
    ("reuters-128-units", "reuters", "128 units (128, 128)", {"reuters.units": [128, 128]}),
    ("reuters-1-layer", "reuters", "1 hidden layer (64)", {"reuters.units": [64]}),
    ("reuters-3-layers", "reuters", "3 hidden layers (64, 64, 64)", {"reuters.units": [64, 64, 64]}),
    ("reuters-bottleneck", "reuters", "4-unit bottleneck (64, 4)", {"reuters.units": [64, 4]}),
    ("housing-1-layer", "housing", "1 hidden layer (64)", {"housing.units": [64]}),
    ("housing-3-layers", "housing", "3 hidden layers (64, 64, 64)", {"housing.units": [64, 64, 64]}),
    ("housing-32-units", "housing", "32 units (32, 32)", {"housing.units": [32, 32]}),
]
BASELINE = {"imdb": "book: (16, 16), relu, binary_crossentropy", "reuters": "book: (64, 64)",
            "housing": "book: (64, 64)"}
METRICS = {"imdb": ["test.accuracy"], "reuters": ["test.accuracy"], "housing": ["test.mae", "kfold.mean_mae"]}


def targets(task):
    return [f"evaluate@{task}", f"predict@{task}", f"plot@{task}"]


def run_sweep(project, env, variations=VARIATIONS, jobs=2):
    for exp, task, _, sets in variations:
        sweep.queue(project, exp, sets, targets(task), env=env)
    return sweep.run_queue(project, env, jobs=jobs)


def _interval(summary, m):
    return [summary.get(f"{m}_ci95_low"), summary.get(f"{m}_ci95_high")]


def collect(project, variations=VARIATIONS, baseline_rev="HEAD"):
    """One row per variation and metric: the variation's values against the baseline's."""
    exps, groups = sweep.experiments(project), sweep.runs_by_workspace(sweep.stage_log(project))
    base = {task: sweep.replicate_values(project, baseline_rev, task) for task in METRICS}
    rows = []
    for exp, task, label, sets in variations:
        if exp not in exps:
            continue
        doc = sweep.replicate_values(project, exps[exp]["rev"], task)
        runs = [g for g in groups if any(r["stage"] == f"train@{task}" for r in g) and all(
            all(_get(r["params"] or {}, k) == v for k, v in sets.items()) for r in g)]
        cost = sweep.cost(runs[-1], task) if runs else None
        for row in compare.rows({task: {m: base[task][m] for m in METRICS[task]}},
                                {task: {m: doc[m] for m in METRICS[task]}}):
            m = row["metric"]
            s, b = stats.summary(m, doc[m]), stats.summary(m, base[task][m])
            rows.append({"task": task, "variation": label, "experiment": exp, "rev": exps[exp]["rev"], "params": sets,
                         "metric": m, "values": doc[m], "n": len(doc[m]), "mean": s[m], "sd": s.get(f"{m}_std"),
                         "ci95": _interval(s, m), "baseline_values": base[task][m], "baseline_mean": b[m],
                         "baseline_sd": b.get(f"{m}_std"), "baseline_ci95": _interval(b, m),
                         "diff": row["diff"], "diff_ci95": [row["ci95_low"], row["ci95_high"]], "p": row["p"],
                         "verdict": row["verdict"], "cost": cost})
    return correct(rows)


def correct(rows):
    """Holm's correction over all the table's tests (stages.compare.family): each row's adjusted p, the verdict
    from it, and the difference detectable at 80% power at level 0.05 / m."""
    tests = [compare.welch(r["baseline_values"], r["values"]) for r in rows]
    compare.family(tests, [compare.direction(r["metric"]) for r in rows])
    for r, t in zip(rows, tests):
        r.update(p_holm=t["p_holm"], verdict=t["verdict"], detectable=t["detectable"])
    return rows


def _get(params, dotted):
    node = params
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _ci(mean, ci, sd, n, digits):
    f = f"{{:.{digits}f}}"
    text = f.format(mean)
    if ci[0] is not None:
        text += f" [{f.format(ci[0])}, {f.format(ci[1])}]"
    return text


def markdown(rows):
    lines = ["| task | variation | metric | mean [95% CI], n | book's baseline, mean [95% CI] | "
             "difference [95% CI] | p | Holm p | verdict |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        d = 4 if "accuracy" in r["metric"] else 3
        diff = "-" if r["diff"] is None else (f"{r['diff']:+.{d}f} [{r['diff_ci95'][0]:+.{d}f}, "
                                              f"{r['diff_ci95'][1]:+.{d}f}]").replace("-", "−")
        verdict = r["verdict"].split(" (")[0]
        lines.append(f"| {r['task']} | {r['variation']} | {r['metric']} | "
                     f"{_ci(r['mean'], r['ci95'], r['sd'], r['n'], d)}, n={r['n']} | "
                     f"{_ci(r['baseline_mean'], r['baseline_ci95'], r['baseline_sd'], len(r['baseline_values']), d)}"
                     f", n={len(r['baseline_values'])} | {diff} | "
                     f"{'-' if r['p'] is None else format(r['p'], '.2g')} | "
                     f"{'-' if r['p_holm'] is None else format(r['p_holm'], '.2g')} | {verdict} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--project", help="where to clone (default: a new temporary folder); with --collect: the "
                                      "project whose experiments to read")
    ap.add_argument("--collect", action="store_true", help="read experiments already run in --project")
    ap.add_argument("--only", help="comma-separated experiment names (default: all)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "variations.json"))
    args = ap.parse_args()
    variations = [v for v in VARIATIONS if not args.only or v[0] in args.only.split(",")]
    queue_s, statuses = None, {}
    if args.collect:
        if not args.project:
            raise SystemExit("bench/variations.py: --collect needs --project")
        project = Path(args.project)
    else:
        project = Path(args.project or tempfile.mkdtemp(prefix="variations-")) / "ch4"
        sweep.clone(project)
        env = sweep.stage_env(project)
        print(f"{project}: queueing {len(variations)} experiments, running 2 at a time ...", flush=True)
        queue_s, statuses = run_sweep(project, env, variations)
        queue_s = round(queue_s, 1)
        print(f"queue: {queue_s} s, {statuses}", flush=True)
    rows = collect(project, variations)
    doc = {"machine": sweep.machine(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "commit": subprocess.run(["git", "rev-parse", "HEAD"], cwd=project, capture_output=True,
                                    text=True).stdout.strip(),
           "baseline": "HEAD's data/metrics/<task>_replicates.json (the committed run: " + "; ".join(
               f"{t}: {b}" for t, b in BASELINE.items()) + ")",
           "test": compare.TEST, "interval": compare.INTERVAL, "alpha": compare.ALPHA,
           "correction": "Holm-Bonferroni over all rows of the table", "power": compare.POWER,
           "queue_wall_s": queue_s, "queue_run": dict(sweep.RUN),
           "stages_span_s": sweep.span(sweep.stage_log(project)), "sweep_target_s": 1200, "statuses": statuses,
           "rows": rows}
    Path(args.out).write_text(json.dumps(doc, indent=2) + "\n")
    print(markdown(rows))


if __name__ == "__main__":
    main()
