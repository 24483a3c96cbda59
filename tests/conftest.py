"""Shared fixtures: the real keras data (from $DATASETS_MIRROR or ../shared/datasets) and throwaway projects."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PROJECT_FILES = ("dvc.yaml", "params.yaml", "stages", "chapter4", ".dvcignore")


def link_or_copy(src, dst):
    """A symlink to `src` at `dst`; a copy where symlinks need rights a user may lack (Windows)."""
    try:
        Path(dst).symlink_to(src)
    except OSError:
        shutil.copyfile(src, dst)


def mirror_dir():
    for candidate in (os.environ.get("DATASETS_MIRROR"), ROOT.parent / "shared" / "datasets"):
        if candidate and "://" not in str(candidate) and (Path(candidate) / "imdb.npz").is_file():
            return Path(candidate).resolve()
    return None


# keras.datasets (the reference the tests compare with) reads $KERAS_HOME/datasets/, fixed when keras is
# first imported: link the mirror's files there before any test imports keras.
if mirror_dir() is not None and "KERAS_HOME" not in os.environ:
    _home = Path(tempfile.mkdtemp(prefix="keras-home-"))
    (_home / "datasets").mkdir()
    for _f in mirror_dir().iterdir():
        link_or_copy(_f, _home / "datasets" / _f.name)
    os.environ["KERAS_HOME"] = str(_home)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# What TensorFlow prints while its libraries load, before any log level applies, on CPUs where it turns oneDNN on
# (AVX-512 VNNI/BF16, AMX): absl's notice and oneDNN's, once per library (docs/design.md: why we accept them).
LOAD_NOTICE = re.compile(r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to "
                         r"STDERR|I\d{4} [\d:.]+ +\d+ port\.cc:\d+\] oneDNN custom operations are on\. .*)\n", re.M)


def without_load_notice(text):
    """`text` without TensorFlow's load-time notice lines (LOAD_NOTICE)."""
    return LOAD_NOTICE.sub("", text)


@pytest.fixture(scope="session")
def mirror():
    path = mirror_dir()
    if path is None:
        pytest.skip("real data needed: set DATASETS_MIRROR to a folder with the keras dataset files")
    return path


@pytest.fixture(scope="session")
def raw(mirror, tmp_path_factory):
    """data/raw/<task>/ as the download stage leaves it, for every task (downloaded once per session)."""
    from chapter4 import tasks
    from stages import download
    out = tmp_path_factory.mktemp("raw")
    for task in tasks.TASKS.values():
        for name in task.files:
            download.fetch(name, out / task.name, str(mirror), progress=False)
    return out


# A git identity for the commits tests make in their throwaway repos (git's own commits, and DVC's experiment
# commits and queue stashes, which read the same variables): GitHub's runners and a fresh laptop have none
# configured. `env` of `run` can override them.
GIT_IDENTITY = {"GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.com",
                "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.com"}


def run(cmd, cwd, env=None, check=True):
    """Run a command in `cwd` with the project's Python on PATH and a git identity (GIT_IDENTITY); returns the
    CompletedProcess."""
    full_env = {**os.environ, **GIT_IDENTITY, "DVC_NO_ANALYTICS": "1",
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", **(env or {})}
    full_env.pop("PYTHONPATH", None)              # `python -m stages.x` imports the copy in cwd
    if isinstance(cmd, str) and os.name == "nt":  # the tests' command lines are POSIX shell: Git's bash runs them
        cmd = [shutil.which("bash") or pytest.skip("a POSIX shell (Git's bash) is needed on Windows"), "-c", cmd]
    proc = subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True,
                          shell=isinstance(cmd, str))
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def set_params(path, **changes):
    """Edit params.yaml in place: set_params(dir, **{"reuters.epochs": 2})."""
    file = Path(path) / "params.yaml"
    doc = yaml.safe_load(file.read_text())
    for key, value in changes.items():
        node = doc
        *parents, last = key.split(".")
        for part in parents:
            node = node[part]
        node[last] = value
    file.write_text(yaml.safe_dump(doc, sort_keys=False))


# Epoch counts small enough for a test, big enough that every code path runs (K-fold table at epoch 2);
# three replicates, so every spread is computed.
SMALL = {"replicates": 3, "imdb.holdout_epochs": 2, "imdb.epochs": 1, "reuters.holdout_epochs": 2, "reuters.epochs": 1,
         "housing.kfold_epochs": 3, "housing.kfold_table_epoch": 2, "housing.epochs": 2}


def new_project(dest, params=SMALL):
    """A fresh git + DVC repo holding this project's pipeline (code, dvc.yaml, params.yaml), no outputs."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_FILES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy(src, dest / name)
    set_params(dest, **params)
    run("git init -q -b main && dvc init -q && dvc config core.analytics false && git add -A && git commit -qm init",
        dest)
    return dest


def pytest_collection_modifyitems(items):
    """Every test on the `pipeline` fixture (a full `dvc repro` on the real data) is `slow`; tests that run the
    real pipeline or DVC end to end otherwise say so themselves (@pytest.mark.slow)."""
    for item in items:
        if "pipeline" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def clone(pipeline, tmp_path):
    """A git clone of the pipeline project sharing its DVC cache, outputs checked out."""
    dest = tmp_path / "clone"
    run(f"git clone -q {pipeline} {dest}", tmp_path)
    run(f"dvc cache dir --local {pipeline / '.dvc' / 'cache'} && dvc checkout -q", dest)
    return dest


@pytest.fixture(scope="session")
def pipeline(mirror, tmp_path_factory):
    """A small-epoch project after a full `dvc repro` on the real data (shared by the pipeline tests)."""
    project = new_project(tmp_path_factory.mktemp("pipeline") / "project")
    run("dvc repro", project, env={"DATASETS_MIRROR": str(mirror)})
    run("git add -A && git commit -qm repro", project)
    return project
