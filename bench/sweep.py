"""What bench/vocabulary.py and bench/variations.py share: queue DVC experiments, run them two at a time with
each stage's wall time and peak RSS recorded, and read back their per-replicate values.

Timing. `dvc queue start -j 2` runs each experiment in its own temporary workspace, inside DVC's queue workers,
so timing the `dvc` command tells nothing per experiment. Instead `stage_env` puts a `python` shim first on
PATH (the queue workers inherit the environment of `dvc queue start`; on Windows a `python.cmd` calling it):
every stage command (`python -m stages.<module> <task>`, dvc.yaml) then runs as a child of the shim, which
waits for it (bench/memory.py: wait4 on POSIX, psutil on Windows) and appends one JSON line to a log: the stage,
its wall time, its peak RSS in MB, user and system CPU seconds, the workspace it ran in and the params.yaml it
saw there. Anything else the shim runs unchanged. The stages' own times leave out DVC's bookkeeping between them (~0.6 s a stage).
"""
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import memory  # noqa: E402

LOG = ".dvc/tmp/bench-stages.jsonl"          # in the project: ignored by git and by DVC
RUN = {}          # load averages (1, 5, 15 min) around the last queue run; seconds spent queueing experiments

SHIM = '''#!{python}
# bench/sweep.py: runs `python -m stages.X ...` as a child, logs its wall time and peak RSS; anything else: exec.
import json, os, subprocess, sys, time
REAL, args = {python!r}, sys.argv[1:]
if len(args) < 2 or args[0] != "-m" or not args[1].startswith("stages.") or not os.environ.get("BENCH_STAGE_LOG"):
    if os.name == "nt":                        # (no exec there: run it and pass its exit code on)
        sys.exit(subprocess.call([REAL] + args))
    os.execv(REAL, [REAL] + args)
sys.path.insert(0, {root!r})
from bench import memory
start, t0 = time.time(), time.perf_counter()
code, peak, user, system = memory.wait(subprocess.Popen([REAL] + args))
wall = time.perf_counter() - t0
try:
    import yaml
    with open("params.yaml") as f:
        params = yaml.safe_load(f)
except Exception:
    params = None
name = args[1].split(".", 1)[1] + ("@" + args[2] if len(args) > 2 and not args[2].startswith("-") else "")
line = json.dumps({{"stage": name, "argv": args, "cwd": os.getcwd(), "start": start, "wall_s": round(wall, 3),
                   "peak_rss_mb": round(peak, 1), "user_s": round(user, 2), "sys_s": round(system, 2),
                   "exit": code, "params": params}}) + "\\n"
fd = os.open(os.environ["BENCH_STAGE_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
os.write(fd, line.encode())
os.close(fd)
sys.exit(code if code >= 0 else 128 - code)
'''


def stage_env(project, bin_dir=None, log=LOG):
    """The environment for dvc commands whose stages should be timed: the shim first on PATH, the log path
    (relative to the project)."""
    project = Path(project)
    bin_dir = Path(bin_dir or project / ".dvc" / "tmp" / "bench-bin")
    bin_dir.mkdir(parents=True, exist_ok=True)
    shim = bin_dir / "python"
    shim.write_text(SHIM.format(python=sys.executable, root=str(ROOT)))
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    if os.name == "nt":                     # Windows runs no shebang: `python` there finds python.cmd first
        (bin_dir / "python.cmd").write_text(f'@"{sys.executable}" "{shim}" %*\n')
    real_bin = str(Path(sys.executable).parent)
    return {"PATH": os.pathsep.join([str(bin_dir), real_bin, os.environ["PATH"]]),
            "BENCH_STAGE_LOG": str(project / log), "DVC_NO_ANALYTICS": "1"}


# `dvc exp run --queue` stashes a workspace with changes with libgit2, which then needs a git identity, and a fresh
# laptop or CI runner has none: the bench's experiments are committed as this one (bench/run.py's commits too),
# unless the environment sets its own GIT_AUTHOR_*/GIT_COMMITTER_*.
GIT_IDENTITY = {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@localhost",
                "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@localhost"}


def dvc(args, cwd, env=None, check=True):
    full = {**GIT_IDENTITY, **os.environ, **(env or {})}
    full.pop("PYTHONPATH", None)
    proc = subprocess.run(["dvc", *args], cwd=cwd, env=full, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise SystemExit(f"dvc {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n"
                         f"{proc.stderr[-2000:]}")
    return proc


def clone(dest):
    """A fresh git clone of this repository (committed state only) at `dest`."""
    subprocess.run(["git", "clone", "-q", str(ROOT), str(dest)], check=True)
    return Path(dest)


def queue(project, name, sets, targets=(), force=False, env=None):
    """`dvc exp run --queue -n name [-f] -S k=v ... [targets]` (its seconds are added to RUN["queueing_s"])."""
    start = time.perf_counter()
    args = ["exp", "run", "--queue", "-n", name] + (["-f"] if force else [])
    for key, value in sets.items():
        args += ["-S", f"{key}={json.dumps(value, separators=(',', ':'))}"]
    dvc(args + list(targets), project, env)
    RUN["queueing_s"] = round(RUN.get("queueing_s", 0) + time.perf_counter() - start, 1)


def run_queue(project, env, jobs=2, timeout=3600):
    """`dvc queue start -j jobs`, then wait until nothing is queued or running. Returns (wall seconds, {name:
    status}) with the status of each experiment as `dvc queue status` last printed it; the load averages
    before and after go to RUN (other work on the machine slows the sweep)."""
    start = time.perf_counter()
    RUN["load_before"] = [round(x, 2) for x in memory.load_average()]
    full = {**GIT_IDENTITY, **os.environ, **(env or {})}
    full.pop("PYTHONPATH", None)
    # the queue's daemon outlives `dvc queue start` and would hold a captured stdout open: no pipes to it
    subprocess.run(["dvc", "queue", "start", "-j", str(jobs)], cwd=project, env=full, check=True,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    while True:
        time.sleep(5)
        text = dvc(["queue", "status"], project, env).stdout.split("\n\n")[0]     # the table, not the workers
        statuses = {r[1]: r[-1] for r in map(str.split, text.splitlines()[1:]) if len(r) >= 3}
        if not any(s in ("Queued", "Running") for s in statuses.values()):
            break
        if time.time() > deadline:
            raise SystemExit(f"queue still running after {timeout} s: {statuses}")
    wall = time.perf_counter() - start
    RUN["load_after"] = [round(x, 2) for x in memory.load_average()]
    dvc(["queue", "stop"], project, env, check=False)
    return wall, statuses


def experiments(project):
    """{experiment name: {"rev": commit, "params": params.yaml's values}} from `dvc exp show --json`."""
    out = {}
    for commit in json.loads(dvc(["exp", "show", "--json"], project).stdout):
        for group in commit.get("experiments") or []:
            for exp in group["revs"]:
                data = exp.get("data") or {}
                if exp.get("name") and data.get("rev"):
                    params = data.get("params", {}).get("params.yaml", {}).get("data", {})
                    out[exp["name"]] = {"rev": data["rev"], "params": params}
    return out


def replicate_values(project, rev, task):
    """data/metrics/<task>_replicates.json at commit `rev` (an experiment's commit or a branch)."""
    raw = subprocess.run(["git", "show", f"{rev}:data/metrics/{task}_replicates.json"], cwd=project,
                         capture_output=True, text=True, check=True).stdout
    return json.loads(raw)


def stage_log(project, log=LOG):
    """The shim's records, [] when nothing was logged."""
    path = Path(project) / log
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def span(records):
    """Seconds from the first stage's start to the last stage's end (None without records): the sweep's
    computing time, whatever the clock of the script that waited for the queue says."""
    if not records:
        return None
    return round(max(r["start"] + r["wall_s"] for r in records) - min(r["start"] for r in records), 1)


def runs_by_workspace(records):
    """Records grouped by the workspace they ran in: one group per experiment the queue ran."""
    groups = {}
    for r in records:
        groups.setdefault(r["cwd"], []).append(r)
    return list(groups.values())


def cost(records, task):
    """Wall time (sum over the stages, and first start to last end), the largest peak RSS, CPU seconds, and
    each stage's own figures, of one experiment's records for `task` (its params stage included)."""
    mine = [r for r in records if r["stage"].endswith("@" + task) or r["stage"] == "params"]
    if not mine:
        return None
    return {"stages_wall_s": round(sum(r["wall_s"] for r in mine), 2),
            "span_s": round(max(r["start"] + r["wall_s"] for r in mine) - min(r["start"] for r in mine), 2),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in mine),
            "cpu_s": round(sum(r["user_s"] + r["sys_s"] for r in mine), 2),
            "stages": {r["stage"]: {"wall_s": r["wall_s"], "peak_rss_mb": r["peak_rss_mb"]} for r in mine}}


def machine():
    import platform
    return (f"{platform.machine()}, {os.cpu_count()} cores, "
            f"{round(memory.total_memory_gib())} GiB, "
            f"Python {platform.python_version()}")
