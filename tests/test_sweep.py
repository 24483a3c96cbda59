"""stages.sweep: the plan is DVC's own queue expansion, checked point by point; bad input is one line and nothing
pushed; sweep.yml is safe and clean; and the workflow played here: a bare origin, a local DVC remote, two runner
clones in parallel running sweep.yml's own run step, a runner killed mid-point, a collector's report."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from chapter4 import sweep
from tests.conftest import ROOT, new_project, run

WORKFLOW = ROOT / ".github" / "workflows" / "sweep.yml"
IDENTITY = {"GIT_AUTHOR_NAME": "runner", "GIT_AUTHOR_EMAIL": "runner@example.com",
            "GIT_COMMITTER_NAME": "runner", "GIT_COMMITTER_EMAIL": "runner@example.com"}


def sweep_cli(args, cwd=ROOT, stdin=None, env=None):
    full = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "GITHUB_STEP_SUMMARY")}
    full.update({"DVC_NO_ANALYTICS": "1", **(env or {})})
    if not (Path(cwd) / "stages").is_dir():          # a folder that is no project: the code from here
        full["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "stages.sweep", *args], cwd=cwd, input=stdin, env=full,
                          capture_output=True, text=True)


def plan_of(*overrides):
    proc = sweep_cli(["plan", *[a for o in overrides for a in ("-S", o)]])
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def one_line_error(proc, *words):
    assert proc.returncode == 1 and proc.stdout == "", (proc.returncode, proc.stdout, proc.stderr)
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    for word in words:
        assert word in proc.stderr, (word, proc.stderr)


# --- plan -------------------------------------------------------------------------------------------------------

def test_the_issues_grid_is_four_points_as_a_matrix_with_stable_names():
    doc = plan_of("reuters.epochs=2,3", "reuters.units=[32,32],[64,64]")
    points = doc["include"]
    assert [p["index"] for p in points] == [0, 1, 2, 3]
    assert sorted(map(tuple, (p["set"] for p in points))) == [
        ("reuters.epochs=2", "reuters.units=[32,32]"), ("reuters.epochs=2", "reuters.units=[64,64]"),
        ("reuters.epochs=3", "reuters.units=[32,32]"), ("reuters.epochs=3", "reuters.units=[64,64]")]
    assert len({p["name"] for p in points}) == 4 and all(p["name"].startswith("sweep-") for p in points)
    assert plan_of("reuters.epochs=2,3", "reuters.units=[32,32],[64,64]") == doc          # same grid, same names
    # the same point in another grid keeps its name: re-running it replaces its experiment
    [alone] = plan_of("reuters.epochs=3", "reuters.units=[64,64]")["include"]
    assert alone["name"] == {tuple(p["set"]): p["name"] for p in points}[tuple(alone["set"])]


@pytest.mark.slow
def test_points_are_the_parameter_sets_dvcs_queue_creates(tmp_path):
    overrides = ["housing.epochs=range(1,3)", "reuters.units=[32,32],[64,64]", "imdb.activation=choice(relu,tanh)",
                 "seed=7"]
    project = new_project(tmp_path / "project")
    run("dvc exp run --queue " + " ".join(f"-S '{o}'" for o in overrides), project)
    queued = [e["data"]["params"]["params.yaml"]["data"] for c in json.loads(run("dvc exp show --json", project).stdout)
              for g in c.get("experiments") or [] for e in g["revs"]]
    ours = [yaml.safe_load(sweep.point_params(sets, project / "params.yaml")) for sets in sweep.expand(overrides)]
    assert len(ours) == len(queued) == 8
    canonical = lambda docs: sorted(json.dumps(d, sort_keys=True) for d in docs)
    assert canonical(ours) == canonical(queued)
    assert len(set(canonical(ours))) == 8


@pytest.mark.parametrize("overrides, words", [
    (["reuters.epochs=2,3", "reuters.epoch=4"], ["reuters.epoch is not a known key", "reuters.epochs?", "point 0"]),
    (["reuters.epochs=2,0"], ["point 1", "reuters.epochs must be an integer >= 1, got 0"]),
    (["housing.activation=relu,nope"], ["point 1", "housing.activation must be one of"]),
    (["+reuters.epoch=2"], ["reuters.epoch is not a known key"]),
    (["reuters.epochs=range(1,1)"], ["empty grid"]),
    ([], ["nothing to sweep"]),
    (["reuters.epochs=[2"], ["cannot parse"]),
])
def test_a_bad_point_anywhere_plans_nothing(overrides, words):
    one_line_error(sweep_cli(["plan", *[a for o in overrides for a in ("-S", o)]]), *words)


def test_a_bad_prefix_plans_nothing():
    one_line_error(sweep_cli(["plan", "-S", "seed=1", "--name", "a b"]), "--name")


# --- run and report: bad input ----------------------------------------------------------------------------------

@pytest.mark.parametrize("plan, index, words", [
    ("{not json", "0", ["not JSON"]),
    ('{"include": []}', "0", ["not a sweep plan"]),
    ('[1, 2]', "0", ["not a sweep plan"]),
    ('{"include": [{"name": "sweep-1", "set": ["seed=1"]}]}', "1", ["index 1 is out of range", "0 to 0"]),
    ('{"include": [{"name": "sweep-1", "set": ["seed=1"]}]}', "-1", ["index -1 is out of range"]),
])
def test_run_refuses_a_bad_plan_or_index_and_runs_nothing(tmp_path, plan, index, words):
    one_line_error(sweep_cli(["run", "-", index, "--push", str(tmp_path)], cwd=tmp_path, stdin=plan), *words)
    assert list(tmp_path.iterdir()) == []                              # no log, no .dvc, nothing


def test_run_and_report_refuse_a_remote_that_is_not_there(tmp_path):
    plan = json.dumps(plan_of("seed=1"))
    missing = str(tmp_path / "no-such-origin")
    one_line_error(sweep_cli(["run", "-", "0", "--push", missing], cwd=tmp_path, stdin=plan),
                   "is not there", "nothing pushed")
    one_line_error(sweep_cli(["report", missing, "--plan", "-"], cwd=tmp_path, stdin=plan), "is not there")
    one_line_error(sweep_cli(["run", str(tmp_path / "plan.json"), "0"], cwd=tmp_path), "cannot read the plan")
    assert list(tmp_path.iterdir()) == []


# --- the workflow -----------------------------------------------------------------------------------------------

def workflow():
    return yaml.safe_load(WORKFLOW.read_text())


def step(job, name):
    return next(s for s in workflow()["jobs"][job]["steps"] if s.get("name") == name)


def test_the_workflow_is_plan_run_report_with_least_privilege_and_no_input_in_scripts():
    doc = workflow()
    inputs = doc.get("on", doc.get(True))["workflow_dispatch"]["inputs"]
    assert {"overrides", "max-parallel"} <= set(inputs)
    jobs = doc["jobs"]
    assert doc["permissions"] == {}
    assert {n: j["permissions"] for n, j in jobs.items()} == {
        "plan": {"contents": "read"}, "run": {"contents": "write"}, "report": {"contents": "read"}}
    for job in jobs.values():
        for s in job["steps"]:
            assert "${{" not in s.get("run", ""), s                   # inputs and outputs only through env:
    strategy = jobs["run"]["strategy"]
    assert strategy["fail-fast"] is False and strategy["max-parallel"] == "${{ inputs.max-parallel }}"
    assert strategy["matrix"] == "${{ fromJSON(needs.plan.outputs.matrix) }}"
    assert jobs["run"]["needs"] == "plan" and set(jobs["report"]["needs"]) == {"plan", "run"}
    assert jobs["report"]["if"].startswith("always()")
    checkout = lambda job: next(s for s in jobs[job]["steps"] if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout("run")["with"]["fetch-depth"] == 0 and checkout("report")["with"]["fetch-depth"] == 0
    runs = [s.get("run", "") for s in jobs["run"]["steps"]]
    identity = next(i for i, r in enumerate(runs) if "git config --global user.email" in r)
    assert identity < runs.index(step("run", "Run the point")["run"])
    cache = next(s for s in jobs["run"]["steps"] if s.get("uses", "").startswith("actions/cache@"))
    assert cache["with"]["key"] == "keras-datasets-${{ hashFiles('chapter4/tasks.py') }}"
    for job in jobs.values():
        setup = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/setup-python@"))
        assert setup["with"]["cache"] == "pip" and setup["with"]["cache-dependency-path"] == "requirements.txt"
    assert "--push origin" in step("run", "Run the point")["run"]


def test_actionlint_and_zizmor_find_nothing():
    for tool in ("actionlint", "zizmor"):
        if not shutil.which(tool, path=str(Path(sys.executable).parent)) and not shutil.which(tool):
            pytest.skip(f"{tool} is not installed (requirements.txt installs it where it has wheels)")
    proc = run(["actionlint", str(WORKFLOW)], ROOT, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = run(["zizmor", "--offline", "--min-severity", "medium", str(WORKFLOW)], ROOT, check=False)
    assert proc.returncode == 0 and "No findings" in proc.stdout + proc.stderr, proc.stdout + proc.stderr


# --- the workflow played on this machine --------------------------------------------------------------------------

def start_runner(origin, folder, plan, index, mirror):
    """A runner: a fresh clone of origin running sweep.yml's run step as it stands in the YAML."""
    run(f"git clone -q {origin} {folder}", folder.parent)
    script = step("run", "Run the point")["run"]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "DVC_NO_ANALYTICS": "1", "PLAN": json.dumps(plan), "INDEX": str(index), "DATASETS_MIRROR": str(mirror),
           **IDENTITY}
    env.pop("PYTHONPATH", None)
    return subprocess.Popen(["bash", "-c", script], cwd=folder, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def report(origin, folder, plan, summary=None):
    if not folder.exists():
        run(f"git clone -q {origin} {folder}", folder.parent)
    proc = sweep_cli(["report", "origin", "--plan", "-", "--json"], cwd=folder, stdin=json.dumps(plan),
                     env={"GITHUB_STEP_SUMMARY": str(summary)} if summary else None)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.slow
@pytest.mark.skipif(os.name == "nt", reason="kills a runner's process group with SIGKILL (POSIX)")
def test_the_workflow_on_this_machine(clone, mirror, tmp_path):
    origin, store = tmp_path / "origin.git", tmp_path / "dvc-store"
    run(f"git init -q --bare -b main {origin} && git remote set-url origin {origin}"
        f" && dvc remote add -d store {store} && git add .dvc/config && git commit -qm 'a DVC remote'"
        " && dvc push -q && git push -q origin HEAD:main", clone, env=IDENTITY)
    baseline = run("git rev-parse HEAD", clone).stdout.strip()
    plan = plan_of("housing.epochs=3,4,5")
    names = [p["name"] for p in plan["include"]]

    # two runners in parallel, and a third killed while its point trains
    runners = [start_runner(origin, tmp_path / f"runner{i}", plan, i, mirror) for i in range(3)]
    log = tmp_path / "runner2" / ".dvc" / "tmp" / f"sweep-{names[2]}.log"
    deadline = time.time() + 300
    while not (log.is_file() and "train@housing" in log.read_text()) and time.time() < deadline:
        assert runners[2].poll() is None, runners[2].communicate()
        time.sleep(0.2)
    os.killpg(runners[2].pid, signal.SIGKILL)
    for proc in runners[:2]:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        assert "pushed to origin" in out
    runners[2].wait()
    ran = (tmp_path / "runner0" / ".dvc" / "tmp" / f"sweep-{names[0]}.log").read_text()
    assert "Running stage 'train@housing'" in ran and "Running stage 'train@reuters'" not in ran   # pulled, not redone
    refs = run(f"git ls-remote {origin}", tmp_path).stdout
    assert names[0] in refs and names[1] in refs and names[2] not in refs

    summary = tmp_path / "summary.md"
    first = report(origin, tmp_path / "collector", plan, summary)
    assert first["baseline"] == baseline and first["missing"] == [names[2]]
    present = {p["name"]: p for p in first["points"] if p["present"]}
    assert {n: p["params"] for n, p in present.items()} == {names[0]: {"housing.epochs": 3},
                                                            names[1]: {"housing.epochs": 4}}
    rows = {(r["name"], r["metric"]) for r in first["rows"]}
    assert {(n, m) for n in names[:2] for m in ("test.mae", "test.mse")} <= rows
    assert all(r["task"] == "housing" and r["n"] == 3 for r in first["rows"])          # nothing else changed
    assert all(0 <= r["p"] <= r["p_bh"] <= 1 for r in first["rows"] if r["p"] is not None)
    assert first["best"]["housing"]["name"] in names[:2]
    text = summary.read_text()
    assert "| point |" in text and f"missing: {names[2]}" in text
    # the point's metrics are the experiment's own: those in its commit
    commit = present[names[0]]["commit"]
    values = json.loads(run(f"git show {commit}:data/metrics/housing_replicates.json", tmp_path / "collector").stdout)
    [row] = [r for r in first["rows"] if r["name"] == names[0] and r["metric"] == "test.mae"]
    assert row["mean"] == pytest.approx(sum(values["test.mae"]) / len(values["test.mae"]))

    # a point that fails (a value the plan's check would have refused, written by hand): one line, nothing pushed
    bad = {"include": [{"index": 0, "name": "sweep-bad", "set": ["housing.epochs=0"]}]}
    proc = sweep_cli(["run", "-", "0", "--push", "origin"], cwd=tmp_path / "runner0", stdin=json.dumps(bad),
                     env=IDENTITY)
    one_line_error(proc, "point 0 (sweep-bad: housing.epochs=0): dvc exp run failed", "housing.epochs")
    assert "sweep-bad" not in run(f"git ls-remote {origin}", tmp_path).stdout

    rerun = start_runner(origin, tmp_path / "runner2-again", plan, 2, mirror)
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err
    second = report(origin, tmp_path / "collector", plan)
    assert second["missing"] == [] and all(p["present"] for p in second["points"])
    assert second["points"][2]["params"] == {"housing.epochs": 5}


# --- bench/README.md's sweep figures come from bench/runners.json ---------------------------------------------------

def test_the_runner_model_table_is_bench_runners_json():
    """The model rows of bench/README.md ("A sweep on many runners") print the recorded run's model, and the
    model recomputed from the recorded inputs gives the same numbers (bench/runners.py's `model`)."""
    import re
    sys.path.insert(0, str(ROOT / "bench"))
    import runners
    recorded = json.loads((ROOT / "bench" / "runners.json").read_text())
    recompute = recorded["recompute_s_assumed"] or recorded["baseline_repro_s"]
    again = runners.model(recorded["fixed_cost"], recorded["install_mb_s_assumed"], recorded["job_start_s_assumed"],
                          recorded["book_variations_point_s"], recompute)
    assert json.loads(json.dumps(again)) == recorded["model"]
    text = (ROOT / "bench" / "README.md").read_text()
    section = text[text.index("## A sweep on many runners"):]
    for label, key in (("with a DVC remote", "wall_s_by_runners"), ("without one", "wall_s_by_runners_without_dvc_remote")):
        [row] = [line for line in section.splitlines() if line.startswith(f"| {label}")]
        printed = [float(x) for x in re.findall(r"([\d.]+) min", row)]
        assert printed == [round(v / 60, 1) for v in recorded["model"][key].values()], row
    for way, seconds in recorded["wall_s"].items():
        assert f"| {seconds} s |" in section, way
    assert recorded["identical_replicate_files"] is True


def test_best_point_follows_each_metrics_direction_and_a_diverged_run_has_no_numbers():
    from chapter4 import sweep_report
    base = {"test.mae": [2.6, 2.7, 2.65], "test.accuracy": [0.78, 0.785, 0.79]}
    rows = []
    for name, task, metric, values in [("low-mae", "housing", "test.mae", [2.4, 2.45, 2.42]),
                                       ("high-mae", "housing", "test.mae", [2.9, 2.95, 2.92]),
                                       ("high-acc", "reuters", "test.accuracy", [0.80, 0.805, 0.81]),
                                       ("low-acc", "reuters", "test.accuracy", [0.70, 0.71, 0.705]),
                                       ("diverged", "reuters", "test.accuracy", [float("nan"), 0.9, 0.9])]:
        rows.append({"name": name, "task": task, "metric": metric, **sweep_report.welch(base[metric], values)})
    for row in rows:
        row["p_bh"] = row["p"]
    best = sweep_report.best(rows)
    assert best["housing"]["name"] == "low-mae" and best["housing"]["diff"] < 0
    assert best["reuters"]["name"] == "high-acc" and best["reuters"]["diff"] > 0
    assert rows[-1]["mean"] is None and rows[-1]["p"] is None
    json.loads(sweep_report.render_json({"rows": rows}))                       # strict JSON: no NaN
