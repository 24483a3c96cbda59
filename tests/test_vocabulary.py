"""bench/vocabulary.py turns a real (small) queued sweep into bench/vocabulary.json's document and the figure;
num_words is accepted up to the whole vocabulary and refused one past it, in one line."""
import json
import sys

import pytest

from chapter4 import stats, tasks
from tests.conftest import ROOT, new_project, run, set_params

sys.path.insert(0, str(ROOT / "bench"))

import sweep  # noqa: E402
import vocabulary  # noqa: E402

# Two sizes (the smallest of the sweep and the whole Reuters vocabulary), 2 replicates, 2 epochs.
SMALL = {"replicates": 2, "reuters.holdout_epochs": 2, "reuters.epochs": 2}
SIZES = {"reuters": [1000, tasks.TASKS["reuters"].vocabulary]}


def exp_revs(project):
    """{experiment name: commit}, read here from `dvc exp show --json` on its own."""
    revs = {}
    for commit in json.loads(run("dvc exp show --json", project).stdout):
        for group in commit.get("experiments") or []:
            for exp in group["revs"]:
                revs[exp["name"]] = exp["data"]["rev"]
    return revs


@pytest.mark.slow
def test_a_small_real_sweep_becomes_the_json_and_the_figure(mirror, tmp_path):
    project = new_project(tmp_path / "project", SMALL)
    env = {**sweep.stage_env(project), "DATASETS_MIRROR": str(mirror)}
    seconds, statuses = vocabulary.run_sweep(project, SIZES, env)
    assert statuses == {"reuters-words-1000": "Success", "reuters-words-30983": "Success"}, statuses
    out, png = tmp_path / "vocabulary.json", tmp_path / "figures" / "vocabulary.png"
    doc = vocabulary.report(project, SIZES, seconds, statuses, out, png, book_limit_mb=200)
    assert json.loads(out.read_text()) == doc

    revs = exp_revs(project)
    entries = doc["tasks"]["reuters"]
    assert [e["num_words"] for e in entries] == SIZES["reuters"]
    for e in entries:
        stored = json.loads(run(f"git show {revs[e['experiment']]}:data/metrics/reuters_replicates.json",
                                project).stdout)
        assert e["rev"] == revs[e["experiment"]] and e["seeds"] == stats.seeds(42, 2) == stored["seeds"]
        for metric in ("test.accuracy", "test.loss"):
            assert e["values"][metric] == stored[metric] and len(stored[metric]) == 2
            summary = stats.summary(metric, stored[metric])
            assert {k: v for k, v in e["summary"].items() if k.startswith(metric + "_") or k == metric} == summary
        cost = e["cost"]
        assert set(cost["stages"]) == {"params"} | {f"{s}@reuters" for s in (
            "download", "encode", "split", "validate", "train", "evaluate", "predict", "plot")}, cost["stages"]
        assert all(s["wall_s"] > 0 and s["peak_rss_mb"] > 10 for s in cost["stages"].values())
        assert cost["peak_rss_mb"] == max(s["peak_rss_mb"] for s in cost["stages"].values())
        assert cost["stages_wall_s"] == pytest.approx(sum(s["wall_s"] for s in cost["stages"].values()), abs=0.02)
        assert e["book_dense"]["computed_mb"] == round(11228 * e["num_words"] * 8 / 2**20, 1)
    # the book's rows measured where they fit under the limit (1000 words: 86 MB), computed beyond it
    measured = entries[0]["book_dense"]["measured"]
    assert measured["rows_mb"] == entries[0]["book_dense"]["computed_mb"]
    assert measured["peak_rss_mb"] > measured["before_mb"]
    assert "measured" not in entries[1]["book_dense"]
    assert doc["queue_wall_s"] == seconds and doc["targets"]["sweep_s"] == seconds
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


@pytest.mark.parametrize("task", ["imdb", "reuters"])
def test_num_words_is_accepted_up_to_the_whole_vocabulary_and_refused_past_it(task, tmp_path):
    project = new_project(tmp_path / "project")
    bound = tasks.TASKS[task].vocabulary
    set_params(project, **{f"{task}.num_words": bound})
    assert run("python -m stages.params", project).stderr == ""
    set_params(project, **{f"{task}.num_words": bound + 1})
    proc = run("python -m stages.params", project, check=False)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.splitlines() == [f"params.yaml: {task}.num_words must be an integer >= 4 and <= {bound}, "
                                        f"got {bound + 1}"]
