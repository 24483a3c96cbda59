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
import os
import subprocess

from chapter4 import comparison, replicates, tasks
from chapter4.comparison import num, pvalue
from chapter4.sweep import DVC, SweepError, check_git_remote

ALPHA = 0.05
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


def values_at(fs, label):
    """{task: {metric: [values]}} of a git tree: what stages.compare reads (chapter4/replicates.py)."""
    try:
        return replicates.load(label, lambda path: replicates.read_file(path, fs.open))
    except replicates.CompareError as e:
        raise SweepError(f"sweep: {e}".replace("sweep: compare: ", "sweep: ")) from None


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
    """Point b against baseline a: Welch's test as stages.compare runs it (chapter4/comparison.py), its row as the
    report shows it (mean ± sd of b, b - a, its 95% CI, p; None where no test is possible)."""
    r = comparison.welch(a, b)
    return {"n": r["n_b"], "mean": r["mean_b"], "sd": r["sd_b"], "n_baseline": r["n_a"], "baseline": r["mean_a"],
            "diff": r["diff"], "ci95_low": r["ci95_low"], "ci95_high": r["ci95_high"], "p": r["p"], "p_bh": None}


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
        base = values_at(scm.get_fs(baseline), "baseline")
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
            for task, metrics in values_at(fs, point["name"]).items():
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
        sign = comparison.direction(metric)
        candidates = [r for r in rows if r["task"] == task and r["metric"] == metric and r["mean"] is not None]
        if candidates:
            top = max(candidates, key=lambda r: sign * r["mean"])
            beats = top["p_bh"] is not None and top["p_bh"] < ALPHA and sign * top["diff"] > 0
            out[task] = {"name": top["name"], "metric": metric, "mean": top["mean"], "sd": top["sd"],
                         "n": top["n"], "diff": top["diff"], "p_bh": top["p_bh"], "beats_baseline": beats}
    return out


def table(result):
    """Header and cells of the main table, then the lines under it."""
    sets = {p["name"]: " ".join(f"{k}={json.dumps(v, separators=(',', ':'))}" for k, v in p["params"].items())
            for p in result["points"] if p["present"]}
    header = ["point", "params", "task", "metric", "mean ± sd (n)", "point - baseline [95% CI]", "p", "BH p"]
    cells = [[r["name"], sets[r["name"]], r["task"], r["metric"],
              f"{num(r['mean'])} ± {num(r['sd'])} (n={r['n']})",
              comparison.difference(r), pvalue(r["p"]), pvalue(r["p_bh"])] for r in result["rows"]]
    notes = [f"Baseline: {result['baseline'][:7]}. {result['method']}."]
    for task, b in result["best"].items():
        notes.append(f"Best {task} ({b['metric']}): {b['name']} {sets[b['name']]}, {num(b['mean'])} ± "
                     f"{num(b['sd'])} (n={b['n']}), {num(b['diff'], True)} vs baseline, BH p {pvalue(b['p_bh'])}: "
                     + ("better than the baseline" if b["beats_baseline"] else "not shown better than the baseline"))
    present = sum(p["present"] for p in result["points"])
    notes.append(f"Points: {present} of {len(result['points'])} present"
                 + (f"; missing: {', '.join(result['missing'])}" if result["missing"] else "."))
    return header, cells, notes


def render_text(result):
    header, cells, notes = table(result)
    return "\n".join(comparison.text_table([header, *cells]) + [""] + notes)


def render_md(result):
    header, cells, notes = table(result)
    return "\n".join(["## Sweep report", ""] + comparison.md_table([header, *cells]) + [""] + [f"- {n}" for n in notes])


def render_json(result):
    return json.dumps(result, allow_nan=False)
