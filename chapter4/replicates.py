"""A run's per-replicate values, read at a git revision, branch, tag or DVC experiment (DVC resolves it) or in
the working tree (`workspace`): {task: {metric: [value per replicate]}} from data/metrics/<task>_replicates.json.
Errors are CompareError: one line for the user, and the exit status compare gives them."""
import json
from pathlib import Path

from chapter4 import tasks

WORKSPACE = "workspace"


class CompareError(Exception):
    """A one-line message for the user and the exit status."""

    def __init__(self, message, status=1):
        super().__init__(message)
        self.status = status


def replicates_path(task):
    return f"data/metrics/{task}_replicates.json"


def reader(rev, scm, root):
    """(label, commit, read): read(path) -> bytes, or None when the file is not there at `rev`."""
    if rev == WORKSPACE:
        return WORKSPACE, None, lambda path: read_file(root / path)
    if scm is None:
        raise CompareError(f"compare: {Path.cwd()} is not inside a git repository, so {rev!r} means nothing", 2)
    from dvc.scm import RevError, resolve_rev    # DVC's own resolution: commits, branches, tags, experiments
    try:
        commit = resolve_rev(scm, rev)
    except RevError:
        raise CompareError(f"compare: unknown revision {rev!r} (not a commit, branch, tag or experiment)", 2) \
            from None
    fs = scm.get_fs(commit)
    return rev, commit, lambda path: read_file(path, fs.open)


def read_file(path, opener=open):
    try:
        with opener(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise CompareError(f"compare: cannot read {path}: {e.strerror or e}") from None


def parse(raw, where):
    """A _replicates.json document -> {metric: [values]}: every key holding a list of numbers but `seeds`."""
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as e:
        raise CompareError(f"compare: {where} is not valid JSON ({e})") from None
    if not isinstance(doc, dict):
        raise CompareError(f"compare: {where} must hold a JSON object")
    values = {}
    for key, value in doc.items():
        if key == "seeds" or not isinstance(value, list):
            continue
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            raise CompareError(f"compare: {where}: {key} must be a list of numbers")
        values[key] = [float(v) for v in value]
    return values


def load(label, read):
    """{task: {metric: [values]}} at one side; a task without files at all is simply absent."""
    found = {}
    for task in tasks.TASKS:
        path = replicates_path(task)
        raw = read(path)
        if raw is None:
            if read(f"data/metrics/{task}.json") is not None:
                raise CompareError(f"compare: {label} has no per-replicate values ({path}): "
                                   + ("run dvc repro" if label == WORKSPACE else "re-run it with this pipeline"))
            continue
        found[task] = parse(raw, f"{label}: {path}")
    if not found:
        raise CompareError(f"compare: {label} has no per-replicate values (no data/metrics/<task>_replicates.json)")
    return found
