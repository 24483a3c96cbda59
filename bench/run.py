"""Benchmark: the book's code vs the pipeline, in one run on one machine, real data.

    DATASETS_MIRROR=... python bench/run.py [--quick] [--out bench/results.json]

Runs, as child processes of this one: `bench/book.py` (the book's plain-Keras code, one seed), then in a fresh
clone of this repo: the downloads (untimed), `dvc repro -f` of everything after them (`--downstream params`)
with params.yaml's replicates, each stage alone, a no-op `dvc repro` (median of 5), `dvc exp run -S
reuters.epochs=10` (median of 3); then the same full run and exp runs with `replicates: 1`. Prints
wall times, peak RSS of the largest process, the DVC cache size and the ratios; also times the multi-hot
encoding against the book's loop (checking the bits).
--quick runs the book at 1/10 of its epochs (a smoke test; the ratios are then meaningless).
"""
import argparse
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import memory  # noqa: E402

GIT = ["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost"]      # commits in the bench's clones


def timed(cmd, cwd, env=None):
    """Run `cmd` (an argv list, or a string split as the shell would, without a shell); returns (seconds, peak
    RSS in MB of the largest process in its tree (POSIX; Windows: of the process itself), stdout)."""
    argv = shlex.split(cmd) if isinstance(cmd, str) else cmd
    seconds, code, rss, _, _, out = memory.measure(argv, cwd, {**os.environ, **(env or {})}, capture=True)
    if code != 0:
        raise SystemExit(f"{cmd} failed:\n{out[-3000:]}")
    return seconds, rss, out


def encoding_speed():
    """The book's vectorize_sequences loop vs multihot.multi_hot_csr on the same IMDB training sequences
    (best of 5 each), and whether the bits agree."""
    import numpy as np

    from chapter4 import datasets, tasks
    from bench.book import vectorize_sequences
    from chapter4 import multihot
    from stages import download
    raw = Path(tempfile.mkdtemp())
    for name in tasks.TASKS["imdb"].files:
        download.fetch(name, raw, os.environ.get("DATASETS_MIRROR"), progress=False)
    seqs = datasets.load_sequences(raw, "imdb", {"num_words": 10000})["train"]
    flat, splits, _ = seqs
    lists = [flat[a:b].tolist() for a, b in zip(splits[:-1], splits[1:])]
    def book_loop():                               # the book's listing 4.3
        return vectorize_sequences(lists)

    def best_of_5(f):
        times = []
        for _ in range(5):
            t = time.perf_counter()
            out = f()
            times.append(time.perf_counter() - t)
        return min(times), out
    t_book, book = best_of_5(book_loop)
    t_ours, (indptr, indices) = best_of_5(lambda: multihot.multi_hot_csr(flat, splits, 10000))
    same = all(np.array_equal(book[a:a + 5000], multihot.multi_hot(indptr, indices, 10000, np.arange(a, min(a + 5000, len(lists)))))
               for a in range(0, len(lists), 5000))
    shutil.rmtree(raw)
    return {"book_s": round(t_book, 3), "ours_s": round(t_ours, 3), "speedup": round(t_book / t_ours, 1),
            "bit_identical": bool(same)}


def set_replicates(work, n):
    doc = yaml.safe_load((work / "params.yaml").read_text())
    doc["replicates"] = n
    (work / "params.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))


def full_run(work, env):
    """`dvc repro -f` of everything after the downloads: wall, peak RSS, headline metrics; and the stages run."""
    secs, rss, out = timed("dvc repro -f --downstream params", work, env)
    stages = re.findall(r"Running stage '([^']+)'", out)
    assert not any(s.startswith("download") for s in stages), stages
    m = {t: json.loads((work / f"data/metrics/{t}.json").read_text()) for t in ("imdb", "reuters", "housing")}
    return {"wall_s": round(secs, 1), "peak_rss_mb": round(rss), "replicates": m["imdb"]["test"]["replicates"],
            "imdb_test_accuracy": m["imdb"]["test"]["accuracy"],
            "reuters_test_accuracy": m["reuters"]["test"]["accuracy"],
            "housing_kfold_mean_mae": m["housing"]["kfold"]["mean_mae"],
            "housing_test_mae": m["housing"]["test"]["mae"]}, stages


def commit_outputs(work):
    """Commit the workspace if a run changed it, and return the files it changed: outputs computed on another CPU
    than the committed ones differ in the last digits, and `reset` must return to what this machine computes (its
    cache holds only that)."""
    changed = subprocess.run(["git", "diff", "--name-only"], cwd=work, capture_output=True, text=True,
                             check=True).stdout.split()
    if changed:
        subprocess.run(GIT + ["commit", "-qam", "outputs as this machine computes them"], cwd=work, check=True)
    return changed


def reset(work, env, rev="HEAD"):
    """The workspace as committed at `rev` (an exp run leaves its results applied to it)."""
    for cmd in (["git", "checkout", "-q", rev, "--", "."], ["dvc", "checkout", "-q"]):
        subprocess.run(cmd, cwd=work, check=True, env={**os.environ, **env})


def exp_run(work, env):
    """One `dvc exp run -S reuters.epochs=10` from the committed workspace with the stage run-cache cleared:
    (seconds, peak RSS in MB, the stages it ran)."""
    reset(work, env)
    shutil.rmtree(work / ".dvc/cache/runs", ignore_errors=True)
    secs, rss, out = timed("dvc exp run -S reuters.epochs=10", work, env)
    return secs, rss, re.findall(r"Running stage '([^']+)'", out)


def exp_runs(work, env):
    """`dvc exp run -S reuters.epochs=10`, median of 3."""
    runs = []
    for _ in range(3):
        secs, _, stages = exp_run(work, env)
        runs.append(round(secs, 2))
    reset(work, env)
    return {"median_s": sorted(runs)[1], "runs_s": runs, "stages": stages}


def main():
    args = argparse.ArgumentParser()
    args.add_argument("--quick", action="store_true")
    args.add_argument("--out", default=str(ROOT / "bench" / "results.json"))
    args = args.parse_args()
    py = sys.executable
    env = {"PATH": f"{Path(py).parent}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1"}
    r = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, {round(memory.total_memory_gib())} GiB, "
                    f"Python {platform.python_version()}", "date": time.strftime("%Y-%m-%d")}

    print("book: bench/book.py ...", flush=True)
    secs, rss, out = timed([py, str(ROOT / "bench" / "book.py")] + (["--quick"] if args.quick else []), ROOT, env)
    book = json.loads(out.strip().splitlines()[-1])["book"]
    r["book"] = {"wall_s": round(secs, 1), "peak_rss_mb": round(rss), "sections_s": book["seconds"],
                 "imdb_test_accuracy": book["imdb_test_accuracy"],
                 "reuters_test_accuracy": book["reuters_test_accuracy"],
                 "housing_kfold_mean_mae": book["housing_kfold_mean_mae"], "housing_test_mae": book["housing_test_mae"]}

    work = Path(tempfile.mkdtemp(prefix="bench-")) / "project"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(work)], check=True)
    timed("dvc repro download@imdb download@reuters download@housing params", work, env)
    replicates = yaml.safe_load((work / "params.yaml").read_text())["replicates"]
    print(f"pipeline, replicates={replicates}: dvc repro -f --downstream params (all but the downloads) ...",
          flush=True)
    r["pipeline"], stages = full_run(work, env)
    r["files_unlike_the_committed"] = commit_outputs(work)
    r["dvc_cache_mb"] = round(sum(f.stat().st_size for f in (work / ".dvc/cache").rglob("*") if f.is_file()) / 2**20, 1)

    noop = sorted(round(timed("dvc repro", work, env)[0], 2) for _ in range(5))
    r["noop_repro_s"], r["noop_repro_runs_s"] = noop[2], noop          # median of 5 (this VM's noise: ±0.3 s)
    r["exp_run"] = exp_runs(work, env)

    print("pipeline, replicates=1: dvc repro -f --downstream params, exp runs ...", flush=True)
    set_replicates(work, 1)
    r["pipeline_1"], _ = full_run(work, env)
    subprocess.run(GIT + ["commit", "-qam", "replicates: 1"], cwd=work, check=True)
    r["exp_run_1"] = exp_runs(work, env)

    print(f"each stage alone, replicates={replicates} ...", flush=True)
    reset(work, env, "HEAD~1")
    r["stages"] = {}
    for stage in stages:
        secs, rss, _ = timed(f"dvc repro -f -s {stage}", work, env)
        r["stages"][stage] = {"wall_s": round(secs, 2), "peak_rss_mb": round(rss)}
    r["max_stage_rss_mb"] = max(s["peak_rss_mb"] for s in r["stages"].values())
    # Last: a child forked after this process held the book loop's 2 GB matrix would report that as its peak.
    r["encoding"] = encoding_speed()

    b, p = r["book"], r["pipeline"]
    r["ratios"] = {"wall": round(b["wall_s"] / p["wall_s"], 1),
                   "wall_replicates_1": round(b["wall_s"] / r["pipeline_1"]["wall_s"], 1),
                   "exp_run_5_vs_1": round(r["exp_run"]["median_s"] / r["exp_run_1"]["median_s"], 2),
                   "peak_rss": round(b["peak_rss_mb"] / r["max_stage_rss_mb"], 1),
                   "housing_kfold_500": round(b["sections_s"]["housing_kfold_500"] / r["stages"]["validate@housing"]["wall_s"], 1),
                   "encoding": r["encoding"]["speedup"]}
    shutil.rmtree(work.parent, ignore_errors=True)
    Path(args.out).write_text(json.dumps(r, indent=2) + "\n")

    print(f"\nmachine: {r['machine']}")
    print(f"{'':28}{'book':>10}{'pipeline':>10}{'ratio':>8}")
    print(f"{'wall, ' + str(p['replicates']) + ' replicates (s)':28}{b['wall_s']:>10}{p['wall_s']:>10}"
          f"{r['ratios']['wall']:>7}x")
    print(f"{'wall, 1 replicate (s)':28}{b['wall_s']:>10}{r['pipeline_1']['wall_s']:>10}"
          f"{r['ratios']['wall_replicates_1']:>7}x")
    print(f"{'peak RSS, largest proc (MB)':28}{b['peak_rss_mb']:>10}{r['max_stage_rss_mb']:>10}{r['ratios']['peak_rss']:>7}x")
    print(f"{'housing 500-epoch K-fold (s)':28}{b['sections_s']['housing_kfold_500']:>10}"
          f"{r['stages']['validate@housing']['wall_s']:>10}{r['ratios']['housing_kfold_500']:>7}x")
    print(f"{'IMDB multi-hot encoding (s)':28}{r['encoding']['book_s']:>10}{r['encoding']['ours_s']:>10}"
          f"{r['ratios']['encoding']:>7}x  bit-identical: {r['encoding']['bit_identical']}")
    for key in ("imdb_test_accuracy", "reuters_test_accuracy", "housing_kfold_mean_mae", "housing_test_mae"):
        print(f"{key:28}{b[key]:>10.3f}{p[key]:>10.3f}  (book: one seed; pipeline: mean of {p['replicates']})")
    print(f"DVC cache after a full run: {r['dvc_cache_mb']} MB; no-op dvc repro: {r['noop_repro_s']} s "
          f"(median of {r['noop_repro_runs_s']})")
    for key, n in (("exp_run", p["replicates"]), ("exp_run_1", 1)):
        e = r[key]
        print(f"dvc exp run -S reuters.epochs=10, {n} replicate(s): {e['median_s']} s (median of {e['runs_s']}; "
              f"{', '.join(e['stages'])})")
    print(f"exp run, {p['replicates']} replicates vs 1: {r['ratios']['exp_run_5_vs_1']}x")
    print(f"outputs unlike the committed ones (another CPU's last digits): {len(r['files_unlike_the_committed'])} files "
          f"{r['files_unlike_the_committed']}")
    print("per stage (wall s / peak MB): " + ", ".join(f"{k} {v['wall_s']}/{v['peak_rss_mb']}" for k, v in r["stages"].items()))


if __name__ == "__main__":
    main()
