"""Two runs of the pipeline compared metric by metric (what `python -m stages.compare` prints).

Each side is the R per-replicate values of a run (chapter4/replicates.py reads them). Per task and metric: mean
and sd of A and B, the difference B - A with its 95% confidence interval, Welch's p (scipy.stats.ttest_ind,
unequal variances; the interval on the same Welch-Satterthwaite df), that p adjusted by Holm-Bonferroni over the
m tests of the compare, and a verdict from the adjusted p: better or worse when it is < 0.05 (accuracy up is
better; loss, MAE and MSE down are better), else no detectable difference. For each test also the difference
detected with 80% power at level 0.05 / m (Holm's strictest step) and the replicates per side that would detect
the difference seen (chapter4/significance.py: power of the test as run, its df estimated from the samples).
"""
import json
import math
import statistics
import warnings

from chapter4 import significance, tasks

ALPHA = significance.ALPHA
TEST = "Welch's t-test (two-sided, unequal variances) on the replicates of A and B"
INTERVAL = "95% confidence interval of B - A, Welch-Satterthwaite degrees of freedom"
CORRECTION = "Holm-Bonferroni over the tests of this compare; the verdict comes from the adjusted p"
POWER = ("80% power of Welch's test as run (its df estimated from the samples) at level 0.05 / m, m = the tests "
         "of this compare: the smallest |B - A| detected, and the replicates per side (n vs n) that detect the "
         "difference seen")
LOWER_IS_BETTER = ("loss", "mae", "mse")
HIGHER_IS_BETTER = ("accuracy",)


def direction(metric):
    """+1 when higher is better, -1 when lower is better, 0 when the name does not say."""
    leaf = metric.rsplit(".", 1)[-1]
    return 1 if leaf.endswith(HIGHER_IS_BETTER) else -1 if leaf.endswith(LOWER_IS_BETTER) else 0


def _finite(x):
    return float(x) if x is not None and math.isfinite(x) else None


def compare(a, b, sign, tests=1):
    """Two lists of replicate values -> the numbers and the verdict for B against A (sign: see `direction`), as
    one test of `tests` (its p is taken as Holm's adjusted one: right for one test; `rows` corrects many)."""
    row = welch(a, b)
    return decide(row, sign, row["p"], tests) if row["p"] is not None else row


def welch(a, b):
    """Two lists of replicate values -> Welch's test of B against A (p None, with the reason as the verdict,
    where there is no test)."""
    ok = all(math.isfinite(v) for v in a + b)
    mean_a = _finite(statistics.fmean(a)) if a and ok else None
    mean_b = _finite(statistics.fmean(b)) if b and ok else None
    row = {"n_a": len(a), "n_b": len(b), "mean_a": mean_a, "mean_b": mean_b,
           "sd_a": _finite(statistics.stdev(a)) if len(a) > 1 and ok else None,
           "sd_b": _finite(statistics.stdev(b)) if len(b) > 1 and ok else None,
           "diff": _finite(mean_b - mean_a) if None not in (mean_a, mean_b) else None,
           "ci95_low": None, "ci95_high": None, "p": None, "p_holm": None, "detectable": None,
           "replicates_needed": None}
    n = f"n={len(a)} vs {len(b)}"
    verdict = None
    if not a or not b:
        verdict = f"no values in {'A' if not a else 'B'}"
    elif not ok:
        verdict = f"no test possible (non-finite values in {'A' if not all(map(math.isfinite, a)) else 'B'})"
    elif min(len(a), len(b)) < 2:
        verdict = f"no test possible ({n}: needs 2 per side)"
    elif min(a) == max(a) and min(b) == max(b):       # scipy: nan, or p = 0 on one degree of freedom
        verdict = (f"no detectable difference ({n}, identical values)" if a[0] == b[0]
                   else f"no test possible ({n}, zero variance on both sides)")
    else:
        from scipy import stats as scipy_stats
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)   # near-constant samples: scipy's precision note
            result = scipy_stats.ttest_ind(b, a, equal_var=False)
            ci = result.confidence_interval(0.95)
        p, low, high = _finite(result.pvalue), _finite(ci.low), _finite(ci.high)
        if None in (p, low, high):
            verdict = f"no test possible ({n}: scipy gives no p-value)"
        else:
            row.update(p=p, ci95_low=low, ci95_high=high)
    row["verdict"] = verdict
    return row


def decide(row, sign, p_adjusted, tests):
    """The verdict from the adjusted p, and the power figures at level ALPHA / tests."""
    alpha = ALPHA / tests
    row["p_holm"] = p_adjusted
    row["detectable"] = _finite(significance.detectable(row["sd_a"], row["n_a"], row["sd_b"], row["n_b"], alpha))
    needed = significance.replicates_needed(row["diff"], row["sd_a"], row["sd_b"], alpha)
    row["replicates_needed"] = needed
    if p_adjusted >= ALPHA:
        row["verdict"] = f"no detectable difference (n={row['n_a']} vs {row['n_b']})"
    elif sign == 0:
        row["verdict"] = "different"
    else:
        row["verdict"] = "better" if (row["diff"] > 0) == (sign > 0) else "worse"
    return row


def family(table, signs):
    """Holm's correction over the rows that have a test: adjusted p, verdicts and power at level 0.05 / m."""
    adjusted = significance.holm([r["p"] for r in table])
    tests = sum(p is not None for p in adjusted)
    for row, sign, p in zip(table, signs, adjusted):
        if p is not None:
            decide(row, sign, p, tests)
    return table


def rows(values_a, values_b):
    """One row per task and metric found on either side, tasks in the chapter's order."""
    out, signs = [], []
    for task in tasks.TASKS:
        a, b = values_a.get(task, {}), values_b.get(task, {})
        for metric in [*a, *(m for m in b if m not in a)]:
            signs.append(direction(metric))
            out.append({"task": task, "metric": metric, **welch(a.get(metric, []), b.get(metric, []))})
    return family(out, signs)


# --- output -------------------------------------------------------------------------------------------------

def num(x, signed=False):
    """A mean or difference as the tables print it (4 decimals; "-" for none)."""
    return "-" if x is None else f"{x:+.4f}" if signed else f"{x:.4f}"


def pvalue(x):
    """A p-value as the tables print it (2 significant digits; "-" for none)."""
    return "-" if x is None else f"{x:.2g}"


def difference(row):
    """B - A [95% CI] of a Welch row."""
    ci = "" if row["ci95_low"] is None else f" [{num(row['ci95_low'], True)}, {num(row['ci95_high'], True)}]"
    return num(row["diff"], True) + ci


def text_table(lines):
    """Rows of cells (the first the header) as aligned plain-text columns."""
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in lines]


def md_table(lines):
    """Rows of cells (the first the header) as a Markdown table."""
    row = lambda cells: "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"
    return [row(lines[0]), row(["---"] * len(lines[0])), *map(row, lines[1:])]


def _cells(row):
    spread = lambda m, s: num(m) + ("" if s is None else f" ± {s:.4f}")
    needed = row["replicates_needed"]
    return [row["task"], row["metric"], spread(row["mean_a"], row["sd_a"]), spread(row["mean_b"], row["sd_b"]),
            difference(row), pvalue(row["p"]), pvalue(row["p_holm"]), row["verdict"],
            "-" if row["detectable"] is None else f"±{row['detectable']:.4f}",
            "-" if row["p_holm"] is None or row["p_holm"] < ALPHA else "B - A = 0" if row["diff"] == 0 else
            "more than 10000" if needed is None else f"-S replicates={needed}"]


HEADER = ["task", "metric", "A mean ± sd", "B mean ± sd", "B - A [95% CI]", "p", "Holm p", "verdict",
          "detectable (80% power)", "to detect B - A"]


def _title(side_a, side_b):
    name = lambda s: s[0] if s[1] is None else f"{s[0]} ({s[1][:7]})"
    return (f"A = {name(side_a)}, B = {name(side_b)}",
            f"{TEST}, Holm-adjusted p < {ALPHA} (Holm-Bonferroni over the table's tests); {INTERVAL}; "
            f"detectable: the |B - A| found 4 times in 5 at these n and sds")


def render_text(side_a, side_b, table):
    return "\n".join([*_title(side_a, side_b), ""] + text_table([HEADER, *map(_cells, table)]))


def render_md(side_a, side_b, table):
    title, method = _title(side_a, side_b)
    return "\n".join([f"**{title}**: {method}", ""] + md_table([HEADER, *map(_cells, table)]))


def render_json(side_a, side_b, table):
    side = lambda s: {"rev": s[0], "commit": s[1]}
    return json.dumps({"a": side(side_a), "b": side(side_b), "test": TEST, "interval": INTERVAL, "alpha": ALPHA,
                       "correction": CORRECTION, "power": POWER, "rows": table}, allow_nan=False)
