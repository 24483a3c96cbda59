"""Interrupted runs are harmless; the same inputs give the same bytes."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from tests.conftest import run


def lock_outs(project):
    """{out path: md5} of every stage in dvc.lock."""
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    return {o["path"]: o["md5"] for s in lock["stages"].values() for o in s.get("outs", [])}


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
