"""A sweep three ways on this machine: DVC's queue (`dvc queue start -j 2`), two runners, one runner.

    DATASETS_MIRROR=... python bench/runners.py [--smoke] [--out bench/runners.json]

The grid is the issue's 4 points (`reuters.epochs=2,3` x `reuters.units=[32,32],[64,64]`), planned by
`python -m stages.sweep plan`. Setup (not timed as part of any way): a fresh clone of this repository, `dvc
repro` of its baseline, a local folder as DVC remote holding the baseline's outputs (`dvc push`), a bare git
repository as origin. Then:
  queue:       one clone of origin, `dvc pull`, each point queued (`dvc exp run --queue -n NAME -S ...`) and
               `dvc queue start -j 2` (bench/sweep.py's timing shim, no change to what runs);
  two runners: two lanes in parallel, each running its points one after the other, each point in a fresh clone
               of origin (as a CI job: a new checkout) running `python -m stages.sweep run PLAN INDEX --push
               origin` (`dvc pull`, `dvc exp run`, `dvc exp push`);
  one runner:  the same with one lane.
Each way's per-replicate files (data/metrics/<task>_replicates.json) of every point are compared byte for byte.
The per-job fixed cost of a runner is measured as far as it can be here: a full-history clone of origin
(local: no network), `dvc pull` from the local remote, the five dataset files copied from the mirror and checked
against their sha256 pins (what a cache hit restores); the install (`pip install -r requirements.txt`, no
network here) is the size of this venv at an assumed restore speed (--install-mb-s). From these and the
book's 14 variations' stage times (bench/variations.json, 5 replicates each), a model of a sweep's wall time
against the number of runners (README: the model and its assumptions). --smoke: tiny epochs, 2 replicates.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sweep as shim  # noqa: E402  (bench/sweep.py: the queue helpers and timing shim)
from sweep import ROOT  # noqa: E402

sys.path.insert(0, str(ROOT))
from chapter4 import io, tasks  # noqa: E402

GRID = ["reuters.epochs=2,3", "reuters.units=[32,32],[64,64]"]
SMOKE = {"replicates": 2, "imdb.holdout_epochs": 1, "imdb.epochs": 1, "reuters.holdout_epochs": 1,
         "reuters.epochs": 1, "housing.kfold_epochs": 2, "housing.kfold_table_epoch": 1, "housing.epochs": 1}
TASKS = list(tasks.TASKS)


def sh(*commands, cwd, env=None):
    """Run each command (a list) in turn in `cwd`, the project's Python first on PATH; the last one's stdout."""
    full = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "DVC_NO_ANALYTICS": "1", **(env or {})}
    full.pop("PYTHONPATH", None)
    for args in commands:
        proc = subprocess.run([str(a) for a in args], cwd=cwd, env=full, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n"
                             f"{proc.stderr[-2000:]}")
    return proc.stdout


def timed(*commands, cwd, env=None):
    start = time.perf_counter()
    sh(*commands, cwd=cwd, env=env)
    return round(time.perf_counter() - start, 2)


def setup(work, smoke):
    """Seed project (baseline computed, pushed), bare origin, DVC remote; seconds of the baseline's repro."""
    seed, origin, store = work / "seed", work / "origin.git", work / "dvc-store"
    shim.clone(seed)
    if smoke:
        import yaml
        doc = yaml.safe_load((seed / "params.yaml").read_text())
        for key, value in SMOKE.items():
            node = doc
            *parents, last = key.split(".")
            for part in parents:
                node = node[part]
            node[last] = value
        (seed / "params.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    baseline_s = timed(["dvc", "repro", "-q"], cwd=seed)
    sh(["git", "init", "-q", "--bare", "-b", "main", origin], ["git", "remote", "set-url", "origin", origin],
       ["dvc", "remote", "add", "-d", "store", store], ["git", "add", "-A"],
       ["git", "commit", "-qm", "baseline for the bench"], ["dvc", "push", "-q"],
       ["git", "push", "-q", "origin", "HEAD:main"], cwd=seed, env=IDENTITY)
    return origin, baseline_s


IDENTITY = {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
            "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com"}


def plan(origin, work, prefix):
    folder = work / f"plan-{prefix}"
    sh(["git", "clone", "-q", origin, folder], cwd=work)
    overrides = [a for o in GRID for a in ("-S", o)]
    text = sh(["python", "-m", "stages.sweep", "plan", *overrides, "--name", prefix], cwd=folder)
    (work / f"{prefix}.json").write_text(text)
    return json.loads(text)["include"], work / f"{prefix}.json"


def replicate_files(folder):
    return {t: (Path(folder) / f"data/metrics/{t}_replicates.json").read_text() for t in TASKS}


def lanes(origin, work, points, plan_file, runners, prefix):
    """Points dealt to `runners` lanes in matrix order (as max-parallel does), each point in a fresh clone;
    returns (wall seconds, {point index: {"wall_s", "files"}})."""
    script = ("import json, subprocess, sys, time\n"
              "out = {}\n"
              "for i, folder in json.loads(sys.argv[1]):\n"
              "    t = time.perf_counter()\n"
              f"    subprocess.run(['git', 'clone', '-q', {str(origin)!r}, folder], check=True)\n"
              f"    subprocess.run([sys.executable, '-m', 'stages.sweep', 'run', {str(plan_file)!r}, str(i),"
              " '--push', 'origin'], cwd=folder, check=True, stdout=sys.stderr)\n"
              "    out[i] = round(time.perf_counter() - t, 2)\n"
              "print(json.dumps(out))\n")
    jobs = [[(p["index"], str(work / f"{prefix}-{p['index']}")) for p in points[lane::runners]]
            for lane in range(runners)]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "DVC_NO_ANALYTICS": "1", **IDENTITY}
    env.pop("PYTHONPATH", None)
    start = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-c", script, json.dumps(job)], env=env, cwd=work,
                              stdout=subprocess.PIPE, text=True) for job in jobs]
    walls = {}
    for proc in procs:
        out, _ = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"a runner lane failed ({proc.returncode})")
        walls.update({int(k): v for k, v in json.loads(out).items()})
    wall = round(time.perf_counter() - start, 1)
    return wall, {i: {"wall_s": walls[i], "files": replicate_files(work / f"{prefix}-{i}")} for i in walls}


def queue_way(origin, work, points):
    folder = work / "queue"
    sh(["git", "clone", "-q", origin, folder], cwd=work)
    sh(["dvc", "pull", "-q"], cwd=folder)
    env = shim.stage_env(folder)
    for p in points:
        shim.dvc(["exp", "run", "--queue", "-n", p["name"], *[a for s in p["set"] for a in ("-S", s)]], folder, env)
    wall, statuses = shim.run_queue(folder, env, jobs=2)
    revs = shim.experiments(folder)
    files = {}
    for p in points:
        rev = revs[p["name"]]["rev"]
        files[p["index"]] = {"files": {t: sh(["git", "show", f"{rev}:data/metrics/{t}_replicates.json"], cwd=folder)
                                       for t in TASKS}}
    return round(wall, 1), files, statuses


def fixed_cost(origin, work, mirror):
    """The parts of a runner's per-job fixed cost this machine can measure."""
    folder = work / "fixed"
    clone_s = timed(["git", "clone", "-q", origin, folder], cwd=work)
    pull_s = timed(["dvc", "pull", "-q"], cwd=folder)
    data = work / "datasets"
    start = time.perf_counter()
    data.mkdir()
    for name, pin in sorted(tasks.SHA256.items()):
        shutil.copyfile(Path(mirror) / name, data / name)
        assert io.sha256(data / name) == pin
    data_s = round(time.perf_counter() - start, 2)
    venv_mb = sum(f.stat().st_size for f in Path(sys.prefix).rglob("*") if f.is_file()) / 2**20
    plan_start = time.perf_counter()
    sh(["python", "-m", "stages.sweep", "plan", "-S", "reuters.epochs=2,3"], cwd=folder)
    return {"clone_s": clone_s, "dvc_pull_s": pull_s, "datasets_s": data_s, "venv_mb": round(venv_mb),
            "plan_s": round(time.perf_counter() - plan_start, 2)}


def model(fixed, install_mb_s, start_s, variations, recompute_s, runners=(1, 2, 4, 7, 14)):
    """Wall time of the book's 14 variations (5 replicates) against runners: the plan job, then the points dealt
    in matrix order to the first free runner (each job: its fixed cost + the point's stage time), then the
    report job (taken as long as the plan job: no training). With a DVC remote a job pulls the baseline's
    outputs; without one it recomputes them first (`recompute_s`: the whole pipeline's time)."""
    install_s = fixed["venv_mb"] / install_mb_s
    job_fixed = start_s + fixed["clone_s"] + install_s + fixed["datasets_s"] + fixed["dvc_pull_s"]
    plan_job = start_s + fixed["clone_s"] + install_s + fixed["plan_s"]
    points = list(variations.values())

    def wall(per_job, r):
        free = [0.0] * r
        for t in points:
            i = free.index(min(free))
            free[i] += per_job + t
        return round(plan_job + max(free) + plan_job, 1)
    return {"job_fixed_s": round(job_fixed, 1), "install_s": round(install_s, 1), "plan_job_s": round(plan_job, 1),
            "points_s": round(sum(points), 1), "recompute_s": recompute_s,
            "wall_s_by_runners": {r: wall(job_fixed, r) for r in runners},
            "wall_s_by_runners_without_dvc_remote": {r: wall(job_fixed - fixed["dvc_pull_s"] + recompute_s, r)
                                                     for r in runners}}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="tiny epochs, 2 replicates: checks the script runs")
    ap.add_argument("--out", default=str(ROOT / "bench" / "runners.json"))
    ap.add_argument("--install-mb-s", type=float, default=100.0,
                    help="assumed restore speed of the installed packages from the pip cache (MB/s)")
    ap.add_argument("--job-start-s", type=float, default=20.0,
                    help="assumed seconds from a job's start to its first step (runner assignment, VM set-up)")
    ap.add_argument("--recompute-s", type=float, default=None,
                    help="a job's time to recompute the baseline without a DVC remote (default: this run's "
                         "baseline `dvc repro`; --smoke's is not the real pipeline's)")
    args = ap.parse_args()
    mirror = os.environ.get("DATASETS_MIRROR")
    if not mirror:
        raise SystemExit("runners.py: set DATASETS_MIRROR to a folder with the five keras dataset files")
    with tempfile.TemporaryDirectory(prefix="bench-runners-") as tmp:
        work = Path(tmp)
        origin, baseline_s = setup(work, args.smoke)
        points, plan_two = plan(origin, work, "two")
        _, plan_one = plan(origin, work, "one")
        queue_wall, queued, statuses = queue_way(origin, work, points)
        two_wall, two = lanes(origin, work, points, plan_two, 2, "two")
        one_wall, one = lanes(origin, work, points, plan_one, 1, "one")
        identical = all(queued[i]["files"] == two[i]["files"] == one[i]["files"] for i in queued)
        fixed = fixed_cost(origin, work, mirror)
    variations = {r["experiment"]: r["cost"]["span_s"]
                  for r in json.loads((ROOT / "bench" / "variations.json").read_text())["rows"]}
    result = {"machine": shim.machine(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "smoke": args.smoke, "grid": GRID, "baseline_repro_s": baseline_s, "queue_statuses": statuses,
              "wall_s": {"queue -j 2": queue_wall, "two runners": two_wall, "one runner": one_wall},
              "point_wall_s": {"two runners": {i: two[i]["wall_s"] for i in two},
                               "one runner": {i: one[i]["wall_s"] for i in one}},
              "identical_replicate_files": identical, "fixed_cost": fixed, "install_mb_s_assumed": args.install_mb_s,
              "book_variations_point_s": variations,
              "job_start_s_assumed": args.job_start_s,
              "recompute_s_assumed": args.recompute_s,
              "model": model(fixed, args.install_mb_s, args.job_start_s, variations,
                             args.recompute_s or baseline_s), "load": shim.RUN}
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: result[k] for k in ("wall_s", "identical_replicate_files", "fixed_cost", "model")},
                     indent=1))
    if not identical:
        raise SystemExit("the three ways gave different per-replicate files")


if __name__ == "__main__":
    main()
