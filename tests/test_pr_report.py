"""The pull-request report: the workflow's own script, run on a clone with two commits (the target branch, and a
pull request changing reuters.epochs), writes the comparison and the params diff as Markdown."""
import pytest
import yaml

from tests.conftest import ROOT, link_or_copy, run, set_params

SCRIPT = ROOT / ".github" / "pr-report.sh"


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
    datasets = tmp / "datasets"                  # the cached folder of the workflow, here already full
    datasets.mkdir()
    for f in mirror.iterdir():
        link_or_copy(f, datasets / f.name)
    return clone, datasets


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
    assert "could not compare" not in summary and "changed files" not in summary
    header, _, *body = table(summary, "## Results: origin/main vs this pull request")
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
