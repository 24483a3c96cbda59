"""A sweep over many machines: a plan of DVC experiments, one point run per job, the results read back.

The plan is a GitHub Actions matrix, `{"include": [{"index": 0, "name": "sweep-3f9c2a1b", "set":
["reuters.epochs=2", ...]}, ...]}`. Its points are what `dvc exp run --queue -S ...` would queue for the same
overrides: DVC's own expansion of Hydra's sweep grammar (`dvc.utils.hydra.get_hydra_sweeps`) makes them and
DVC's own `apply_overrides` writes each one's params.yaml, which chapter4/params.py checks before anything
runs. A point's name is a digest of its overrides: the same point always has the same name, so running it
again replaces its experiment instead of adding one. A point runs as `dvc exp run -n NAME -S ...` and travels
as a DVC experiment: `dvc exp push` (git refs, and DVC-tracked outputs when a DVC remote is set), pushed only
after the run succeeded, so a job killed mid-run leaves nothing in the remote.
"""
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PREFIX = "sweep"
PARAMS = "params.yaml"
DVC = [sys.executable, "-m", "dvc"]          # the DVC of this Python, whatever PATH says
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,40}")


class SweepError(Exception):
    """One line for the user; `status` is the exit status."""

    def __init__(self, message, status=1):
        super().__init__(message)
        self.status = status


# --- plan ---------------------------------------------------------------------------------------------------

def expand(overrides):
    """The points of a sweep, each a list of single overrides, in the order `dvc exp run --queue -S` queues
    them (DVC's own expansion)."""
    from dvc.exceptions import DvcException
    from dvc.utils.hydra import get_hydra_sweeps
    from hydra.errors import HydraException
    if not overrides:
        raise SweepError("sweep: nothing to sweep: give at least one -S key=value[,value...]")
    try:
        points = [p[PARAMS] for p in get_hydra_sweeps({PARAMS: list(overrides)})]
    except (DvcException, HydraException, ValueError) as e:
        raise SweepError(f"sweep: cannot parse the overrides {' '.join(overrides)!r}: "
                         f"{str(e).strip().splitlines()[0]}") from None
    if not points or any(not p for p in points):
        raise SweepError(f"sweep: the overrides {' '.join(overrides)!r} give an empty grid")
    return points


def point_name(sets, prefix=PREFIX):
    """`<prefix>-<8 hex digits>`: a digest of the point's overrides, so the same point keeps its name."""
    digest = hashlib.sha256("\n".join(sorted(sets)).encode()).hexdigest()[:8]
    return f"{prefix}-{digest}"


def point_params(sets, params_yaml=PARAMS):
    """The params.yaml text this point's experiment would run with (DVC's `apply_overrides` on a copy)."""
    from dvc.exceptions import DvcException
    from dvc.utils.hydra import apply_overrides
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / PARAMS
        shutil.copyfile(params_yaml, copy)
        try:
            apply_overrides(copy, list(sets))
        except DvcException as e:
            cause = e.__cause__ or e
            raise ValueError(str(cause).strip().splitlines()[0]) from None
        return copy.read_text()


def check_point(sets, params_yaml=PARAMS, dvc_yaml="dvc.yaml"):
    """None when the point's params.yaml passes chapter4/params.py's check, else the one-line reason."""
    from chapter4 import params
    try:
        text = point_params(sets, params_yaml)
    except ValueError as e:
        unknown = re.match(r"Could not override '([^']+)'", str(e))
        if not unknown:
            return str(e)
        import difflib
        hint = difflib.get_close_matches(unknown[1], sorted(params.known_keys(dvc_yaml)), n=1)
        return f"params.yaml: {unknown[1]} is not a known key" + (f" (did you mean {hint[0]}?)" if hint else "")
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / PARAMS).write_text(text)
        try:
            params.check_all(Path(tmp) / PARAMS, dvc_yaml)
        except SystemExit as e:
            return str(e.code)
    return None


def plan(overrides, prefix=PREFIX, params_yaml=PARAMS, dvc_yaml="dvc.yaml"):
    """The matrix; a bad value at any point raises SweepError naming the point and the key."""
    if not NAME.fullmatch(prefix):
        raise SweepError(f"sweep: --name {prefix!r} must be letters, digits, - or _ (at most 41)")
    include = []
    for index, sets in enumerate(expand(overrides)):
        name = point_name(sets, prefix)
        problem = check_point(sets, params_yaml, dvc_yaml)
        if problem:
            raise SweepError(f"sweep: point {index} ({name}: {' '.join(sets)}): {problem}")
        include.append({"index": index, "name": name, "set": sets})
    return {"include": include}


def read_plan(text, where="the plan"):
    """A plan from its JSON text, shape checked."""
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise SweepError(f"sweep: {where} is not JSON ({e})") from None
    points = doc.get("include") if isinstance(doc, dict) else None
    if (not isinstance(points, list) or not points
            or any(not isinstance(p, dict) or not isinstance(p.get("name"), str) or not NAME.fullmatch(p["name"])
                   or not isinstance(p.get("set"), list) or not all(isinstance(s, str) for s in p["set"])
                   for p in points)):
        raise SweepError(f"sweep: {where} is not a sweep plan ({{\"include\": [{{\"name\": ..., \"set\": [...]}}, "
                         f"...]}} from `python -m stages.sweep plan`)")
    return points


# --- run ----------------------------------------------------------------------------------------------------

def command(args, log):
    """Run `args`, its output appended line by line to `log` as it comes; (exit status, what went wrong in one
    line: DVC's last error, after the line the failing stage printed before it)."""
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    Path(log).parent.mkdir(parents=True, exist_ok=True)
    tail = []
    with open(log, "a", encoding="utf-8") as out:
        out.write(f"$ {' '.join(args)}\n")
        out.flush()
        with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                              env=env, text=True, encoding="utf-8", errors="replace") as proc:
            for line in proc.stdout:
                out.write(line)
                out.flush()
                if line.strip():
                    tail = (tail + [line.strip()])[-20:]
    errors = [i for i, line in enumerate(tail) if line.startswith("ERROR:")]
    if not errors:
        return proc.returncode, tail[-1] if tail else ""
    i = errors[-1]
    before = tail[i - 1] if i > 0 else ""
    if before and not before.startswith(("$ ", "> ", "Running stage", "ERROR:")):    # the stage's own message
        return proc.returncode, f"{before} ({tail[i]})"
    return proc.returncode, tail[i]


def dvc_remote():
    """The default DVC remote's name, or None."""
    proc = subprocess.run(DVC + ["remote", "default"], capture_output=True, text=True,
                          env={**os.environ, "DVC_NO_ANALYTICS": "1"})
    name = proc.stdout.strip()
    return name if proc.returncode == 0 and name and " " not in name else None


def local_experiment(name):
    """Whether this repository holds an experiment called `name` (a ref refs/exps/.../<name>)."""
    proc = subprocess.run(["git", "for-each-ref", "--format=%(refname)", "refs/exps"], capture_output=True, text=True)
    return any(ref.rsplit("/", 1)[-1] == name for ref in proc.stdout.split())


def check_git_remote(remote):
    proc = subprocess.run(["git", "ls-remote", "--heads", remote], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})
    if proc.returncode != 0:
        reason = (proc.stderr.strip().splitlines() or ["unreachable"])[0].removeprefix("fatal: ")
        raise SweepError(f"sweep: git remote {remote!r} is not there ({reason}); nothing run, nothing pushed")


def run_point(points, index, push=None, log_dir=Path(".dvc/tmp")):
    """Run point `index` of the plan as a DVC experiment, push it when it succeeded; returns its name."""
    if not 0 <= index < len(points):
        raise SweepError(f"sweep: index {index} is out of range: the plan has points 0 to {len(points) - 1}")
    point = points[index]
    name, sets = point["name"], point["set"]
    if push:
        check_git_remote(push)
    log = Path(log_dir) / f"sweep-{name}.log"
    log.unlink(missing_ok=True)
    where = f"sweep: point {index} ({name}: {' '.join(sets)})"
    steps = []
    remote = dvc_remote()
    if remote:                                   # what the remote holds is not recomputed
        steps.append(("dvc pull", DVC + ["pull", "--allow-missing"]))
    if local_experiment(name):                   # run here before: replaced (`exp run -f` would re-run every stage)
        steps.append(("dvc exp remove", DVC + ["exp", "remove", name]))
    steps.append(("dvc exp run", DVC + ["exp", "run", "-n", name] + [a for s in sets for a in ("-S", s)]))
    if push:                                     # only after the run succeeded: a killed job pushes nothing
        steps.append(("dvc exp push", DVC + ["exp", "push", "-f"] + ([] if remote else ["--no-cache"])
                      + [push, name]))
    for label, args in steps:
        status, last = command(args, log)
        if status != 0:
            raise SweepError(f"{where}: {label} failed (exit {status}): {last} (full output: {log})")
    return name
