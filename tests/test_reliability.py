"""Interrupted runs and a full disk are harmless; the same inputs give the same bytes; TensorFlow's start-up
chatter stays out of the output."""
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import new_project, run, without_load_notice

try:
    import resource                             # POSIX only
except ImportError:
    resource = None


def lock_outs(project):
    """{out path: md5} of every stage in dvc.lock."""
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    return {o["path"]: o["md5"] for s in lock["stages"].values() for o in s.get("outs", [])}


def _cwd(pid):
    import psutil
    try:
        return Path(psutil.Process(pid).cwd()).resolve()
    except (psutil.Error, OSError):                         # gone already, or not ours to read
        return None


@pytest.mark.skipif(not hasattr(signal, "SIGKILL") or shutil.which("pgrep") is None,
                    reason="kills the stage with pgrep and SIGKILL: POSIX only (Windows has neither)")
def test_sigkill_while_writing_then_repro_recovers(clone, mirror):
    expected = lock_outs(clone)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "DATASETS_MIRROR": str(mirror)}
    env.pop("PYTHONPATH", None)
    dvc = subprocess.Popen(["dvc", "repro", "-f", "encode@imdb"], cwd=clone, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out_dir = clone / "data/encoded/imdb"
    deadline, killed = time.time() + 60, False
    while time.time() < deadline and not killed:          # wait for the stage's temporary output file
        if out_dir.is_dir() and any(p.name.endswith(".tmp.npz") for p in out_dir.iterdir()):
            pids = subprocess.run(["pgrep", "-f", "stages.encode imdb"], capture_output=True, text=True).stdout
            for pid in pids.split():
                if _cwd(int(pid)) == clone.resolve():       # this clone's stage, not another test worker's
                    os.kill(int(pid), signal.SIGKILL)
                    killed = True
        time.sleep(0.002)
    output = dvc.communicate(timeout=60)[0]
    assert killed and dvc.returncode != 0, output
    assert not (out_dir / "train.npz").exists() or lock_outs(clone) == expected
    status = run("dvc status --json", clone).stdout
    assert "encode@imdb" in status                          # DVC knows the output is not what the lock says
    run("dvc repro", clone, env={"DATASETS_MIRROR": str(mirror)})   # DVC restores the last good output
    assert lock_outs(clone) == expected and (out_dir / "train.npz").is_file()
    assert run("dvc status --json", clone).stdout.strip() in ("{}", "")
    proc = run("dvc repro -f -s encode@imdb", clone, env={"DATASETS_MIRROR": str(mirror)})
    assert "Running stage 'encode@imdb'" in proc.stdout
    assert lock_outs(clone) == expected                     # recomputed: same bytes as the uninterrupted run
    assert not [p for p in out_dir.iterdir() if p.name.startswith(".")]   # no temporary left behind


def test_two_forced_repros_give_identical_bytes(clone, mirror):
    lock = (clone / "dvc.lock").read_text()
    metrics = {p: p.read_bytes() for p in (clone / "data/metrics").iterdir()}
    run("dvc repro -f", clone, env={"DATASETS_MIRROR": str(mirror)})
    assert (clone / "dvc.lock").read_text() == lock       # every artifact's hash: data, models, histories
    assert {p: p.read_bytes() for p in (clone / "data/metrics").iterdir()} == metrics


# --- a full disk ---------------------------------------------------------------------------------------------

WRITERS = ("encode", "train", "evaluate", "predict", "plot")     # every stage that writes data/ from computed data
FSIZE_LIMIT = 32            # bytes: every output is larger, while Python's own start-up writes (tempfile's probe) fit
NEEDS_FSIZE = pytest.mark.skipif(resource is None or not hasattr(signal, "SIGXFSZ"),
                                 reason="a full disk is simulated with setrlimit(RLIMIT_FSIZE): POSIX only")


def full_disk():
    """In the child: writing past FSIZE_LIMIT bytes fails with EFBIG ("File too large") as a full disk fails with
    ENOSPC (SIGXFSZ, which would kill the process instead, is ignored)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (FSIZE_LIMIT, resource.RLIM_INFINITY))


@pytest.fixture(scope="module")
def housing_repro(mirror, tmp_path_factory):
    """A small-epoch project after `dvc repro` of every writing stage of housing: (project, the repro's output)."""
    project = new_project(tmp_path_factory.mktemp("disk") / "project")
    proc = run("dvc repro " + " ".join(f"{s}@housing" for s in WRITERS), project,
               env={"DATASETS_MIRROR": str(mirror)})
    return project, proc.stdout + proc.stderr


def stage_files(project, lock, stage):
    """The files a stage's outputs hold now (outputs as dvc.lock lists them: files or folders)."""
    files = []
    for out in lock["stages"][stage]["outs"]:
        path = project / out["path"]
        files += sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return files


@pytest.mark.slow
@NEEDS_FSIZE
def test_a_full_disk_loses_nothing(housing_repro):
    project, _ = housing_repro
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("PYTHONPATH", None)
    stages = [f"{s}@housing" for s in WRITERS]
    for stage in stages:
        files = stage_files(project, lock, stage)
        before = {p: p.read_bytes() for p in files}
        folders = {d: sorted(os.listdir(d)) for p in files for d in (p.parent, p.parent.parent)}   # (model dir)
        proc = subprocess.run(lock["stages"][stage]["cmd"], shell=True, cwd=project, env=env, text=True,
                              capture_output=True, preexec_fn=full_disk)
        assert proc.returncode == 1, (stage, proc.stderr)
        [line] = without_load_notice(proc.stderr).splitlines()               # one line, no traceback
        written = re.fullmatch(rf"{stage}: (\S+): File too large", line)
        assert written and project / written.group(1) in files, line         # names one of the stage's outputs
        assert {p: p.read_bytes() for p in files} == before                  # the previous outputs, byte for byte
        assert {d: sorted(os.listdir(d)) for d in folders} == folders        # no temporary file left beside them
    run(["dvc", "repro", "-f", "-s", *stages], project)                     # without the limit: the same bytes
    assert yaml.safe_load((project / "dvc.lock").read_text()) == lock
    assert run(["dvc", "status", "--json", *stages], project).stdout.strip() in ("{}", "")


@pytest.mark.slow
@NEEDS_FSIZE
def test_a_full_disk_under_dvc_repro_then_repro_recovers(housing_repro, tmp_path):
    """DVC deletes a stage's outputs before running it: the stage fails with its one line, DVC keeps the lock,
    and the next `dvc repro` brings back the same bytes. (`python` on PATH applies the limit to the stage only.)"""
    project, _ = housing_repro
    lock = (project / "dvc.lock").read_text()
    files = stage_files(project, yaml.safe_load(lock), "train@housing")
    before = {p: p.read_bytes() for p in files}
    wrapper = tmp_path / "bin" / "python"
    wrapper.parent.mkdir()
    wrapper.write_text(f"#!{sys.executable}\nimport os, resource, signal, sys\n"
                       f"signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
                       f"resource.setrlimit(resource.RLIMIT_FSIZE, ({FSIZE_LIMIT}, resource.RLIM_INFINITY))\n"
                       f"os.execv({sys.executable!r}, [{sys.executable!r}, *sys.argv[1:]])\n")
    wrapper.chmod(0o755)
    path = os.pathsep.join([str(wrapper.parent), str(Path(sys.executable).parent), os.environ["PATH"]])
    proc = run(["dvc", "repro", "-f", "-s", "train@housing"], project, check=False, env={"PATH": path})
    assert proc.returncode != 0
    assert re.search(r"^train@housing: data/\S+: File too large$", proc.stderr + proc.stdout, re.M), proc.stderr
    assert (project / "dvc.lock").read_text() == lock
    run("dvc repro train@housing", project)
    assert (project / "dvc.lock").read_text() == lock
    assert {p: p.read_bytes() for p in files} == before


# --- quiet output --------------------------------------------------------------------------------------------

# TensorFlow's INFO lines at start-up (the CPU-instructions notice, cpu_feature_guard), hidden by
# TF_CPP_MIN_LOG_LEVEL=1, which chapter4/backend.py sets before importing TensorFlow. Only the load notice that no
# level hides (conftest.LOAD_NOTICE, on CPUs where oneDNN is on) may remain.
INFO_LINE = re.compile(r"^I\d{4} .*$|cpu_feature_guard", re.M)


@pytest.mark.slow
def test_tensorflow_start_up_does_not_reach_dvc_repro(housing_repro):
    _, output = housing_repro                   # (validate@housing and train@housing load TensorFlow)
    assert "Running stage 'train@housing'" in output and "train@housing: replicate 0: loss" in output
    assert not INFO_LINE.findall(without_load_notice(output))


IMPORT = "from chapter4 import backend; import os, sys; print(os.environ['TF_CPP_MIN_LOG_LEVEL'], file=sys.stderr)"


def test_a_stage_importing_tensorflow_prints_nothing_else_unless_asked(tmp_path):
    """Unset, the level becomes 1 (warnings and errors show) before TensorFlow loads, and nothing else is
    printed; a level the user sets is kept (0: TensorFlow's INFO lines show)."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    proc = subprocess.run([sys.executable, "-c", IMPORT], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert without_load_notice(proc.stderr) == "1\n", proc.stderr
    env["TF_CPP_MIN_LOG_LEVEL"] = "0"                                   # asked for: TensorFlow's INFO lines show
    proc = subprocess.run([sys.executable, "-c", IMPORT], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert re.search(r"^I\d{4} ", without_load_notice(proc.stderr), re.M), proc.stderr     # (x86-64: cpu_feature_guard)
    assert proc.stderr.endswith("0\n")
