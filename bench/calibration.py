"""Calibration of `stages.compare`: an A/A study over many disjoint seed blocks of the committed config.

    DATASETS_MIRROR=... python bench/calibration.py [--replicates 64] [--chunk 32] [--tasks imdb,reuters,housing]
                                                     [--project DIR] [--out bench/calibration.json]

What it trains: for each task, `--replicates` replicates of the committed params (seeds 42 + 1000 r, r = 0, 1,
...), stacked as the pipeline stacks them (chapter4.training.fit with `--chunk` replicates side by side, one process
per task), scored as evaluate@ scores them (saved models, numpy inference, values rounded as stored). Housing's
`kfold.mean_mae` comes from validate@'s K-fold runs trained for `kfold_table_epoch` (100) epochs instead of
`kfold_epochs` (500): the value read at epoch 100 is the same (later epochs do not change earlier ones; a
500-epoch run of replicates 0-4 gave the same five values to the last digit), at a fifth of the cost. The first `replicates` (5) replicates are the committed
run's seeds: their largest difference to data/metrics/<task>_replicates.json is recorded (0 where this CPU rounds
as the committing one did; stacking 32 instead of 5 changes no replicate's value on one machine).

What it reports (bench/calibration.json), with B = params.yaml's `replicates` (5):
- blocks: replicates B b .. B b + B - 1 are block b, i.e. a pipeline run with seed 42 + 1000 B b: disjoint seeds;
- A/A verdicts: `stages.compare` between every pair of blocks (all three tasks, all metrics, Holm-corrected):
  the rate of false verdicts per metric (uncorrected p and Holm) and family-wise (any metric of one compare),
  each with its binomial 95% CI (Clopper-Pearson, scipy.stats.binomtest). Pairs share blocks, so those CIs are
  narrower than the truth; the rate over the disjoint pairs (0-1, 2-3, ...) is given beside them;
- exchangeability: one-way ANOVA (scipy.stats.f_oneway) between blocks against within blocks, per metric;
- coverage: how often a block's Student-t 95% interval (chapter4/stats.py `summary`) holds the mean of all the
  other replicates, per task and metric, with its binomial CI, and the replicates the committed default would
  need for a given precision.
"""
import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from chapter4 import significance, stats
from chapter4 import comparison as compare, replicates  # noqa: E402

TASKS = ("imdb", "reuters", "housing")


# --- training (one child process per task) ------------------------------------------------------------------

def train_task(task, first, total, chunk):
    """{metric: [value per replicate r = first .. first + total - 1]}, in the project folder (cwd), as the pipeline
    computes them."""
    from chapter4 import inference, io, params, tasks
    from stages import evaluate
    from chapter4 import model as M
    spec = tasks.get(task)
    values = {}
    p = params.load("train", task)
    data, test = io.read_npz(f"data/encoded/{task}/train.npz"), io.read_npz(f"data/encoded/{task}/test.npz")
    x, y = M.Inputs(data), M.targets(spec, p, data["y"])
    xt = {"indptr": test["indptr"], "indices": test["indices"]} if spec.text else {"x": test["x"]}
    for start in range(first, first + total, chunk):
        seeds = [p["seed"] + stats.SEED_STRIDE * r for r in range(start, min(first + total, start + chunk))]
        models = []
        for seed in seeds:
            M.seed_everything(seed)
            models.append(M.build(spec, p, x.width))
        M.fit(models, spec, [x] * len(models), [y] * len(models), epochs=p["epochs"], batch_size=p["batch_size"],
              seeds=seeds)
        with tempfile.TemporaryDirectory() as folder:
            for r, model in enumerate(models):
                M.save(model, Path(folder) / f"replicate-{r}.keras")
            ensemble = inference.Ensemble(folder)
            for pred in ensemble.predict_each(**xt):
                for k, v in evaluate.test_metrics(spec, ensemble.loss, test["y"], pred).items():
                    values.setdefault(f"test.{k}", []).append(round(v, 6))
        print(json.dumps({"task": task, "trained": start + len(seeds)}), flush=True)
    if spec.metric == "mae":
        values["kfold.mean_mae"] = kfold(task, first, total, chunk)
    return values


def kfold(task, first, total, chunk):
    """validate@'s K-fold mean MAE per replicate, from runs of `kfold_table_epoch` epochs."""
    import numpy as np
    from chapter4 import io, params, tasks
    from chapter4 import model as M
    spec, p = tasks.get(task), params.load("validate", task)
    data, fold = io.read_npz(f"data/encoded/{task}/train.npz"), io.read_npz(f"data/split/{task}.npz")["fold"]
    y = M.targets(spec, p, data["y"])
    folds = range(int(fold.max()) + 1)
    parts = []
    for f in folds:
        train, held_out = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
        parts.append((M.Inputs(data, train), y[train], (M.Inputs(data, held_out), y[held_out])))
    out = []
    for start in range(first, first + total, chunk):
        models, seeds = [], []
        for seed in [p["seed"] + stats.SEED_STRIDE * r for r in range(start, min(first + total, start + chunk))]:
            M.seed_everything(seed)
            for f in folds:
                models.append(M.build(spec, p, parts[f][0].width))
                seeds.append(seed + f)
        runs = parts * (len(models) // len(folds))
        histories = M.fit(models, spec, [x for x, _, _ in runs], [t for _, t, _ in runs],
                          epochs=p["kfold_table_epoch"], batch_size=p["batch_size"], seeds=seeds,
                          validation=[v for _, _, v in runs])
        maes = np.array([h["val_mae"][p["kfold_table_epoch"] - 1] for h in histories]).reshape(-1, len(folds))
        out += [round(float(m), 6) for m in maes.mean(axis=1)]
        print(json.dumps({"task": task, "kfold": len(out)}), flush=True)
    return out


def project(where):
    """A clone of this repo with the encoded data and splits (dvc repro split@*)."""
    work = Path(where or tempfile.mkdtemp(prefix="calibration-")) / "ch4"
    if not (work / "data/split/housing.npz").exists():
        subprocess.run(["git", "clone", "-q", str(ROOT), str(work)], check=True)
        subprocess.run(["dvc", "repro", "-q"] + [f"split@{t}" for t in TASKS], cwd=work, check=True)
    return work


# --- statistics (no TensorFlow) -----------------------------------------------------------------------------

def rate(k, n):
    """k of n with its Clopper-Pearson 95% interval."""
    from scipy.stats import binomtest
    ci = binomtest(k, n).proportion_ci(0.95) if n else None
    return {"count": k, "n": n, "rate": k / n if n else None, "ci95": [ci.low, ci.high] if ci else None}


def analyse(values, block):
    """The A/A verdicts, the ANOVA and the coverage from {task: {metric: [per replicate]}}."""
    import numpy as np
    from scipy.stats import f_oneway
    total = min(len(v) for metrics in values.values() for v in metrics.values())
    count = total // block
    blocks = [{t: {m: v[b * block:(b + 1) * block] for m, v in metrics.items()} for t, metrics in values.items()}
              for b in range(count)]
    keys = [(t, m) for t, metrics in values.items() for m in metrics]
    pairs = list(itertools.combinations(range(count), 2))
    disjoint = [(i, i + 1) for i in range(0, count - 1, 2)]
    false = {"raw": {k: 0 for k in keys}, "holm": {k: 0 for k in keys}}
    family = {"raw": [], "holm": []}
    for i, j in pairs:
        table = compare.rows(blocks[i], blocks[j])
        raw = {(r["task"], r["metric"]) for r in table if r["p"] is not None and r["p"] < compare.ALPHA}
        holm = {(r["task"], r["metric"]) for r in table if r["verdict"] in ("better", "worse", "different")}
        for name, hits in (("raw", raw), ("holm", holm)):
            for k in hits:
                false[name][k] += 1
            family[name].append(bool(hits))
    out = {"replicates": total, "block": block, "blocks": count, "pairs": len(pairs),
           "family_wise_false_verdict_rate": {
               "holm": rate(sum(family["holm"]), len(pairs)),
               "uncorrected": rate(sum(family["raw"]), len(pairs)),
               "holm_disjoint_pairs": rate(sum(family["holm"][pairs.index(d)] for d in disjoint), len(disjoint)),
               "uncorrected_disjoint_pairs": rate(sum(family["raw"][pairs.index(d)] for d in disjoint),
                                                  len(disjoint))},
           "metrics": {}}
    for t, m in keys:
        v = np.array(values[t][m][:count * block]).reshape(count, block)
        anova = f_oneway(*v)
        covered = []
        for b in range(count):
            s = stats.summary("x", v[b], digits=12)
            others = np.delete(np.array(values[t][m], dtype=np.float64), range(b * block, (b + 1) * block))
            covered.append(bool(s["x_ci95_low"] <= others.mean() <= s["x_ci95_high"]))
        within, between = float(v.var(axis=1, ddof=1).mean()), float(v.mean(axis=1).var(ddof=1))
        out["metrics"][f"{t}/{m}"] = {
            **stats.summary("all", values[t][m]), "n": len(values[t][m]),
            "false_verdict_rate": {"uncorrected": rate(false["raw"][(t, m)], len(pairs)),
                                   "holm": rate(false["holm"][(t, m)], len(pairs))},
            "anova": {"F": float(anova.statistic), "p": float(anova.pvalue), "df": [count - 1, count * (block - 1)],
                      "within_block_variance": within, "variance_of_block_means": between,
                      "expected_variance_of_block_means": within / block},
            "coverage": rate(sum(covered), count),
            "committed_block": {"mean": float(v[0].mean()), "ci95": [stats.summary("x", v[0], 12)["x_ci95_low"],
                                                                      stats.summary("x", v[0], 12)["x_ci95_high"]]},
            "detectable_at_80_percent_power": {     # at compare's level 0.05 / m, m = this study's metrics
                str(n): significance.detectable(float(v.std(ddof=1)), n, float(v.std(ddof=1)), n, compare.ALPHA / len(keys))
                for n in (5, 8, 10, 16)}}
    return out


def markdown(doc):
    """The per-metric table of bench/README.md."""
    pct = lambda r: f"{r['count']}/{r['n']} = {100 * r['rate']:.1f}% [{100 * r['ci95'][0]:.1f}, {100 * r['ci95'][1]:.1f}]"
    lines = ["| task/metric | mean ± sd (n) | block 0 (committed seeds) [95% CI] | between/within blocks: F, p | "
             "coverage of the 95% interval | false verdicts, uncorrected | false verdicts, Holm | detectable, n = 5, 8, 16 |",
             "|---|---|---|---|---|---|---|---|"]
    for key, m in doc["metrics"].items():
        c = m["committed_block"]
        lines.append(f"| {key} | {m['all']:.4f} ± {m['all_std']:.4f} ({m['n']}) | {c['mean']:.4f} "
                     f"[{c['ci95'][0]:.4f}, {c['ci95'][1]:.4f}] | F = {m['anova']['F']:.2f}, p = {m['anova']['p']:.2g} | "
                     f"{pct(m['coverage'])} | {pct(m['false_verdict_rate']['uncorrected'])} | "
                     f"{pct(m['false_verdict_rate']['holm'])} | "
                     + ", ".join(f"{m['detectable_at_80_percent_power'][n]:.3g}" for n in ("5", "8", "16")) + " |")
    f = doc["family_wise_false_verdict_rate"]
    lines += ["", f"Family-wise (any metric of one compare), {doc['blocks']} blocks of {doc['block']}, "
                  f"{doc['pairs']} pairs: Holm {pct(f['holm'])}; uncorrected {pct(f['uncorrected'])}; "
                  f"disjoint pairs only: Holm {pct(f['holm_disjoint_pairs'])}, uncorrected "
                  f"{pct(f['uncorrected_disjoint_pairs'])}."]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replicates", type=int, default=64, help="replicates per task (seeds 42 + 1000 r)")
    ap.add_argument("--chunk", type=int, default=32, help="replicates trained side by side (one child process)")
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--project", help="a clone with data/encoded and data/split (made when missing)")
    ap.add_argument("--cache", help="folder keeping each child's values (<task>-<first>.json), reused when there")
    ap.add_argument("--worker", nargs=2, metavar=("TASK", "FIRST"), help=argparse.SUPPRESS)
    ap.add_argument("--out", default=str(ROOT / "bench" / "calibration.json"))
    args = ap.parse_args()
    if args.worker:                                    # one chunk of one task, in the project folder
        os.chdir(args.project)
        task, first = args.worker[0], int(args.worker[1])
        print("VALUES " + json.dumps(train_task(task, first, args.chunk, args.chunk)), flush=True)
        return
    tasks = [t for t in TASKS if t in args.tasks.split(",")]
    cache = Path(args.cache or tempfile.mkdtemp(prefix="calibration-values-"))
    cache.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    work = project(args.project)
    seconds = {"setup": round(time.perf_counter() - start, 1), **{t: 0.0 for t in tasks}}
    values = {t: {} for t in tasks}
    for first in range(0, args.replicates, args.chunk):          # round by round: every task grows together
        for task in tasks:
            path = cache / f"{task}-{first}.json"
            if not path.exists():
                start = time.perf_counter()
                child = subprocess.run([sys.executable, __file__, "--worker", task, str(first), "--project",
                                        str(work), "--chunk", str(args.chunk)],
                                       check=True, stdout=subprocess.PIPE, text=True)
                path.write_text(json.dumps({"seconds": round(time.perf_counter() - start, 1),
                                            "values": json.loads(child.stdout.rpartition("VALUES ")[2])}))
            chunk = json.loads(path.read_text())
            seconds[task] = round(seconds[task] + chunk["seconds"], 1)
            for m, v in chunk["values"].items():
                values[task].setdefault(m, []).extend(v)
            print(json.dumps({"task": task, "first": first, "seconds": chunk["seconds"]}), flush=True)
    committed = {}
    for task in tasks:             # the first block is the committed run (equal up to the CPU's float rounding)
        stored = json.loads((ROOT / replicates.replicates_path(task)).read_text())
        committed[task] = {m: max(abs(x - y) for x, y in zip(v, stored[m])) for m, v in values[task].items()}
    from chapter4 import params
    block = params.read_params(ROOT / "params.yaml", ROOT / "dvc.yaml")["replicates"]
    doc = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "seed": 42, "chunk": args.chunk,
           "seconds": seconds, "first_block_largest_difference_to_committed_run": committed,
           **analyse(values, block), "values": values}
    Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")
    print(markdown(doc))


if __name__ == "__main__":
    main()
