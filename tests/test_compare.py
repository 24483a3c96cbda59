"""stages.compare on small real git repos and a real `dvc exp`: verdicts, scipy's numbers, the three formats,
and one-line errors (never a traceback)."""
import json
import math
import os
import re
import signal
import statistics
import subprocess
import sys
import time

import pytest
from scipy import stats

from chapter4 import comparison
from stages import compare
from tests.conftest import ROOT, run

SEEDS = [42, 1042, 2042, 3042, 4042]
A = {"imdb": {"test.accuracy": [0.70, 0.71, 0.69, 0.705, 0.695], "test.loss": [0.50, 0.51, 0.49, 0.505, 0.495]},
     "reuters": {"test.accuracy": [0.78, 0.79, 0.785, 0.775, 0.795], "test.loss": [0.94, 0.95, 0.93, 0.945, 0.935]},
     "housing": {"test.mae": [2.50, 2.60, 2.40, 2.55, 2.45], "test.mse": [16.0, 17.0, 15.0, 16.5, 15.5],
                 "kfold.mean_mae": [2.40, 2.50, 2.45, 2.42, 2.48]}}
# B: clear shifts (0.1 against sds of ~0.01) in every direction, identical Reuters values, K-fold within noise.
B = {"imdb": {"test.accuracy": [v + 0.1 for v in A["imdb"]["test.accuracy"]],
              "test.loss": [v + 0.1 for v in A["imdb"]["test.loss"]]},
     "reuters": A["reuters"],
     "housing": {"test.mae": [v - 0.5 for v in A["housing"]["test.mae"]],
                 "test.mse": [v + 5 for v in A["housing"]["test.mse"]],
                 "kfold.mean_mae": [2.41, 2.49, 2.46, 2.43, 2.47]}}
EXPECTED = {("imdb", "test.accuracy"): "better", ("imdb", "test.loss"): "worse",
            ("reuters", "test.accuracy"): "no detectable difference (n=5 vs 5)",
            ("reuters", "test.loss"): "no detectable difference (n=5 vs 5)",
            ("housing", "test.mae"): "better", ("housing", "test.mse"): "worse",
            ("housing", "kfold.mean_mae"): "no detectable difference (n=5 vs 5)"}


def refuse(constant):
    raise ValueError(f"not strict JSON: {constant}")


def strict(text):
    return json.loads(text, parse_constant=refuse)


def write(repo, values, old=False):
    """data/metrics/<task>.json (means) and, unless `old`, <task>_replicates.json, as evaluate@<task> writes."""
    (repo / "data" / "metrics").mkdir(parents=True, exist_ok=True)
    for task, metrics in values.items():
        means = {k: statistics.fmean(v) for k, v in metrics.items()}
        (repo / "data" / "metrics" / f"{task}.json").write_text(json.dumps(means))
        if not old:
            doc = {"replicates": len(SEEDS), "seeds": SEEDS, **metrics}
            (repo / "data" / "metrics" / f"{task}_replicates.json").write_text(json.dumps(doc, indent=2))


def commit(repo, message):
    run(f"git add -A && git commit -qm '{message}'", repo)
    return run("git rev-parse HEAD", repo).stdout.strip()


@pytest.fixture
def repo(tmp_path):
    """main (tagged v1) holds A; branch `shift` holds B; the workspace is main's checkout."""
    run("git init -q -b main && git config user.email t@example.com && git config user.name test", tmp_path)
    write(tmp_path, A)
    commit(tmp_path, "A")
    run("git tag v1 && git switch -qc shift", tmp_path)
    write(tmp_path, B)
    commit(tmp_path, "B")
    run("git switch -q main", tmp_path)
    return tmp_path


def main(repo, *args, capsys, cwd=None):
    """stages.compare in this process (fast): (exit status, stdout, stderr)."""
    old = os.getcwd()
    os.chdir(cwd or repo)
    try:
        status = compare.main(list(args))
    finally:
        os.chdir(old)
    out, err = capsys.readouterr()
    return status, out, err


def cli(repo, *args, **kw):
    """`python -m stages.compare` as a user runs it, in `repo`."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "stages.compare", *args], cwd=repo, env=env,
                          capture_output=True, text=True, **kw)


def by_key(doc):
    return {(r["task"], r["metric"]): r for r in doc["rows"]}


def test_clear_shifts_get_each_metrics_direction(repo, capsys):
    status, out, err = main(repo, "main", "shift", "--json", capsys=capsys)
    assert (status, err) == (0, "")
    rows = by_key(strict(out))
    assert {k: r["verdict"] for k, r in rows.items()} == EXPECTED
    for key, row in rows.items():
        assert (row["n_a"], row["n_b"]) == (5, 5)
        if EXPECTED[key] in ("better", "worse"):
            assert row["p"] < 0.05 and row["ci95_low"] <= row["diff"] <= row["ci95_high"]
            assert 0 not in (row["ci95_low"], row["ci95_high"]) and (row["ci95_low"] > 0) == (row["diff"] > 0)
    assert rows[("reuters", "test.accuracy")]["p"] == 1.0          # identical values on both sides
    assert rows[("housing", "kfold.mean_mae")]["p"] > 0.05


def test_numbers_are_scipys_welch_test_and_interval(repo, capsys):
    status, out, _ = main(repo, "v1", "shift", "--json", capsys=capsys)
    doc = strict(out)
    assert "Welch's t-test" in doc["test"] and "Welch-Satterthwaite" in doc["interval"] and doc["alpha"] == 0.05
    for (task, metric), row in by_key(doc).items():
        a, b = A[task][metric], B[task][metric]
        result = stats.ttest_ind(b, a, equal_var=False)
        ci = result.confidence_interval(0.95)
        assert row["p"] == pytest.approx(result.pvalue, rel=1e-12, abs=1e-300)
        assert (row["ci95_low"], row["ci95_high"]) == pytest.approx((ci.low, ci.high), rel=1e-12)
        assert (row["mean_a"], row["mean_b"]) == pytest.approx((statistics.fmean(a), statistics.fmean(b)))
        assert (row["sd_a"], row["sd_b"]) == pytest.approx((statistics.stdev(a), statistics.stdev(b)))
        assert row["diff"] == pytest.approx(statistics.fmean(b) - statistics.fmean(a))


@pytest.mark.parametrize("a, b, verdict", [
    ([0.8] * 5, [0.8] * 5, "no detectable difference (n=5 vs 5, identical values)"),
    ([0.7] * 5, [0.8] * 5, "no test possible (n=5 vs 5, zero variance on both sides)"),
    ([0.7], [0.8, 0.81, 0.79], "no test possible (n=1 vs 3: needs 2 per side)"),
    ([], [0.8, 0.81], "no values in A"),
    ([0.7, 0.71], [], "no values in B"),
    ([0.7, float("nan"), 0.71], [0.8, 0.81], "no test possible (non-finite values in A)"),
    ([0.7, 0.71], [0.8, float("inf")], "no test possible (non-finite values in B)"),
])
def test_edge_cases_say_why_there_is_no_test(a, b, verdict):
    row = comparison.compare(a, b, +1)
    assert row["verdict"] == verdict
    assert row["p"] is None and row["ci95_low"] is None and row["ci95_high"] is None
    json.dumps(row, allow_nan=False)                                # never NaN or Infinity
    if a and b and all(map(math.isfinite, a + b)):
        assert row["diff"] == pytest.approx(statistics.fmean(b) - statistics.fmean(a))


@pytest.mark.filterwarnings("ignore:Precision loss:RuntimeWarning")
def test_one_constant_side_is_still_a_welch_test():
    a, b = [0.7] * 5, [0.80, 0.81, 0.79, 0.80, 0.805]
    row = comparison.compare(a, b, -1)                                 # lower is better: B is worse
    result = stats.ttest_ind(b, a, equal_var=False)
    assert row["verdict"] == "worse" and row["p"] == pytest.approx(result.pvalue)


def test_power_columns_are_the_test_as_run_at_holms_strictest_level():
    """Each row's detectable difference and replicates needed: chapter4/significance.py's power of Welch's test as run,
    at level 0.05 / m for the m tests of the table (not 0.05: Holm's first step is the strictest)."""
    from chapter4 import significance as ours
    a = {"imdb": {"test.accuracy": [0.88, 0.885, 0.879, 0.89, 0.883], "test.loss": [0.29, 0.3, 0.28, 0.31, 0.295]},
         "housing": {"test.mae": [2.6, 2.5, 2.7, 2.65, 2.55]}}
    b = {"imdb": {"test.accuracy": [0.885, 0.889, 0.884, 0.893, 0.887], "test.loss": [0.3, 0.29, 0.3, 0.3, 0.31]},
         "housing": {"test.mae": [2.4, 2.9, 2.7, 2.5, 2.6, 2.8]}}
    table = comparison.rows(a, b)
    assert len(table) == 3
    for row in table:
        args = (row["sd_a"], row["n_a"], row["sd_b"], row["n_b"])
        assert row["detectable"] == ours.detectable(*args, 0.05 / 3)
        assert ours.power(row["detectable"], *args, 0.05 / 3) == pytest.approx(0.8, abs=1e-6)
        assert ours.detectable(*args, 0.05 / 3) > ours.detectable(*args, 0.05)
        assert row["replicates_needed"] == ours.replicates_needed(row["diff"], row["sd_a"], row["sd_b"], 0.05 / 3)


def test_direction_from_the_metric_name():
    assert [comparison.direction(m) for m in ("test.accuracy", "test.loss", "test.mae", "test.mse",
                                           "kfold.mean_mae", "test.ensemble_accuracy", "test.other")] \
        == [1, -1, -1, -1, -1, 1, 0]


def test_json_is_strict_even_for_edge_cases(repo, capsys):
    write(repo, {"imdb": {"test.accuracy": [0.7], "test.loss": [0.5] * 5},
                 "reuters": {"test.accuracy": [0.8] * 5, "test.loss": [0.9, float("nan"), 0.9, 0.9, 0.9]}})
    status, out, _ = main(repo, "--json", capsys=capsys)
    assert status == 0 and out.count("\n") == 1                     # one line
    rows = by_key(strict(out))
    assert rows[("imdb", "test.accuracy")]["verdict"] == "no test possible (n=5 vs 1: needs 2 per side)"
    assert rows[("imdb", "test.accuracy")]["sd_b"] is None
    assert rows[("reuters", "test.loss")]["mean_b"] is None
    assert rows[("imdb", "test.accuracy")]["p"] is None and rows[("reuters", "test.loss")]["p"] is None
    assert rows[("imdb", "test.loss")]["verdict"] == "no detectable difference (n=5 vs 5)"   # one side constant
    shift = rows[("reuters", "test.accuracy")]                                               # one side constant
    assert shift["p"] < 0.05 and shift["p_holm"] == pytest.approx(5 * shift["p"])   # smallest of 5 tests (Holm)
    assert shift["verdict"] == ("better" if shift["p_holm"] < 0.05 else "no detectable difference (n=5 vs 5)")


def test_markdown_is_one_table_row_per_task_and_metric(repo, capsys):
    status, out, _ = main(repo, "main", "shift", "--md", capsys=capsys)
    table = [line for line in out.splitlines() if line.startswith("|")]
    assert status == 0 and "Welch's t-test" in out
    assert table[0].split(" | ")[0] == "| task" and "B - A [95% CI]" in table[0]
    assert re.fullmatch(r"\|( --- \|){10}", table[1]) and "| Holm p | verdict | detectable (80% power) |" in table[0]
    assert len(table) == 2 + len(EXPECTED)
    assert all(line.count(" | ") == 9 and line.endswith(" |") for line in table[2:])
    assert [tuple(line.split(" | ")[:2]) for line in table[2:]] == [("| " + t, m) for t, m in EXPECTED]


def test_text_is_an_aligned_table(repo, capsys):
    status, out, _ = main(repo, "main", "shift", capsys=capsys)
    lines = out.splitlines()
    assert "A = main (" in lines[0] and "B = shift (" in lines[0] and "Welch's t-test" in lines[1]
    header = next(i for i, line in enumerate(lines) if line.startswith("task"))
    table = lines[header:]
    assert len(table) == 1 + len(EXPECTED)
    for column in ("metric", "A mean", "B mean", "B - A", "Holm p", "verdict", "detectable", "to detect"):
        at = table[0].index(column)
        assert all(line[at - 2:at] == "  " and line[at] != " " for line in table[1:]), column


def test_default_is_head_against_the_workspace(repo, capsys):
    write(repo, B)                                                  # not committed
    head = run("git rev-parse HEAD", repo).stdout.strip()
    _, out, _ = main(repo, "--json", capsys=capsys)
    doc = strict(out)
    assert doc["a"] == {"rev": "HEAD", "commit": head} and doc["b"] == {"rev": "workspace", "commit": None}
    assert {k: r["verdict"] for k, r in by_key(doc).items()} == EXPECTED
    _, explicit, _ = main(repo, "HEAD", "workspace", "--json", capsys=capsys)
    _, below, _ = main(repo, "--json", capsys=capsys, cwd=repo / "data")      # from a subfolder: same files
    assert explicit == out == below


def test_tags_and_commit_ids(repo, capsys):
    sha = run("git rev-parse shift", repo).stdout.strip()
    _, out, _ = main(repo, "v1", sha[:9], "--json", capsys=capsys)
    doc = strict(out)
    assert doc["b"]["commit"] == sha
    assert {k: r["verdict"] for k, r in by_key(doc).items()} == EXPECTED


def test_task_missing_on_one_side(repo, capsys):
    (repo / "data" / "metrics" / "housing.json").unlink()
    (repo / "data" / "metrics" / "housing_replicates.json").unlink()
    status, out, _ = main(repo, "--json", capsys=capsys)
    rows = by_key(strict(out))
    assert status == 0 and len(rows) == len(EXPECTED)
    assert all(r["verdict"] == "no values in B" and r["n_b"] == 0 and r["diff"] is None
               for (task, _), r in rows.items() if task == "housing")


def one_line_error(proc, status):
    assert proc.returncode == status, proc.stderr
    assert proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1 and proc.stderr.startswith("compare: "), proc.stderr
    return proc.stderr


def test_older_revision_without_replicates_one_line_exit_1(repo):
    run("git switch -qc old", repo)
    for f in (repo / "data" / "metrics").glob("*_replicates.json"):
        f.unlink()
    write(repo, {"reuters": A["reuters"]}, old=True)
    commit(repo, "before replicates")
    write(repo, A)
    commit(repo, "replicates")
    err = one_line_error(cli(repo, "HEAD~1", "HEAD"), 1)
    assert err == ("compare: HEAD~1 has no per-replicate values (data/metrics/imdb_replicates.json): "
                   "re-run it with this pipeline\n")
    one_line_error(cli(repo, "HEAD", "old~1", "--json"), 1)
    (repo / "data" / "metrics" / "reuters_replicates.json").unlink()
    assert "workspace has no per-replicate values (data/metrics/reuters_replicates.json): run dvc repro" \
        in one_line_error(cli(repo), 1)


def test_unknown_revision_or_no_git_one_line_exit_2(repo, tmp_path_factory):
    assert "unknown revision 'no-such-branch'" in one_line_error(cli(repo, "no-such-branch"), 2)
    assert "unknown revision 'HEAD~9'" in one_line_error(cli(repo, "main", "HEAD~9", "--md"), 2)
    plain = tmp_path_factory.mktemp("not-git")
    assert "not inside a git repository" in one_line_error(cli(plain, "main"), 2)


def test_unreadable_replicates_one_line_exit_1(repo):
    (repo / "data" / "metrics" / "imdb_replicates.json").write_text('{"test.accuracy": [0.8, ')
    assert "workspace: data/metrics/imdb_replicates.json is not valid JSON" in one_line_error(cli(repo), 1)
    (repo / "data" / "metrics" / "imdb_replicates.json").write_text('{"test.accuracy": [0.8, "x"]}')
    assert "test.accuracy must be a list of numbers" in one_line_error(cli(repo), 1)
    (repo / "data" / "metrics" / "imdb_replicates.json").unlink()
    (repo / "data" / "metrics" / "imdb_replicates.json").mkdir()
    assert "cannot read" in one_line_error(cli(repo), 1)


@pytest.mark.skipif(not hasattr(signal, "SIGPIPE"), reason="a closed pipe as SIGPIPE: POSIX only")
def test_cli_plain_run_closed_pipe_and_ctrl_c_are_quiet(repo):
    proc = cli(repo, "main", "shift")
    assert proc.returncode == 0 and proc.stderr == "" and "worse" in proc.stdout
    read, write_end = os.pipe()
    os.close(read)                                                  # `| head` that has already quit
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "stages.compare", "main", "shift"], cwd=repo, env=env,
                          stdout=write_end, stderr=subprocess.PIPE, text=True)
    os.close(write_end)
    assert proc.returncode == -signal.SIGPIPE and proc.stderr == ""
    for delay in (0.2, 0.6):                                        # while importing, resolving or computing
        child = subprocess.Popen([sys.executable, "-m", "stages.compare", "main", "shift"], cwd=repo, env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(delay)
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=30)
        assert "Traceback" not in err and child.returncode in (0, -signal.SIGINT), err


def test_no_tensorflow(repo):
    code = ("import sys; from stages import compare; "
            "assert compare.main(['main', 'shift', '--json']) == 0; "
            "assert not any(m.split('.')[0] in ('tensorflow', 'keras') for m in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=repo, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


GEN = """import json, yaml
shift = yaml.safe_load(open("params.yaml"))["shift"]
values = [v + shift for v in (0.78, 0.79, 0.785, 0.775, 0.795)]
json.dump({"replicates": 5, "seeds": [42, 1042, 2042, 3042, 4042], "test.accuracy": values},
          open("data/metrics/reuters_replicates.json", "w"))
"""
DVC_YAML = """stages:
  evaluate:
    cmd: python gen.py
    deps: [gen.py]
    params: [shift]
    outs:
      - data/metrics/reuters_replicates.json:
          cache: false
"""


@pytest.mark.slow
def test_experiment_name(tmp_path, capsys):
    """A real `dvc exp run -n`: its name resolves (DVC's own resolution) to the experiment's commit."""
    (tmp_path / "data" / "metrics").mkdir(parents=True)
    (tmp_path / "gen.py").write_text(GEN)
    (tmp_path / "dvc.yaml").write_text(DVC_YAML)
    (tmp_path / "params.yaml").write_text("shift: 0.0\n")
    run("git init -q -b main && git config user.email t@example.com && git config user.name test && dvc init -q"
        " && dvc repro -q && git add -A && git commit -qm base", tmp_path)
    run("dvc exp run -q -n fewer-epochs -S shift=-0.1", tmp_path)
    run("git checkout -- params.yaml data/metrics/reuters_replicates.json", tmp_path)   # the workspace is A again
    # The experiment's own ref, by its name: DVC keeps others beside it (refs/exps/exec/EXEC_HEAD, the baseline),
    # and which of them sorts first depends on the commits' hashes.
    refs = run("git for-each-ref --format='%(refname) %(objectname)' refs/exps", tmp_path).stdout.splitlines()
    [commit] = [sha for name, sha in map(str.split, refs) if name.rsplit("/", 1)[-1] == "fewer-epochs"]
    status, out, _ = main(tmp_path, "main", "fewer-epochs", "--json", capsys=capsys)
    doc = strict(out)
    assert status == 0 and doc["b"] == {"rev": "fewer-epochs", "commit": commit}
    (row,) = doc["rows"]
    assert row["verdict"] == "worse" and row["diff"] == pytest.approx(-0.1) and row["p"] < 0.05
    _, out, _ = main(tmp_path, "fewer-epochs", "workspace", "--json", capsys=capsys)
    assert strict(out)["rows"][0]["verdict"] == "better"
