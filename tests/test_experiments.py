"""The chapter's experiment loop, the DVC way: exp run/show, params and metrics diff, queue, a remote."""
import json
import os
import time

import pytest

from chapter4.tasks import TASKS
from tests.conftest import run, set_params


def exp_rows(project):
    """{experiment name: (params of params.yaml, metrics by file)} from `dvc exp show --json`."""
    rows = {}
    for commit in json.loads(run("dvc exp show --json", project).stdout):
        for exp in [commit] + [e for group in commit.get("experiments") or [] for e in group["revs"]]:
            data = (exp.get("data") or {})
            name = exp.get("name") or exp.get("rev")
            params = data.get("params", {}).get("params.yaml", {}).get("data", {})
            metrics = {f: m.get("data", {}) for f, m in (data.get("metrics") or {}).items()}
            rows[name] = (params, metrics)
    return rows


def test_exp_show_and_params_diff_list_params_and_metrics(clone, mirror):
    run("dvc exp run -n two-epochs -S reuters.epochs=2", clone, env={"DATASETS_MIRROR": str(mirror)})
    table = run("dvc exp show --no-pager --md", clone).stdout
    for column in ("reuters.epochs", "test.accuracy", "test.mae", "kfold.mean_mae", "two-epochs"):
        assert column in table, column
    params, metrics = exp_rows(clone)["two-epochs"]
    assert params["reuters"]["epochs"] == 2
    assert 0 < metrics["data/metrics/reuters.json"]["test"]["accuracy"] <= 1
    set_params(clone, **{"reuters.epochs": 3})
    diff = json.loads(run("dvc params diff --json", clone).stdout)
    assert diff["params.yaml"] == {"reuters.epochs": {"old": 1, "new": 3, "diff": 2}}


def test_metrics_and_plots_diff_between_branches_without_a_remote(pipeline, mirror, tmp_path):
    fresh = tmp_path / "fresh"
    run(f"git clone -q {pipeline} {fresh}", tmp_path)         # no cache, no remote: only what git holds
    before = json.loads((fresh / "data/metrics/reuters.json").read_text())
    run("git switch -q -c fewer-epochs", fresh)
    set_params(fresh, **{"reuters.epochs": 2})
    run("dvc repro", fresh, env={"DATASETS_MIRROR": str(mirror)})
    run("git add -A && git commit -qm 'reuters: 2 epochs'", fresh)
    diff = json.loads(run("dvc metrics diff main fewer-epochs --json", fresh).stdout)
    acc = diff["data/metrics/reuters.json"]["test.accuracy"]
    after = json.loads((fresh / "data/metrics/reuters.json").read_text())
    assert acc["old"] == before["test"]["accuracy"] and acc["new"] == after["test"]["accuracy"]
    assert acc["old"] != acc["new"]
    assert "data/metrics/imdb.json" not in diff                # nothing else changed
    text = run("dvc metrics diff main fewer-epochs", fresh).stdout
    assert "test.accuracy" in text and str(acc["old"])[:6] in text and str(acc["new"])[:6] in text
    plots = json.loads(run("dvc plots diff main fewer-epochs --json", fresh).stdout)["data"]
    [plot] = plots["data/train/reuters/history.json"]
    values = plot["content"]["data"]["values"]
    assert {v["rev"] for v in values} == {"main", "fewer-epochs"}
    assert sorted(v["epoch"] for v in values if v["rev"] == "fewer-epochs") == [1, 2]
    assert sorted(v["epoch"] for v in values if v["rev"] == "main") == [1]


@pytest.mark.skipif(os.name == "nt", reason="ends DVC's queue workers with kill -9 of their POSIX pids")
def test_queued_sweep_in_parallel_equals_runs_alone(clone, mirror):
    env = {"DATASETS_MIRROR": str(mirror)}
    run("dvc exp run --queue -S 'imdb.units=[16,16],[32,32]'", clone, env=env)
    # DVC's worker manager (a fork of `dvc queue start`) waits for its worker and keeps the command's stdout:
    # no pipe of ours goes to it, and the workers are killed at the end (one can hang after "shutting down").
    run("dvc queue start -j 2 >/dev/null 2>&1 </dev/null", clone, env=env)
    try:
        deadline = time.time() + 600
        while time.time() < deadline:
            status = run("dvc queue status", clone).stdout
            if "Queued" not in status and "Running" not in status:
                break
            time.sleep(3)
        assert "Failed" not in status, run("dvc queue logs $(dvc queue status | awk '/Failed/{print $1}' | head -1)",
                                           clone, check=False).stdout
    finally:
        for pid in (clone / ".dvc/tmp/exps/celery").glob("*.pid"):
            run(f"kill -9 $(cat {pid}) 2>/dev/null", clone, check=False)
    rows = exp_rows(clone)
    sweep = {tuple(p["imdb"]["units"]): m["data/metrics/imdb.json"]["test"] for name, (p, m) in rows.items()
             if name != "workspace" and p.get("imdb", {}).get("units") in ([16, 16], [32, 32])
             and "data/metrics/imdb.json" in m}
    assert set(sweep) == {(16, 16), (32, 32)}
    assert sweep[(16, 16)] != sweep[(32, 32)]
    run("dvc exp run -S 'imdb.units=[32,32]'", clone, env=env)     # the same experiment, alone
    alone = json.loads((clone / "data/metrics/imdb.json").read_text())["test"]
    assert alone == sweep[(32, 32)]


def test_push_to_a_remote_then_clone_pull_and_nothing_to_run(clone, mirror, tmp_path):
    remote = tmp_path / "remote"
    run(f"dvc remote add -d shared {remote} && git add .dvc/config && git commit -qm remote && dvc push -q", clone)
    fresh = tmp_path / "fresh"
    run(f"git clone -q {clone} {fresh}", tmp_path)
    run("dvc pull -q", fresh)
    for out in ("data/raw/imdb/imdb.npz", "data/encoded/reuters/train.npz", "data/split/housing.npz",
                "data/model/reuters/replicate-2.keras", "data/validate/housing/summary.json", "data/params.ok"):
        assert (fresh / out).read_bytes() == (clone / out).read_bytes(), out
    proc = run("dvc repro", fresh)                       # no DATASETS_MIRROR: nothing may need the network
    assert "Running stage" not in proc.stdout and "up to date" in proc.stdout


def test_compare_tells_an_effect_from_noise_on_real_branches(clone, mirror):
    """stages.compare on branches of a real run: 9 vs 2 Reuters epochs is an effect (worse, p < 0.05); a branch
    that changes nothing the models read is not; --json is strict JSON, --md a table; a revision without
    per-replicate values is one line and exit 1."""
    env = {"DATASETS_MIRROR": str(mirror)}
    run("git switch -q -c nine", clone)
    set_params(clone, **{"reuters.epochs": 9})
    run("dvc repro -q && git add -A && git commit -qm 'reuters: 9 epochs'", clone, env=env)
    run("git switch -q -c two", clone)
    set_params(clone, **{"reuters.epochs": 2})
    run("dvc repro -q && git add -A && git commit -qm 'reuters: 2 epochs'", clone, env=env)
    rows = json.loads(run("python -m stages.compare nine two --json", clone).stdout,
                      parse_constant=lambda c: pytest.fail(f"not strict JSON: {c}"))["rows"]
    acc = {(r["task"], r["metric"]): r for r in rows}[("reuters", "test.accuracy")]
    assert acc["verdict"] == "worse" and acc["p"] < 0.05 and acc["ci95_high"] < 0 and acc["n_a"] == 3
    assert all(r["verdict"].startswith("no detectable difference") for r in rows if r["task"] != "reuters")

    run("git switch -q nine && git switch -q -c comment", clone)
    (clone / "params.yaml").write_text((clone / "params.yaml").read_text() + "# a comment\n")
    run("dvc repro -q && git add -A && git commit -qm comment", clone, env=env)
    md = run("python -m stages.compare nine comment --md", clone).stdout.splitlines()
    table = [line for line in md if line.startswith("|")]
    assert table[1].startswith("| ---") and len(table) == 2 + 7             # header, rule, 7 task-metric rows
    assert all("| no detectable difference (n=3 vs 3" in line for line in table[2:])

    run("git rm -q data/metrics/reuters_replicates.json && git commit -qm older", clone)
    proc = run("python -m stages.compare HEAD nine", clone, check=False)
    assert proc.returncode == 1 and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and "no per-replicate values" in proc.stderr


def test_one_replicate_is_replicate_zero(clone, mirror):
    """`-S replicates=1` gives the single run of before: replicate 0 (seed 42) of the 3 trained side by side,
    every headline metric to float rounding (the same seeds, shuffles and steps; only the stacking differs),
    and no spread keys (one run has none)."""
    stacked = {t: json.loads((clone / f"data/metrics/{t}_replicates.json").read_text()) for t in TASKS}
    run("dvc exp run -S replicates=1", clone, env={"DATASETS_MIRROR": str(mirror)})
    for task in TASKS:
        one = json.loads((clone / f"data/metrics/{task}_replicates.json").read_text())
        assert one["replicates"] == 1 and one["seeds"] == [42]
        metrics = json.loads((clone / f"data/metrics/{task}.json").read_text())
        for key, values in stacked[task].items():
            if key in ("replicates", "seeds"):
                continue
            section, name = key.split(".")
            assert metrics[section][name] == one[key][0] == pytest.approx(values[0], rel=1e-4, abs=1e-4), key
            assert f"{name}_std" not in metrics[section]
