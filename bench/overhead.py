"""DVC's own time on two revisions of this project, interleaved on one machine: no-op `dvc repro`, `dvc status`
and `dvc exp run -S reuters.epochs=10` (the commands a user repeats; issue 20 asked that they stay as fast).

    DATASETS_MIRROR=... python bench/overhead.py BEFORE [--after REV] [--python-before PY] [--rounds 15]
                                                 [--exp-rounds 5] [--out bench/overhead.json]

Clones this repo at BEFORE and at AFTER (default HEAD) and runs `dvc repro -f` in each, so that its outputs are
what this machine computes (a lock made on another CPU differs in the last digits; the clone commits its re-made
dvc.lock), and says which files under data/ the two sides hold with different bytes (a refactor should leave
none). Then it alternates the two, the order flipped every round so that the
machine's drift falls on both alike. `--python-before` runs BEFORE's DVC and stages in another environment (a
venv of BEFORE's requirements.txt), so that "before" is the project as it was, its lock included; without it both
sides share this interpreter and the difference is the code's alone.

Prints per command each side's median over the rounds, the ratio of medians, and the mean difference
after − before with its 95 % interval and p from the paired t-test over rounds (scipy.stats.ttest_rel).
"""
import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import memory  # noqa: E402
from bench.run import GIT, commit_outputs, exp_run, reset, timed  # noqa: E402


def clone(rev, work, env):
    """`work`: this repo at `rev` with the outputs this machine computes, committed. Returns the stages re-run."""
    subprocess.run(GIT + ["clone", "-q", str(ROOT), str(work)], check=True)
    subprocess.run(GIT + ["switch", "-q", "-c", "bench", rev], cwd=work, check=True)
    secs, _, out = timed("dvc repro -f", work, env)
    ran = [line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage '")]
    commit_outputs(work)
    print(f"  {rev}: dvc repro ran {len(ran)} stages in {secs:.0f} s", flush=True)
    return ran


def digests(work):
    """sha256 of every file under work/data, by path relative to it."""
    return {p.relative_to(work).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((work / "data").rglob("*")) if p.is_file()}


def same_outputs(before, after):
    """The files both sides wrote, and those whose bytes differ or that only one side has."""
    a, b = digests(before), digests(after)
    return {"files_compared": len(a.keys() & b.keys()),
            "different": sorted(k for k in a.keys() & b.keys() if a[k] != b[k]),
            "only_before": sorted(a.keys() - b.keys()), "only_after": sorted(b.keys() - a.keys())}


def compare(before, after):
    """Medians, their ratio, and the paired difference after - before: mean, 95 % interval, p."""
    test = stats.ttest_rel(after, before)
    ci = test.confidence_interval(0.95)
    diff = [a - b for a, b in zip(after, before)]
    return {"before_median_s": round(sorted(before)[len(before) // 2], 3),
            "after_median_s": round(sorted(after)[len(after) // 2], 3),
            "ratio_of_medians": round(sorted(after)[len(after) // 2] / sorted(before)[len(before) // 2], 3),
            "mean_difference_s": round(sum(diff) / len(diff), 3),
            "ci95_s": [round(float(ci.low), 3), round(float(ci.high), 3)], "p": float(f"{test.pvalue:.3g}"),
            "n": len(diff), "before_s": [round(x, 3) for x in before], "after_s": [round(x, 3) for x in after]}


def interleaved(sides, rounds, run_once):
    """`run_once(side)` -> seconds, `rounds` times per side, alternating which side goes first."""
    out = {name: [] for name in sides}
    for i in range(rounds):
        for name in (sides if i % 2 == 0 else sides[::-1]):
            out[name].append(run_once(name))
    return out


def main():
    args = argparse.ArgumentParser()
    args.add_argument("before")
    args.add_argument("--after", default="HEAD")
    args.add_argument("--python-before", default=sys.executable)
    args.add_argument("--rounds", type=int, default=15)
    args.add_argument("--exp-rounds", type=int, default=5)
    args.add_argument("--out", default=str(ROOT / "bench" / "overhead.json"))
    args = args.parse_args()
    if args.rounds < 2 or args.exp_rounds < 2:
        raise SystemExit("overhead.py: --rounds and --exp-rounds must be at least 2 (a paired test needs two)")
    revs = {}
    for name, rev in (("before", args.before), ("after", args.after)):
        proc = subprocess.run(["git", "rev-parse", "--verify", "-q", f"{rev}^{{commit}}"], cwd=ROOT,
                              capture_output=True, text=True)
        if proc.returncode:
            raise SystemExit(f"overhead.py: {rev} is not a commit of this repo")
        revs[name] = proc.stdout.strip()
    pythons = {"before": Path(args.python_before), "after": Path(sys.executable)}
    env = {name: {"PATH": f"{py.parent}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1"}
           for name, py in pythons.items()}
    tmp = Path(tempfile.mkdtemp(prefix="overhead-"))
    work = {name: tmp / name for name in revs}
    sides = ("before", "after")
    r = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, {round(memory.total_memory_gib())} GiB, "
                    f"Python {platform.python_version()}", "date": time.strftime("%Y-%m-%d"),
         "revisions": {name: f"{args.before if name == 'before' else args.after} ({revs[name][:7]})"
                       for name in sides},
         "pythons": {name: str(py) for name, py in pythons.items()}}
    try:
        print("clones, outputs as this machine computes them:", flush=True)
        r["relocked_stages"] = {name: clone(revs[name], work[name], env[name]) for name in sides}
        r["outputs"] = same_outputs(work["before"], work["after"])
        print(f"  outputs: {r['outputs']['files_compared']} files on both sides, "
              f"{len(r['outputs']['different'])} with different bytes {r['outputs']['different'][:5]}", flush=True)

        print(f"no-op dvc repro and dvc status, {args.rounds} rounds ...", flush=True)
        for label, cmd in (("noop_repro", "dvc repro"), ("status", "dvc status")):
            runs = interleaved(sides, args.rounds, lambda name: timed(cmd, work[name], env[name])[0])
            r[label] = compare(runs["before"], runs["after"])

        print(f"dvc exp run -S reuters.epochs=10, {args.exp_rounds} rounds ...", flush=True)
        ran, rss = {}, {name: 0 for name in sides}

        def one_exp_run(name):
            secs, peak, ran[name] = exp_run(work[name], env[name])
            rss[name] = max(rss[name], round(peak))
            return secs
        runs = interleaved(sides, args.exp_rounds, one_exp_run)
        r["exp_run"] = {**compare(runs["before"], runs["after"]), "stages": ran, "peak_rss_mb": rss}
        r["dvc_lock_lines"] = {name: len((work[name] / "dvc.lock").read_text().splitlines()) for name in sides}
    finally:
        for name in sides:
            if work[name].exists():
                reset(work[name], env[name])
        shutil.rmtree(tmp, ignore_errors=True)
    Path(args.out).write_text(json.dumps(r, indent=2) + "\n")

    print(f"\nmachine: {r['machine']}")
    for name in sides:
        print(f"{name}: {r['revisions'][name]}, {r['pythons'][name]}, dvc.lock {r['dvc_lock_lines'][name]} lines")
    print(f"{'':22}{'before':>8}{'after':>8}{'ratio':>7}   after - before (95 % CI; paired t-test)")
    for label in ("noop_repro", "status", "exp_run"):
        c = r[label]
        print(f"{label + ' (s, median)':22}{c['before_median_s']:>8.2f}{c['after_median_s']:>8.2f}"
              f"{c['ratio_of_medians']:>7.2f}   {c['mean_difference_s']:+.2f} s [{c['ci95_s'][0]:+.2f}, "
              f"{c['ci95_s'][1]:+.2f}], p = {c['p']:.3g}, n = {c['n']}")
    print("exp run stages: " + "; ".join(f"{n}: {', '.join(s)}" for n, s in r["exp_run"]["stages"].items()))
    print("exp run peak RSS (MB): " + ", ".join(f"{n} {m}" for n, m in r["exp_run"]["peak_rss_mb"].items()))


if __name__ == "__main__":
    main()
