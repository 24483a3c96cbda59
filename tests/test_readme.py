"""The README cannot rot: the commands it shows exist, its results table is the committed metrics, and its
install and test commands are the ones CI runs."""
import contextlib
import importlib.util
import io
import json
import re
import shlex
from pathlib import Path

import pytest
import yaml


ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
NUMBER = r"\d+(?:\.\d+)?"

# Results table row -> the metric its "this pipeline" cell prints: (task, section, key).
ROWS = {
    "IMDB test accuracy": ("imdb", "test", "accuracy"),
    "IMDB test accuracy, runs' predictions averaged": ("imdb", "test", "ensemble_accuracy"),
    "IMDB best holdout epoch": ("imdb", "validate", "best_epoch"),
    "Reuters test accuracy": ("reuters", "test", "accuracy"),
    "Reuters test accuracy, runs' predictions averaged": ("reuters", "test", "ensemble_accuracy"),
    "Reuters random baseline": ("reuters", "test", "random_baseline"),
    "Reuters best holdout epoch": ("reuters", "validate", "best_epoch"),
    "Housing K-fold mean MAE (100 epochs)": ("housing", "kfold", "mean_mae"),
    "Housing test MAE": ("housing", "test", "mae"),
    "Housing test MAE, runs' predictions averaged": ("housing", "test", "ensemble_mae"),
}


# --- the commands the README shows ---------------------------------------------------------------------

def code_blocks(text):
    """The bash code blocks' lines and every inline `code` span of the prose."""
    lines = [line for block in re.findall(r"```bash\n(.*?)```", text, re.S) for line in block.splitlines()]
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    return lines + re.findall(r"`([^`\n]+)`", prose)


def commands(text):
    """Every simple command (split at &&, |, ;) of the README's code, comments dropped, as argv lists."""
    out = []
    for line in code_blocks(text):
        try:
            words = shlex.split(line, comments=True)
        except ValueError:                       # an inline span that is not a command (e.g. a lone quote)
            continue
        command = []
        for word in words + ["&&"]:
            if word in ("&&", "|", ";", "||"):
                if command:
                    out.append(command)
                command = []
            else:
                command.append(word)
    return out


def dvc_commands(text):
    return sorted({tuple(c[1:]) for c in commands(text) if c[0] == "dvc" and len(c) > 1})


def stage_modules(text):
    return sorted({c[2] for c in commands(text) if c[:2] == ["python", "-m"] and c[2].startswith("stages.")})


def dvc_parses(argv):
    """None when DVC's own CLI parser accepts `dvc argv...` as a command, else its error output."""
    from dvc.cli.parser import get_main_parser
    err = io.StringIO()
    try:
        with contextlib.redirect_stdout(err), contextlib.redirect_stderr(err):
            args = get_main_parser().parse_args(list(argv))
    except (Exception, SystemExit):
        return err.getvalue()[-500:] or "refused"
    return None if hasattr(args, "func") else "no command"


def module_exists(name):
    return (ROOT / (name.replace(".", "/") + ".py")).is_file() and importlib.util.find_spec(name) is not None


def test_the_readme_shows_the_commands_it_is_checked_for():
    assert {("repro",), ("exp", "run", "-S", "reuters.epochs=11"), ("queue", "start", "-j", "2")} \
        <= set(dvc_commands(README))
    assert {"stages.predict", "stages.decode", "stages.compare", "stages.sweep"} <= set(stage_modules(README))


def test_the_checks_catch_what_does_not_exist():
    text = "```bash\ndvc exp frobnicate   # no such\ndvc metrics diff --nope\npython -m stages.nope x\n```"
    assert all(dvc_parses(argv) for argv in dvc_commands(text))
    assert [m for m in stage_modules(text) if module_exists(m)] == []
    assert dvc_parses(("exp", "run", "-S", "a=1")) is None and module_exists("stages.predict")


@pytest.mark.parametrize("argv", dvc_commands(README), ids=" ".join)
def test_every_dvc_command_parses(argv):
    problem = dvc_parses(argv)
    assert problem is None, f"`dvc {' '.join(argv)}` from the README: {problem}"


# stages.compare comes with the replicates work (issue 12): until that is merged this fails for it.
@pytest.mark.parametrize("module", stage_modules(README))
def test_every_stage_module_exists(module):
    assert module_exists(module), f"the README runs `python -m {module}`, which does not exist"


def repo_paths(text):
    """Files of this repository the README names (in links and `code`), other than pipeline outputs."""
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    words = [w for span in re.findall(r"`([^`\n]+)`", prose) for w in span.split()]
    words += re.findall(r"\]\(([^)#]+)\)", text)
    return sorted({w for w in words if re.fullmatch(r"(\.github|bench|docs|stages|tests|data/plots)/[\w./-]*\w", w)
                   and not re.search(r"/T[/._]", w)})


def test_the_readme_names_the_files_it_is_checked_for():
    assert {".github/pr-report.sh", ".github/workflows/sweep.yml", "docs/design.md", "docs/pipeline.md",
            "docs/findings.md", "bench/README.md"} <= set(repo_paths(README))


# bench/seeds.py comes with the replicates work (issue 12): until that is merged this fails for it.
@pytest.mark.parametrize("path", repo_paths(README))
def test_every_file_the_readme_names_exists(path):
    assert (ROOT / path).is_file(), f"the README names {path}, which is not in the repository"


# --- the results table -----------------------------------------------------------------------------------

def results_table():
    """{row label: "this pipeline" cell} of the table under "## Results", checking its header."""
    section = README.split("\n## Results\n", 1)[1].split("\n## ", 1)[0]
    first_table = section[section.index("\n|") + 1:].split("\n\n", 1)[0]       # (the fidelity table follows)
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in first_table.splitlines()]
    header, rule, *body = rows
    assert header[1].startswith("this pipeline: mean ± sd (95% CI)") and set("".join(rule)) <= set("-:")
    return {row[0]: row[1] for row in body}


def metrics(task):
    return json.loads((ROOT / "data" / "metrics" / f"{task}.json").read_text())


def replicates():
    return yaml.safe_load((ROOT / "params.yaml").read_text()).get("replicates", 1)


def same(printed, value):
    """`printed` is `value` rounded to as many decimals as it shows."""
    decimals = len(printed.split(".")[1]) if "." in printed else 0
    return printed == f"{value:.{decimals}f}"


def check_cell(cell, section, key):
    """Every number of a results cell is the committed metric (or its spread), rounded as printed."""
    if key not in section:
        assert not re.search(r"\d", cell), f"{cell!r}: no committed metric {key!r} to print"
        return
    if f"{key}_std" in section:
        m = re.fullmatch(rf"({NUMBER}) ± ({NUMBER}) \(({NUMBER})–({NUMBER})\), n=(\d+)(\D*)", cell)
        assert m, f"{cell!r} must read 'mean ± sd (low–high), n=R' now that {key}_std is committed"
        for printed, suffix in zip(m.groups()[:4], ("", "_std", "_ci95_low", "_ci95_high")):
            assert same(printed, section[key + suffix]), f"{cell!r}: {printed} is not {key}{suffix} = " \
                                                         f"{section[key + suffix]}"
        assert int(m.group(5)) == replicates(), f"{cell!r}: n is not replicates = {replicates()}"
    else:
        m = re.fullmatch(rf"({NUMBER})(\D*)", cell)
        assert m, f"{cell!r} must be one number (no spread is committed for {key})"
        assert same(m.group(1), section[key]), f"{cell!r}: {m.group(1)} is not {key} = {section[key]}"


def test_results_table_rows_are_the_known_metrics():
    assert list(results_table()) == list(ROWS)


@pytest.mark.parametrize("label", ROWS)
def test_results_table_equals_the_committed_metrics(label):
    task, section, key = ROWS[label]
    check_cell(results_table()[label], metrics(task).get(section, {}), key)


def test_results_table_kfold_epoch_is_the_committed_one():
    label = next(row for row in ROWS if ROWS[row][2] == "mean_mae")
    assert int(re.search(r"\((\d+) epochs\)", label).group(1)) == metrics("housing")["kfold"]["epoch"]


@pytest.mark.parametrize("cell, section, ok", [
    ("0.877 (one run)", {"accuracy": 0.8774}, True),
    ("0.878 (one run)", {"accuracy": 0.8774}, False),                  # a number that differs
    ("0.88", {"accuracy": 0.8774}, True),                              # rounded as printed
    ("to come", {}, True),
    ("0.877", {}, False),                                              # a number with no metric behind it
    ("0.877 (one run)", {"accuracy": 0.8774, "accuracy_std": 0.005, "accuracy_ci95_low": 0.871,
                         "accuracy_ci95_high": 0.884}, False),         # spread committed, not printed
    ("0.877 ± 0.005 (0.871–0.884), n=1", {"accuracy": 0.8774, "accuracy_std": 0.005, "accuracy_ci95_low": 0.871,
                                          "accuracy_ci95_high": 0.884}, True),
    ("0.877 ± 0.006 (0.871–0.884), n=1", {"accuracy": 0.8774, "accuracy_std": 0.005, "accuracy_ci95_low": 0.871,
                                          "accuracy_ci95_high": 0.884}, False),
    ("0.877 ± 0.005 (0.871–0.884), n=5", {"accuracy": 0.8774, "accuracy_std": 0.005, "accuracy_ci95_low": 0.871,
                                          "accuracy_ci95_high": 0.884}, False),   # n is not `replicates`
])
def test_the_table_check_fails_when_a_number_differs(cell, section, ok, monkeypatch):
    monkeypatch.setitem(globals(), "replicates", lambda: 1)
    if ok:
        check_cell(cell, section, "accuracy")
    else:
        with pytest.raises(AssertionError):
            check_cell(cell, section, "accuracy")


# --- install and test commands ------------------------------------------------------------------------------

def readme_commands():
    return [line for block in re.findall(r"```bash\n(.*?)```", README, re.S) for line in block.splitlines()
            if line.startswith("python3 -m venv")]


def test_ci_runs_the_readmes_test_command():
    install_repro, install_test = readme_commands()
    assert install_repro.endswith("pip install -r requirements.txt && dvc repro")
    assert install_test.endswith("pip install -r requirements.txt && python -m pytest")
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line.startswith("python3 -m venv")]
    assert [line.replace("pip install -q ", "pip install ") for line in ci] == [install_test]


def test_readme_is_short():
    assert len(README.splitlines()) <= 150


# --- the fidelity study (bench/seeds.py) -----------------------------------------------------------------

def fidelity_table(text):
    """The Markdown table that follows "**Is the pipeline the book's code?**" in `text`."""
    part = text.split("**Is the pipeline the book's code?**", 1)[1]
    return re.search(r"(?m)^(\|.*\|\n)+", part).group(0).rstrip("\n")


def seeds_table():
    from bench import seeds
    return seeds.table(seeds.summary(seeds.recorded()))


def test_the_fidelity_table_is_every_recorded_study_pooled():
    """README's fidelity table is what `bench/seeds.py --summary --md` makes of bench/seeds*.json: one row per
    metric, every recorded run pooled, random effects where Cochran's Q says the runs disagree."""
    assert fidelity_table(README) == seeds_table()


def test_the_fidelity_check_fails_when_a_number_differs():
    table = seeds_table()
    for old, new in (("p = 0.0015", "p = 0.0016"), ("random effects", "fixed effect"), ("4: 8 + 8", "4: 8 + 9")):
        assert old in table
        edited = README.replace(table, table.replace(old, new, 1))
        assert fidelity_table(edited) != table


def test_the_fidelity_table_reads_the_studies_as_the_statistics_say():
    """Against the JSON directly: each metric's runs and seeds, Q's p deciding fixed or random effects, and
    the TOST verdict from its p at the stated margins."""
    from bench import fidelity, seeds
    summary = seeds.summary(seeds.recorded())
    for key, pool in summary["pooled"].items():
        runs = [(name, d) for name, d in seeds.recorded() if key.split("/")[0] in d["pipeline"]]
        assert pool["seeds"] == [len(d["seeds"]) for _, d in runs]
        assert pool["read"]["estimate"] == ("one run (Welch)" if len(runs) == 1 else
                                            "random effects" if pool["p"] < 0.05 else "fixed effect")
        margin = {"test.accuracy": 0.01}.get(key.split("/")[1], 0.15)
        assert pool["read"]["verdict"].startswith("equivalent" if pool["read"]["tost_p"] < 0.05 else "not shown")
        assert f"±{margin:g}" in pool["read"]["verdict"]
        if len(runs) == 1:
            name, d = runs[0]
            task, metric = key.split("/")
            t = fidelity.tost(d["book"][task][metric], d["pipeline"][task][metric], margin)
            assert pool["read"]["tost_p"] == t["p"]
    reuters = summary["pooled"]["reuters/test.accuracy"]
    assert reuters["p"] < 0.05 and reuters["random"]["tau2"] > 0       # the four Reuters runs disagree


def test_the_detectable_differences_are_bench_calibration_json():
    """Compare's section gives the detectable difference at n = 5 for the long-run sds of the A/A study
    (bench/calibration.json, the power of Welch's test as compare runs it), rounded as printed."""
    detectable = {k: m["detectable_at_80_percent_power"]["5"] for k, m in
                  json.loads((ROOT / "bench" / "calibration.json").read_text())["metrics"].items()}
    section = README.split("\n## Compare branches and experiments\n", 1)[1].split("\n## ", 1)[0]
    sentence = re.search(r"\(n = 5: (\S+)\s+IMDB, (\S+) Reuters accuracy, (\S+) housing MAE\)", section)
    printed = dict(zip(("imdb/test.accuracy", "reuters/test.accuracy", "housing/test.mae"), sentence.groups()))
    for key, value in printed.items():
        assert value == f"{detectable[key]:.2g}", (key, value, detectable[key])


def test_the_variations_table_is_bench_variations_json():
    """Every row of docs/findings.md's table of the book's suggestions prints bench/variations.json's numbers
    (mean and CI, difference and CI, p, Holm's adjusted p, the verdict from it), rounded as printed."""
    rows = {f"{r['task']}: {r['variation']}": r for r in json.loads((ROOT / "bench" / "variations.json")
                                                                     .read_text())["rows"]
            if r["metric"] in ("test.accuracy", "test.mae")}          # (housing's K-fold rows: bench/README)
    section = (ROOT / "docs" / "findings.md").read_text()
    table = [[c.strip() for c in line.strip("|").split("|")] for line in section.splitlines()
             if line.startswith("|")][2:]
    assert {label for label, *_ in table} == set(rows)
    for label, value, diff, p, holm, verdict in table:
        row = rows[label]
        printed = [n.replace("−", "-").lstrip("+") for n in re.findall(r"[+−-]?\d+\.\d+", value + " " + diff)]
        expected = [row["mean"], *row["ci95"], row["diff"], *row["diff_ci95"]]
        assert len(printed) == 6 and all(same(a, b) for a, b in zip(printed, expected)), (label, printed)
        assert row["verdict"].startswith(verdict) and (same(p, row["p"]) or float(p) == float(f"{row['p']:.2g}"))
        assert float(holm) == float(f"{row['p_holm']:.2g}") and (verdict == "no detectable difference") == \
            (row["p_holm"] >= 0.05)
