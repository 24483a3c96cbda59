"""The CI workflow (.github/workflows/ci.yml) cannot run here: it exists, parses, covers every supported system
with the oldest and newest supported Python, and installs with the README's own command on each OS."""
import re

import yaml

from tests.conftest import ROOT
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
    assert doc.get("on", doc.get(True)) == ["push", "pull_request"]          # (YAML 1.1 reads `on` as True)
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
