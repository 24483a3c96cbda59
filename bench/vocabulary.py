"""How many words? The vocabulary sweep: test accuracy, time and memory against num_words, up to all the words.

    DATASETS_MIRROR=... python bench/vocabulary.py [--tasks imdb,reuters] [--project DIR] [--collect]
                                                   [--book-memory] [--out bench/vocabulary.json]
                                                   [--figure docs/figures/vocabulary.png]

Runs, in a fresh git clone of this repository (or in --project), one queued DVC experiment per task and size,
`dvc exp run --queue -f -S <task>.num_words=N evaluate@<task> predict@<task> plot@<task>`, then
`dvc queue start -j 2` and waits. `-f` with those targets makes every experiment run the same stages
(download@, params, encode@, split@, validate@, train@, evaluate@, predict@, plot@ of its task), so the sizes
cost the same kind of work, 10 000 included. Each stage runs under bench/sweep.py's `python` shim, which
records its wall time and peak RSS. --collect skips the running and reads the experiments already in
--project (`dvc exp show --json`; each experiment's data/metrics/<task>_replicates.json through git) and the
shim's log there.

Writes --out: per task and size the replicates' test accuracy and loss, their mean, sd and Student-t 95% CI
(chapter4/stats.py), wall time and peak RSS of the experiment's stages; and the book's dense rows at that size:
2 splits x samples x num_words x 8 bytes (float64), computed, and with --book-memory measured (peak RSS of the
book's listing 4.3, `vectorize_sequences` of both splits, in a child process) where they fit in half this
machine's memory. Draws --figure.
"""
import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sweep  # noqa: E402
from sweep import ROOT  # noqa: E402

from bench import memory  # noqa: E402

from chapter4 import stats, tasks
from chapter4 import comparison as compare  # noqa: E402

SIZES = {"imdb": [1000, 2000, 5000, 10000, 20000, 50000, tasks.TASKS["imdb"].vocabulary],
         "reuters": [1000, 2000, 5000, 10000, 20000, tasks.TASKS["reuters"].vocabulary]}
BOOK_WORDS = 10000
METRICS = ("test.accuracy", "test.loss")
TARGET_RSS_MB = 1536
TARGET_TIME_RATIO = 2.0
TARGET_SWEEP_S = 1200


def name(task, n):
    return f"{task}-words-{n}"


def targets(task):
    return [f"evaluate@{task}", f"predict@{task}", f"plot@{task}"]


def run_sweep(project, sizes, env, jobs=2, largest_first=True):
    """Queue one forced experiment per task and size, largest first (the two workers finish closer together)
    or smallest first, run the queue; returns the queue's wall seconds and each experiment's last status."""
    order = sorted(((task, n) for task in sizes for n in sizes[task]),
                   key=lambda tn: -tn[1] if largest_first else tn[1])
    for task, n in order:
        sweep.queue(project, name(task, n), {f"{task}.num_words": n}, targets(task), force=True, env=env)
    return sweep.run_queue(project, env, jobs=jobs)


ALONE_LOG = ".dvc/tmp/bench-stages-alone.jsonl"


def run_alone(project, task, sizes, env_extra=None):
    """Each size once more as `dvc exp run -f` in the project's workspace, one after the other with nothing else
    running (warm file cache, no second experiment competing for the 2 cores): {size: cost}. The fair
    comparison of sizes' costs; the queue's figures depend on which experiment ran beside which."""
    out = {}
    for n in sizes:
        log = Path(project) / ALONE_LOG
        before = len(sweep.stage_log(project, ALONE_LOG))
        env = {**sweep.stage_env(project, log=ALONE_LOG), **(env_extra or {})}
        sweep.dvc(["exp", "run", "-f", "-n", f"{name(task, n)}-alone", "-S", f"{task}.num_words={n}"]
                  + targets(task), project, env)
        out[n] = sweep.cost(sweep.stage_log(project, ALONE_LOG)[before:], task)
        print(f"alone: {task} {n}: {out[n]['stages_wall_s']} s, {out[n]['peak_rss_mb']} MB", flush=True)
    assert log.is_file()
    return out


def collect(project, sizes):
    """{task: [one entry per size]} from the experiments in `project` and the shim's log there."""
    exps, groups = sweep.experiments(project), sweep.runs_by_workspace(sweep.stage_log(project))
    out = {}
    for task in sizes:
        entries = []
        for n in sizes[task]:
            exp = exps.get(name(task, n))
            if exp is None:
                continue
            doc = sweep.replicate_values(project, exp["rev"], task)
            values = {m: doc[m] for m in METRICS}
            summary = {}
            for m in METRICS:
                summary |= stats.summary(m, values[m])
            runs = [g for g in groups if any(r["stage"] == f"encode@{task}" for r in g)
                    and all((r["params"] or {}).get(task, {}).get("num_words") == n for r in g)]
            entries.append({"num_words": n, "experiment": name(task, n), "rev": exp["rev"],
                            "replicates": doc["replicates"], "seeds": doc["seeds"], "values": values,
                            "summary": summary, "cost": sweep.cost(runs[-1], task) if runs else None,
                            "book_dense": {"computed_mb": round(dense_bytes(task, n) / 2**20, 1)}})
        base = next((e for e in entries if e["num_words"] == BOOK_WORDS), None)
        for e in entries:                    # each size against the book's 10 000 words: stages.compare's test
            if base is not None:
                e["vs_10000"] = compare.compare(base["values"]["test.accuracy"], e["values"]["test.accuracy"],
                                                compare.direction("test.accuracy"))
        out[task] = entries
    return correct(out)


def correct(results):
    """Holm's correction over every size's test against 10 000 words, both tasks together (stages.compare.family):
    the adjusted p, the verdict from it and the detectable difference replace the single test's."""
    tests = [e["vs_10000"] for entries in results.values() for e in entries
             if e["num_words"] != BOOK_WORDS and "vs_10000" in e]
    compare.family(tests, [compare.direction("test.accuracy")] * len(tests))
    return results


# --- the book's dense rows --------------------------------------------------------------------------------

SAMPLES = {"imdb": 25000 + 25000, "reuters": 8982 + 2246}      # both splits (Reuters: test_split 0.2)


def dense_bytes(task, n):
    """What the book's vectorize_sequences allocates for both splits: samples x num_words float64."""
    return SAMPLES[task] * n * 8


BOOK_CHILD = r'''
import json, os, sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np
from chapter4 import datasets, tasks
from stages import download
task, n, raw = sys.argv[2], int(sys.argv[3]), sys.argv[4]
for f in tasks.TASKS[task].files:
    download.fetch(f, os.path.join(raw, task), os.environ.get("DATASETS_MIRROR"), progress=False)
seqs = datasets.load_sequences(os.path.join(raw, task), task, {"num_words": n, "test_split": 0.2})
lists = {k: [v[0][a:b].tolist() for a, b in zip(v[1][:-1], v[1][1:])] for k, v in seqs.items()}

from bench.book import vectorize_sequences    # the book's listing 4.3

from bench import memory       # ru_maxrss would start at the forking parent's size: on Linux the peak restarts
memory.reset_peak()             # here (elsewhere it is the process's whole peak)
before = memory.rss_mb()

t = time.perf_counter()
x_train = vectorize_sequences(lists["train"], n)
x_test = vectorize_sequences(lists["test"], n)
seconds = time.perf_counter() - t
print(json.dumps({"peak_rss_mb": round(memory.peak_since_reset_mb(), 1),
                  "before_mb": round(before, 1), "rows_mb": round((x_train.nbytes + x_test.nbytes) / 2**20, 1),
                  "vectorize_s": round(seconds, 2)}))
'''


def book_memory(task, n, raw):
    """Peak RSS of the book's listing 4.3 for both splits at num_words n, in a child process: the sequences as
    keras.datasets.<task>.load_data returns them (chapter4.datasets.load_sequences, tested equal), then
    `vectorize_sequences` of both splits."""
    proc = subprocess.run([sys.executable, "-c", BOOK_CHILD, str(ROOT), task, str(n), str(raw)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"book memory {task} {n}: {proc.stderr[-1500:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure_book(results, limit_mb):
    raw = tempfile.mkdtemp(prefix="book-raw-")
    for task, entries in results.items():
        for e in entries:
            if e["book_dense"]["computed_mb"] <= limit_mb:
                e["book_dense"]["measured"] = book_memory(task, e["num_words"], raw)
                print(f"book's rows, {task} {e['num_words']}: {e['book_dense']}", flush=True)


# --- targets and figure -------------------------------------------------------------------------------------

def check_targets(results, queue_s, alone=None):
    """The issue's cost targets, from the queue's figures and (when measured) from the runs alone."""
    full, book = tasks.TASKS["imdb"].vocabulary, BOOK_WORDS
    out = {"sweep_s": queue_s, "sweep_target_s": TARGET_SWEEP_S,
           "sweep_ok": queue_s is not None and queue_s <= TARGET_SWEEP_S}
    queued = {e["num_words"]: e["cost"] for e in results.get("imdb", []) if e["cost"]}
    for how, costs in (("queue", queued), ("alone", (alone or {}).get("imdb", {}))):
        if full in costs and book in costs:
            a, b = costs[full], costs[book]
            rss, ratio = a["peak_rss_mb"], a["stages_wall_s"] / b["stages_wall_s"]
            out[how] = {"imdb_full_peak_rss_mb": rss, "rss_target_mb": TARGET_RSS_MB, "rss_ok": rss <= TARGET_RSS_MB,
                        "imdb_full_vs_10000_wall": round(ratio, 2), "wall_ratio_target": TARGET_TIME_RATIO,
                        "wall_ok": ratio <= TARGET_TIME_RATIO,
                        "imdb_full_vs_10000_cpu": round(a["cpu_s"] / b["cpu_s"], 2)}
    return out


COLORS = {"imdb": "tab:blue", "reuters": "tab:orange"}


def figure(results, path, alone=None):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (acc, mem, wall) = plt.subplots(1, 3, figsize=(15, 4.4))
    for task, entries in results.items():
        if not entries:
            continue
        c, xs = COLORS.get(task, "k"), [e["num_words"] for e in entries]
        s = [e["summary"] for e in entries]
        n = entries[0]["replicates"]
        acc.plot(xs, [v["test.accuracy"] for v in s], "o-", color=c, label=f"{task} (mean, 95% CI, n={n})")
        if all("test.accuracy_ci95_low" in v for v in s):
            acc.fill_between(xs, [v["test.accuracy_ci95_low"] for v in s], [v["test.accuracy_ci95_high"] for v in s],
                             color=c, alpha=0.2, linewidth=0)
        for x, e in zip(xs, entries):
            acc.plot([x] * len(e["values"]["test.accuracy"]), e["values"]["test.accuracy"], ".", color=c, alpha=0.4,
                     markersize=4)
        costed = [e for e in entries if e["cost"]]
        if costed:
            cx = [e["num_words"] for e in costed]
            mem.plot(cx, [e["cost"]["peak_rss_mb"] / 1024 for e in costed], "o-", color=c,
                     label=f"{task}: pipeline, largest stage (measured)")
            wall.plot(cx, [e["cost"]["stages_wall_s"] for e in costed], "o-", color=c,
                      label=f"{task}: the task's stages, summed")
        mem.plot(xs, [e["book_dense"]["computed_mb"] / 1024 for e in entries], "--", color=c, alpha=0.7,
                 label=f"{task}: book's float64 rows (computed)")
        measured = [e for e in entries if "measured" in e["book_dense"]]
        if measured:
            mem.plot([e["num_words"] for e in measured], [e["book_dense"]["measured"]["peak_rss_mb"] / 1024
                                                         for e in measured],
                     "s", color=c, markerfacecolor="none", label=f"{task}: book's listing 4.3, peak RSS (measured)")
    for task, costs in (alone or {}).items():
        xs = sorted(costs)
        wall.plot(xs, [costs[n]["stages_wall_s"] for n in xs], "x", color="k", markersize=8,
                  label=f"{task}: the same stages, each experiment alone")
    ram = memory.total_memory_gib()
    mem.axhline(ram, color="gray", linewidth=0.8)
    mem.text(1000, ram * 1.08, f"this machine: {ram:.0f} GiB", color="gray", fontsize=8)
    for ax in (acc, mem, wall):
        ax.set_xscale("log")
        ax.set_xlabel("num_words (log scale)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    acc.set_ylabel("test accuracy")
    acc.set_title("Test accuracy against vocabulary size")
    mem.set_yscale("log")
    mem.set_ylabel("GiB (log scale)")
    mem.set_title("Memory")
    wall.set_ylabel("seconds (2 experiments at a time, 2 cores)")
    wall.set_title("Wall time of one experiment's stages")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def table(results):
    lines = ["| task | num_words | test accuracy, mean ± sd [95% CI] (n) | − 10 000 words [95% CI], p, Holm p | "
             "stages' wall time | largest stage's peak RSS | book's float64 rows |", "|---|---|---|---|---|---|---|"]
    for task, entries in results.items():
        for e in entries:
            s, c, b = e["summary"], e["cost"], e["book_dense"]
            acc = f"{s['test.accuracy']:.4f}"
            if "test.accuracy_std" in s:
                acc += (f" ± {s['test.accuracy_std']:.4f} [{s['test.accuracy_ci95_low']:.4f}, "
                        f"{s['test.accuracy_ci95_high']:.4f}]")
            book = f"{b['computed_mb'] / 1024:.2f} GiB computed" + (
                f", peak RSS {b['measured']['peak_rss_mb'] / 1024:.2f} GiB measured" if "measured" in b else "")
            cost = f"{c['stages_wall_s']:.1f} s | {c['peak_rss_mb']:.0f} MB" if c else "- | -"
            v = e.get("vs_10000") or {}
            diff = "-" if v.get("p") is None else (f"{v['diff']:+.4f} [{v['ci95_low']:+.4f}, {v['ci95_high']:+.4f}], "
                                                   f"p = {v['p']:.2g}, Holm p = {v['p_holm']:.2g}")
            lines.append(f"| {task} | {e['num_words']} | {acc} (n={e['replicates']}) | {diff} | {cost} | {book} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", default="imdb,reuters")
    ap.add_argument("--project", help="where to clone (default: a new temporary folder); with --collect: the "
                                      "project whose experiments to read")
    ap.add_argument("--collect", action="store_true", help="read experiments already run in --project")
    ap.add_argument("--reuse", action="store_true", help="with --collect: keep the queue's figures and the book's "
                                                         "measured rows from the existing --out")
    ap.add_argument("--book-memory", action="store_true", help="measure the book's rows where they fit")
    ap.add_argument("--alone", help="IMDB sizes to run once more each alone, e.g. 10000,88588 (the fair "
                                    "comparison of their costs)")
    ap.add_argument("--smallest-first", action="store_true", help="queue the sizes smallest first")
    ap.add_argument("--out", default=str(ROOT / "bench" / "vocabulary.json"))
    ap.add_argument("--figure", default=str(ROOT / "docs" / "figures" / "vocabulary.png"))
    args = ap.parse_args()
    sizes = {t: SIZES[t] for t in args.tasks.split(",")}
    queue_s, statuses, previous = None, {}, None
    if args.collect:
        if not args.project:
            raise SystemExit("bench/vocabulary.py: --collect needs --project")
        project = Path(args.project)
        if args.reuse:
            previous = json.loads(Path(args.out).read_text())
            queue_s, statuses = previous["queue_wall_s"], previous["statuses"]
            sweep.RUN.update(previous.get("queue_run", {}))
    else:
        project = Path(args.project or tempfile.mkdtemp(prefix="vocabulary-")) / "ch4"
        sweep.clone(project)
        env = sweep.stage_env(project)
        print(f"{project}: queueing {sum(map(len, sizes.values()))} experiments, running 2 at a time ...", flush=True)
        queue_s, statuses = run_sweep(project, sizes, env, largest_first=not args.smallest_first)
        queue_s = round(queue_s, 1)
        print(f"queue: {queue_s} s, {statuses}", flush=True)
    alone = {"imdb": run_alone(project, "imdb", [int(n) for n in args.alone.split(",")])} if args.alone else None
    if alone is None and previous and previous.get("alone"):
        alone = {t: {int(n): c for n, c in v.items()} for t, v in previous["alone"].items()}
    book_limit = memory.total_memory_gib() * 2**9 if args.book_memory else None
    doc = report(project, sizes, queue_s, statuses, args.out, args.figure, book_limit, alone, previous)
    print(table(doc["tasks"]))
    print(json.dumps(doc["targets"]))


def report(project, sizes, queue_s, statuses, out, figure_path, book_limit_mb=None, alone=None, previous=None):
    """Collect the experiments in `project`, measure the book's rows up to `book_limit_mb` (None: not at all;
    or taken from `previous`, an earlier document), write the JSON to `out` and the figure to `figure_path`;
    returns the JSON document. `alone`: {task: {size: cost}} of runs alone (`run_alone`)."""
    results = collect(project, sizes)
    if book_limit_mb:
        measure_book(results, book_limit_mb)
    elif previous:
        for task, entries in results.items():
            old = {e["num_words"]: e["book_dense"] for e in previous["tasks"].get(task, [])}
            for e in entries:
                e["book_dense"] = old.get(e["num_words"], e["book_dense"])
    doc = {"machine": sweep.machine(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "commit": subprocess.run(["git", "rev-parse", "HEAD"], cwd=project, capture_output=True,
                                    text=True).stdout.strip(),
           "how": "dvc exp run --queue -f -S <task>.num_words=N evaluate@<task> predict@<task> plot@<task>; "
                  "dvc queue start -j 2; stage times and peak RSS by bench/sweep.py's python shim",
           "queue_wall_s": queue_s, "queue_run": dict(sweep.RUN),
           "stages_span_s": sweep.span(sweep.stage_log(project)), "statuses": statuses,
           "targets": check_targets(results, queue_s, alone),
           "alone": {t: {str(n): c for n, c in v.items()} for t, v in (alone or {}).items()},
           "tasks": results}
    Path(out).write_text(json.dumps(doc, indent=2) + "\n")
    figure(results, figure_path, alone)
    return doc

if __name__ == "__main__":
    main()
