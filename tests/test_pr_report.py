"""The pull-request report: the workflow's own script, run on clones of a small project (the target branch, and
pull requests changing reuters.epochs, reproduced or not), says first when the committed dvc.lock is stale, and
writes the comparison with what its `dvc repro` produced and the params diff as Markdown."""
import importlib.util
import json
import subprocess
import sys

import pytest
import yaml

from tests.conftest import ROOT, link_or_copy, run, set_params

SCRIPT = ROOT / ".github" / "pr-report.sh"
_spec = importlib.util.spec_from_file_location("stale", ROOT / ".github" / "stale.py")
stale = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(stale)


@pytest.fixture(scope="module")
def pull_request(pipeline, mirror, tmp_path_factory):
    """A clone of the pipeline project (origin/main: its committed run) on a branch whose commit sets
    reuters.epochs to 2 and holds that run's results, as a contributor would push it."""
    tmp = tmp_path_factory.mktemp("pr")
    clone = tmp / "clone"
    run(f"git clone -q {pipeline} {clone}", tmp)
    run(f"dvc cache dir --local {pipeline / '.dvc' / 'cache'} && dvc checkout -q && git switch -q -c pr", clone)
    set_params(clone, **{"reuters.epochs": 2})
    run("dvc repro && git commit -qam 'reuters: 2 epochs'", clone, env={"DATASETS_MIRROR": str(mirror)})
    return clone, datasets_folder(mirror, tmp)


@pytest.fixture(scope="module")
def stale_pull_request(pipeline, mirror, tmp_path_factory):
    """As `pull_request`, but the contributor committed params.yaml alone: dvc.lock and the results are the target
    branch's (1 Reuters epoch) while params.yaml says 2."""
    tmp = tmp_path_factory.mktemp("stale")
    clone = tmp / "clone"
    run(f"git clone -q {pipeline} {clone}", tmp)
    run(f"dvc cache dir --local {pipeline / '.dvc' / 'cache'} && dvc checkout -q && git switch -q -c pr", clone)
    set_params(clone, **{"reuters.epochs": 2})
    run("git commit -qam 'reuters: 2 epochs, not reproduced'", clone)
    return clone, datasets_folder(mirror, tmp)


def datasets_folder(mirror, tmp):
    """The workflow's cached folder of dataset files, here already full."""
    datasets = tmp / "datasets"
    datasets.mkdir()
    for f in mirror.iterdir():
        link_or_copy(f, datasets / f.name)
    return datasets


def report(pull_request, base, tmp_path):
    clone, datasets = pull_request
    summary = tmp_path / "summary.md"
    proc = run(["bash", str(SCRIPT), base], clone, check=False,
               env={"GITHUB_STEP_SUMMARY": str(summary), "DATASETS_MIRROR": str(datasets)})
    return proc, summary.read_text()


@pytest.fixture(scope="module")
def pr_report(pull_request, tmp_path_factory):
    return report(pull_request, "origin/main", tmp_path_factory.mktemp("summary"))


def table(markdown, heading):
    """The rows (lists of cells) of the first Markdown table under `heading`."""
    section = markdown.split(heading, 1)[1].split("\n## ", 1)[0]
    return [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in section.splitlines() if line.startswith("|")]


def test_the_workflow_runs_this_script_after_installing_the_pins():
    steps = yaml.safe_load((ROOT / ".github" / "workflows" / "pr-report.yml").read_text())["jobs"]["report"]["steps"]
    runs = [s["run"] for s in steps if "run" in s]
    assert runs == ["pip install -r requirements.txt", '.github/pr-report.sh "$BASE"']
    checkout, python = steps[0], steps[1]
    assert checkout["with"]["fetch-depth"] == 0 and python["with"]["python-version"] == "3.11"
    assert steps[-1]["env"]["BASE"] == "origin/${{ github.base_ref }}"
    cache = next(s for s in steps if s.get("uses", "").startswith("actions/cache"))
    assert cache["with"]["path"] == steps[-1]["env"]["DATASETS_MIRROR"]


def test_params_diff_shows_the_changed_epochs(pr_report):
    proc, summary = pr_report
    rows = table(summary, "## Params: origin/main vs this pull request")
    assert rows[0] == ["Path", "Param", "origin/main", "workspace"], rows[0]
    changed = [r for r in rows[2:] if r[1] == "reuters.epochs"]
    assert [r[2:4] for r in changed] == [["1", "2"]], rows
    assert len(rows) == 3, "only reuters.epochs changed"


def test_results_are_compared_with_verdicts(pr_report):
    proc, summary = pr_report
    assert proc.returncode == 0, proc.stdout + proc.stderr + summary
    assert summary.startswith("## Results"), summary                # dvc.lock is up to date: nothing before
    assert "could not compare" not in summary and "Stale" not in summary
    header, _, *body = table(summary, "## Results: origin/main vs this pull request, reproduced here")
    col = {name: i for i, name in enumerate(header)}
    assert {r[col["task"]] for r in body} == {"imdb", "reuters", "housing"}, body
    verdicts = {(r[col["task"]], r[col["metric"]]): r[col["verdict"]] for r in body}
    # The pull request trains Reuters 2 epochs instead of 1 (conftest.SMALL): clearly more accurate, lower loss.
    assert verdicts[("reuters", "test.accuracy")] == "better", body
    assert verdicts[("reuters", "test.loss")] == "better", body
    # IMDB and housing are the same runs on both sides: the same values, no difference.
    same = {k: v for k, v in verdicts.items() if k[0] != "reuters"}
    assert same and all(v.startswith("no detectable difference") for v in same.values()), body
    assert summary.index("## Results") < summary.index("## Params")


def test_an_unknown_base_fails_and_says_so(pull_request, tmp_path):
    proc, summary = report(pull_request, "origin/no-such-branch", tmp_path)
    assert proc.returncode == 1
    assert "`dvc params diff origin/no-such-branch` failed" in summary


def test_a_stale_pull_request_fails_says_so_first_and_shows_the_reproduced_results(stale_pull_request, tmp_path):
    """params.yaml says 2 Reuters epochs, the committed results are 1 epoch's: the committed tables would show no
    difference at all; the report compares what `dvc repro` produced here, says first that dvc.lock is stale, and
    fails the job."""
    proc, summary = report(stale_pull_request, "origin/main", tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr + summary
    first = summary.splitlines()[0]
    assert first.startswith("## Stale: this pull request's dvc.lock"), summary
    findings = summary.split("\n## ", 1)[0]
    assert "param `reuters.epochs` (params.yaml) modified: train@reuters" in findings, findings
    assert "imdb" not in findings and "housing" not in findings, findings
    header, _, *body = table(summary, "## Results: origin/main vs this pull request, reproduced here")
    col = {name: i for i, name in enumerate(header)}
    verdicts = {(r[col["task"]], r[col["metric"]]): r[col["verdict"]] for r in body}
    assert verdicts[("reuters", "test.accuracy")] == "better", body          # 2 epochs, reproduced here
    assert all(v.startswith("no detectable difference") for k, v in verdicts.items() if k[0] != "reuters"), body
    changed = [r for r in table(summary, "## Params: origin/main")[2:] if r[1] == "reuters.epochs"]
    assert [r[2:4] for r in changed] == [["1", "2"]], summary
    assert summary.index("## Stale") < summary.index("## Results") < summary.index("## Params")


def test_no_params_changed_says_so(pull_request, tmp_path):
    """Against its own branch nothing changed: dvc prints a bare table header; the report says it in words."""
    proc, summary = report(pull_request, "pr", tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr + summary
    section = summary.split("## Params: pr vs this pull request", 1)[1]
    assert section.strip() == "No params changed.", summary
    header, _, *body = table(summary, "## Results: pr vs this pull request, reproduced here")
    assert body and all("no detectable difference" in " ".join(r) for r in body), body


# --- .github/stale.py: what in `dvc status --json` makes dvc.lock stale -------------------------------------

FRESH_CLONE = {   # `dvc status --json` in a fresh clone with no DVC cache (CI): nothing of it is stale
    "download@imdb": [{"changed outs": {"data/raw/imdb": "not in cache"}}],
    "encode@imdb": [{"changed deps": {"data/params.ok": "deleted", "data/raw/imdb": "deleted"}},
                    {"changed outs": {"data/encoded/imdb": "not in cache"}}],
    "evaluate@imdb": [{"changed deps": {"data/model/imdb": "deleted"}}],
    "sometimes": ["always changed"],
}


@pytest.mark.parametrize("entry, finding", [
    ({"changed deps": {"params.yaml": {"reuters.epochs": "modified"}}},
     "param `reuters.epochs` (params.yaml) modified"),
    ({"changed deps": {"params.yaml": "modified"}}, "`params.yaml` modified"),        # a whole-file dep
    ({"changed deps": {"stages/evaluate.py": "modified"}}, "`stages/evaluate.py` modified"),
    ({"changed deps": {"chapter4/new.py": "deleted"}}, "`chapter4/new.py` deleted"),
    ("changed command", "its command changed in dvc.yaml"),
    ({"changed outs": {"data/metrics/reuters_replicates.json": "modified"}},
     "output `data/metrics/reuters_replicates.json` is not the one dvc.lock records"),
])
def test_what_makes_dvc_lock_stale(entry, finding):
    assert stale.findings(FRESH_CLONE) == {}
    status = {**FRESH_CLONE, "evaluate@reuters": [entry], "evaluate@housing": [entry]}
    assert stale.findings(status) == {finding: ["evaluate@reuters", "evaluate@housing"]}


def stale_cli(text):
    return subprocess.run([sys.executable, str(ROOT / ".github" / "stale.py")], input=text, capture_output=True,
                          text=True)


def test_stale_cli_exit_status_and_lines():
    assert (stale_cli(json.dumps(FRESH_CLONE)).returncode, stale_cli("{}").stdout) == (0, "")
    proc = stale_cli(json.dumps({"train@reuters": [{"changed deps": {"params.yaml": {"reuters.epochs": "modified"}}}]}))
    assert (proc.returncode, proc.stdout) == (1, "- param `reuters.epochs` (params.yaml) modified: train@reuters\n")
    proc = stale_cli("ERROR: unexpected error")
    assert proc.returncode == 2 and proc.stdout == "" and len(proc.stderr.strip().splitlines()) == 1


def test_this_commit_is_not_stale_in_a_fresh_clone(tmp_path):
    """The real `dvc status --json` of a fresh clone of this commit (no DVC cache, no outputs but what git holds),
    as the workflow sees it: not stale (this repository's dvc.lock is reproduced before it is committed). Line
    endings as committed: DVC hashes a file's bytes."""
    sha = run("git rev-parse HEAD", ROOT).stdout.strip()
    dest = tmp_path / "clone"
    run(["git", "clone", "-q", "--no-checkout", "-c", "core.autocrlf=false", str(ROOT), str(dest)], tmp_path)
    run(["git", "checkout", "-q", sha], dest)
    status = json.loads(run("dvc status --json", dest).stdout)
    assert status, "a fresh clone has no outputs: dvc status lists them"
    assert stale.findings(status) == {}, status
