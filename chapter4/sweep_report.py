"""A sweep's report: every planned point's experiment read back from git and tested against the baseline.

For each point present, task and headline metric (the lists of data/metrics/<task>_replicates.json): the mean
± sd over the replicates, the difference to the baseline (the commit checked out, the one the sweep started
from: `dvc exp list` lists the experiments of that commit) with the Welch-Satterthwaite 95% interval and the
p of Welch's t-test (scipy.stats.ttest_ind, unequal variances), and that p adjusted over every test of the
sweep by Benjamini-Hochberg (scipy.stats.false_discovery_control). A sweep makes dozens of tests to find the
few points worth a closer look: controlling the expected share of false findings among those reported (FDR)
keeps the power to find them, where Holm's family-wise control (right for stages.compare: a handful of metrics
and one decision) needs ever larger effects as the tests grow (the smallest p is held to 0.05 / m). A task whose values equal the baseline's bit for bit (a
point that changes no param it reads) has no row. Points planned but not found are listed as missing.
"""
import json
import math
import os
import statistics
import subprocess
import warnings

from chapter4 import tasks
from chapter4.sweep import DVC, SweepError, check_git_remote

ALPHA = 0.05
LOWER_IS_BETTER = ("loss", "mae", "mse")
METHOD = ("Welch's t-test (two-sided, unequal variances) of each point's replicates against the baseline's, "
          "95% CI of the difference (Welch-Satterthwaite df); p adjusted by Benjamini-Hochberg over all the "
          "sweep's tests (false discovery rate 5%: a sweep screens dozens of tests for the few worth a closer "
          "look; Holm's family-wise control, stages.compare's, loses power as the tests grow); tasks a point "
          "leaves bit-identical have no row")


def dvc(*args):
    proc = subprocess.run([*DVC, *args], capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          env={**os.environ, "DVC_NO_ANALYTICS": "1"})
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise SweepError(f"sweep: dvc {' '.join(args)} failed (exit {proc.returncode}): {last}")
    return proc.stdout


def replicates(fs):
    """{task: {metric: [values]}} from data/metrics/<task>_replicates.json in a git tree (absent: no task).
    (What stages/compare.py's `load` reads; to be imported from the library once compare's readers move.)"""
    found = {}
    for task in tasks.TASKS:
        try:
            with fs.open(f"data/metrics/{task}_replicates.json", "rb") as f:
                doc = json.loads(f.read())
        except FileNotFoundError:
            continue
        found[task] = {k: [float(x) for x in v] for k, v in doc.items() if k != "seeds" and isinstance(v, list)}
    return found


def lookup(fs, keys):
    """The values of dotted `keys` in params.yaml of a git tree."""
    import yaml
    with fs.open("params.yaml", "rb") as f:
        doc = yaml.safe_load(f.read())
    out = {}
    for key in keys:
        node = doc
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        out[key] = node
    return out


def welch(a, b):
    """Point b against baseline a: mean ± sd of b, b - a, its 95% CI and p (None where no test is possible;
    everything None where a value is not finite: a run that diverged)."""
    if not all(math.isfinite(v) for v in a + b):
        return {"n": len(b), "mean": None, "sd": None, "n_baseline": len(a), "baseline": None, "diff": None,
                "ci95_low": None, "ci95_high": None, "p": None, "p_bh": None}
    row = {"n": len(b), "mean": statistics.fmean(b), "sd": statistics.stdev(b) if len(b) > 1 else None,
           "n_baseline": len(a), "baseline": statistics.fmean(a), "diff": statistics.fmean(b) - statistics.fmean(a),
           "ci95_low": None, "ci95_high": None, "p": None, "p_bh": None}
    if min(len(a), len(b)) >= 2 and not (min(a) == max(a) and min(b) == max(b)):
        from scipy import stats
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            result = stats.ttest_ind(b, a, equal_var=False)
            ci = result.confidence_interval(0.95)
        if all(math.isfinite(x) for x in (result.pvalue, ci.low, ci.high)):
            row.update(p=float(result.pvalue), ci95_low=float(ci.low), ci95_high=float(ci.high))
    return row


def collect(points, remote=None):
    """The report's data: baseline, points (present or missing, with their params), rows, best per task."""
    from dvc.scm import SCM, resolve_rev
    if remote:
        check_git_remote(remote)
        there = set(dvc("exp", "list", remote, "--name-only").split())
        wanted = [p["name"] for p in points if p["name"] in there]
        if wanted:
            dvc("exp", "pull", "-f", "--no-cache", remote, *wanted)   # metrics are in git; models stay remote
    local = set(dvc("exp", "list", "--name-only").split())
    scm = SCM(".")
    try:
        baseline = scm.get_rev()
        base = replicates(scm.get_fs(baseline))
        listed, rows = [], []
        for point in points:
            entry = {"index": point.get("index"), "name": point["name"], "set": point["set"], "present": False}
            listed.append(entry)
            if point["name"] not in local:
                continue
            commit = resolve_rev(scm, point["name"])
            fs = scm.get_fs(commit)
            keys = [s.split("=", 1)[0].lstrip("+~") for s in point["set"]]
            entry.update(present=True, commit=commit, params=lookup(fs, keys))
            for task, metrics in replicates(fs).items():
                if metrics == base.get(task):
                    continue
                for metric, values in metrics.items():
                    if metric != "replicates" and base.get(task, {}).get(metric):
                        rows.append({"name": point["name"], "task": task, "metric": metric,
                                     **welch(base[task][metric], values)})
    finally:
        scm.close()
    tested = [r for r in rows if r["p"] is not None]
    if tested:
        from scipy.stats import false_discovery_control
        for row, p in zip(tested, false_discovery_control([r["p"] for r in tested], method="bh")):
            row["p_bh"] = float(p)
    return {"baseline": baseline, "method": METHOD, "alpha": ALPHA, "points": listed, "rows": rows,
            "best": best(rows), "missing": [p["name"] for p in listed if not p["present"]]}


def best(rows):
    """Per task, the point with the best mean of the task's metric on the test set (test.accuracy up, test.mae
    down), and whether it beats the baseline (BH-adjusted p < 0.05 in the right direction)."""
    out = {}
    for task, spec in tasks.TASKS.items():
        metric = f"test.{spec.metric}"
        sign = -1 if metric.endswith(LOWER_IS_BETTER) else 1
        candidates = [r for r in rows if r["task"] == task and r["metric"] == metric and r["mean"] is not None]
        if candidates:
            top = max(candidates, key=lambda r: sign * r["mean"])
            beats = top["p_bh"] is not None and top["p_bh"] < ALPHA and sign * top["diff"] > 0
            out[task] = {"name": top["name"], "metric": metric, "mean": top["mean"], "sd": top["sd"],
                         "n": top["n"], "diff": top["diff"], "p_bh": top["p_bh"], "beats_baseline": beats}
    return out


def _num(x, signed=False):
    return "-" if x is None else f"{x:+.4f}" if signed else f"{x:.4f}"


def _p(x):
    return "-" if x is None else f"{x:.2g}"


def table(result):
    """Header and cells of the main table, then the lines under it."""
    sets = {p["name"]: " ".join(f"{k}={json.dumps(v, separators=(',', ':'))}" for k, v in p["params"].items())
            for p in result["points"] if p["present"]}
    header = ["point", "params", "task", "metric", "mean ± sd (n)", "point - baseline [95% CI]", "p", "BH p"]
    cells = [[r["name"], sets[r["name"]], r["task"], r["metric"],
              f"{_num(r['mean'])} ± {_num(r['sd'])} (n={r['n']})",
              f"{_num(r['diff'], True)}" + ("" if r["ci95_low"] is None else
                                            f" [{_num(r['ci95_low'], True)}, {_num(r['ci95_high'], True)}]"),
              _p(r["p"]), _p(r["p_bh"])] for r in result["rows"]]
    notes = [f"Baseline: {result['baseline'][:7]}. {result['method']}."]
    for task, b in result["best"].items():
        notes.append(f"Best {task} ({b['metric']}): {b['name']} {sets[b['name']]}, {_num(b['mean'])} ± "
                     f"{_num(b['sd'])} (n={b['n']}), {_num(b['diff'], True)} vs baseline, BH p {_p(b['p_bh'])}: "
                     + ("better than the baseline" if b["beats_baseline"] else "not shown better than the baseline"))
    present = sum(p["present"] for p in result["points"])
    notes.append(f"Points: {present} of {len(result['points'])} present"
                 + (f"; missing: {', '.join(result['missing'])}" if result["missing"] else "."))
    return header, cells, notes


def render_text(result):
    header, cells, notes = table(result)
    widths = [max(len(line[i]) for line in [header, *cells]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in [header, *cells]]
    return "\n".join(lines + [""] + notes)


def render_md(result):
    header, cells, notes = table(result)
    row = lambda cs: "| " + " | ".join(c.replace("|", "\\|") for c in cs) + " |"
    return "\n".join(["## Sweep report", "", row(header), row(["---"] * len(header)), *map(row, cells), ""]
                     + [f"- {n}" for n in notes])


def render_json(result):
    return json.dumps(result, allow_nan=False)
