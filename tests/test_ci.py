"""The CI workflow (.github/workflows/ci.yml) cannot run here: it exists, parses, covers every supported system
with the oldest and newest supported Python, and installs with the README's own command on each OS. What a runner
lacks, the tests do without: a git identity (.ci/run hides this machine's)."""
import os
import re
import sys

import pytest
import yaml

from tests.conftest import GIT_IDENTITY, ROOT, run
from tests.test_python_versions import SUPPORTED

README = (ROOT / "README.md").read_text()
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"
SYSTEMS = {"ubuntu-latest", "ubuntu-24.04-arm", "macos-14", "windows-latest"}


def blocks(language):
    return [line for block in re.findall(rf"```{language}\n(.*?)```", README, re.S) for line in block.splitlines()]


def job():
    [(name, job)] = yaml.safe_load(WORKFLOW.read_text())["jobs"].items()
    return job


def install_steps():
    """{"bash" or "pwsh": the first line of that install step's script, the `if` that picks it}."""
    return {s["shell"]: (s["run"].splitlines()[0], s.get("if")) for s in job()["steps"]
            if s.get("name", "").startswith("Install")}


def test_the_workflow_parses_and_runs_on_every_system_and_the_oldest_and_newest_python():
    doc = yaml.safe_load(WORKFLOW.read_text())
    assert doc.get("on", doc.get(True)) == {"push": {"branches": ["main"]}, "pull_request": None}  # (YAML 1.1: True)
    matrix = job()["strategy"]["matrix"]
    assert set(matrix["os"]) == SYSTEMS and matrix["python"] == [SUPPORTED[0], SUPPORTED[-1]]
    assert job()["runs-on"] == "${{ matrix.os }}"


def test_it_installs_with_the_readmes_command_on_each_os():
    [unix] = [line for line in blocks("bash") if line.endswith("pip install -r requirements.txt && dvc repro")]
    [windows] = blocks("powershell")
    assert windows.endswith("; dvc repro") and "Activate.ps1" in windows
    steps = install_steps()
    assert steps["bash"] == (unix.removesuffix(" && dvc repro"), "runner.os != 'Windows'")
    assert steps["pwsh"] == (windows.removesuffix("; dvc repro"), "runner.os == 'Windows'")


def test_it_runs_the_tests_the_pipeline_and_a_prediction():
    runs = [s.get("run", "") for s in job()["steps"]]
    order = [next(i for i, r in enumerate(runs) if re.search(pattern, r, re.M))
             for pattern in (r"^python -m pytest$", r"^dvc repro$", r"\| python -m stages\.predict housing$")]
    assert order == sorted(order) and min(order) > max(i for i, r in enumerate(runs) if "pip install" in r)
    fetch = next(s for s in job()["steps"] if s.get("name") == "Fetch the datasets")
    compile(fetch["run"], "ci.yml: Fetch the datasets", "exec")                    # (shell: python)
    cache = next(s for s in job()["steps"] if "actions/cache" in s.get("uses", ""))
    assert cache["with"]["key"] == "keras-datasets-${{ hashFiles('chapter4/tasks.py') }}"


def no_git_config(tmp_path):
    """The environment of a machine with no git identity: an empty global config, no system config, a bare home
    (where libgit2 and dulwich look)."""
    (tmp_path / "home").mkdir()
    (tmp_path / "gitconfig").write_text("")
    return {"GIT_CONFIG_GLOBAL": str(tmp_path / "gitconfig"), "GIT_CONFIG_NOSYSTEM": "1",
            "HOME": str(tmp_path / "home"), "USERPROFILE": str(tmp_path / "home"), "XDG_CONFIG_HOME": ""}


def test_tests_commit_on_a_machine_without_a_git_identity(tmp_path):
    """`run` gives git an identity (conftest.GIT_IDENTITY): a commit in a fresh repo works with no config at all;
    without that identity the same commit fails, as on a runner."""
    env = no_git_config(tmp_path)
    repo = tmp_path / "repo"
    repo.mkdir()
    run("git init -q -b main && git commit -q --allow-empty -m one", repo, env=env)
    assert run("git log -1 --format=%an/%ce", repo, env=env).stdout.strip() == \
        f"{GIT_IDENTITY['GIT_AUTHOR_NAME']}/{GIT_IDENTITY['GIT_COMMITTER_EMAIL']}"
    assert run("git config user.name", repo, env=env, check=False).stdout == ""          # none configured
    unset = {name: "" for name in GIT_IDENTITY}                                           # "" = no identity
    proc = run("git commit -q --allow-empty -m two", repo, env={**env, **unset}, check=False)
    assert proc.returncode != 0 and "ident" in proc.stderr, proc.stderr


def test_ci_runs_the_suite_with_an_empty_global_git_config():
    """.ci/run points GIT_CONFIG_GLOBAL at an empty file, turns the system config off and gives an empty HOME (where
    DVC's libgit2 and dulwich look) before the README's test command, so a test that commits without an identity
    fails there, not only on a runner."""
    text = (ROOT / ".ci" / "run").read_text()
    test_line = next(i for i, line in enumerate(text.splitlines()) if line.startswith("python3 -m venv"))
    before = "\n".join(text.splitlines()[:test_line])
    assert re.search(r'^export HOME="\$bare/home" GIT_CONFIG_GLOBAL="\$bare/gitconfig" GIT_CONFIG_NOSYSTEM=1$',
                     before, re.M), before


@pytest.mark.skipif(os.name == "nt", reason=".ci/run is a bash script for Linux and macOS")
def test_ci_runs_preamble_leaves_git_without_an_identity(tmp_path):
    """.ci/run's lines before the test command, run for real: git has no user.name, even on a machine that has one,
    and libgit2 (pygit2, as DVC uses it) finds no global config either."""
    text = (ROOT / ".ci" / "run").read_text().splitlines()
    test_line = next(i for i, line in enumerate(text) if line.startswith("python3 -m venv"))
    check = 'git config user.name || echo "git: none"; "$PYTHON" -c "$LIBGIT2"'
    libgit2 = ("import pygit2\ntry:\n    config = pygit2.Config.get_global_config()\nexcept OSError:\n"
               "    print('libgit2: none')\nelse:\n"
               "    print('libgit2:', [e.name for e in config if e.name.startswith('user.')])")
    proc = run(["bash", "-c", "\n".join(text[:test_line] + [check])], tmp_path,
               env={"DATASETS_MIRROR": str(tmp_path), "PYTHON": sys.executable, "LIBGIT2": libgit2})
    assert proc.stdout.splitlines()[0] == "git: none", proc.stdout
    assert proc.stdout.splitlines()[1] in ("libgit2: none", "libgit2: []"), proc.stdout


@pytest.mark.slow
def test_dvc_queues_an_experiment_without_a_git_identity(tmp_path):
    """`dvc exp run --queue` from a workspace with changes stashes it with libgit2, which reads no GIT_CONFIG_GLOBAL
    but ~/.gitconfig: with `run`'s identity it queues on a machine with none; without, it fails as on a runner."""
    env = no_git_config(tmp_path)
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "params.yaml").write_text("x: 1\n")
    (repo / "dvc.yaml").write_text("stages:\n  s:\n    cmd: python -c \"print(1)\"\n    params: [x]\n")
    run("git init -q -b main && dvc init -q && git add -A && git commit -qm init", repo, env=env)
    (repo / "params.yaml").write_text("x: 2\n")                                     # a change in the workspace
    unset = {name: "" for name in GIT_IDENTITY}
    proc = run("dvc exp run --queue -S x=3", repo, env={**env, **unset}, check=False)
    assert proc.returncode != 0 and "must be configured" in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    run("dvc exp run --queue -S x=3", repo, env=env)
    assert "Queued" in run("dvc queue status", repo, env=env).stdout
