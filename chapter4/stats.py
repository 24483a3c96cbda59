"""Replicates: their seeds, and what a number over them reports (no TensorFlow; scipy loads when needed).

Every training run is repeated `replicates` times. Replicate r trains with seed `seed + 1000 * r` (replicate 0
is the single run's seed); a K-fold run's fold f adds f, as the folds of one run always did. A number over the
replicates is their mean, with the sample standard deviation, the Student-t 95% interval of the mean, and the
smallest and largest value: `summary("accuracy", [...])` -> {"accuracy": mean, "accuracy_std": sd,
"accuracy_ci95_low": ..., "accuracy_ci95_high": ..., "accuracy_min": ..., "accuracy_max": ...}. One run has
no spread: then only the value itself is reported.
"""
import functools
import math

import numpy as np

SEED_STRIDE = 1000         # > any fold count (k <= 404 training samples), so no two runs share a shuffle seed


def seeds(seed, replicates):
    """The seed of each replicate: seed, seed + 1000, seed + 2000, ..."""
    return [seed + SEED_STRIDE * r for r in range(replicates)]


def summary(name, values, digits=6):
    """Mean of `values` under `name`, and with two or more values their spread under `name_std`, ..."""
    values = np.asarray(values, dtype=np.float64)
    mean = float(values.mean())
    out = {name: round(mean, digits)}
    if len(values) < 2:
        return out
    sd = float(values.std(ddof=1))
    from scipy.special import stdtrit        # Student's t quantile (what scipy.stats.t.ppf calls; 1 s less import)
    half = float(stdtrit(len(values) - 1, 0.975)) * sd / np.sqrt(len(values))
    low, high = mean - half, mean + half
    return out | {f"{name}_std": round(sd, digits), f"{name}_ci95_low": round(float(low), digits),
                  f"{name}_ci95_high": round(float(high), digits), f"{name}_min": round(float(values.min()), digits),
                  f"{name}_max": round(float(values.max()), digits)}


def mean_curves(histories):
    """Per-epoch means of history dicts ({"loss": [per epoch], ...}) over runs (e.g. the folds of a replicate)."""
    return {k: np.mean([h[k] for h in histories], axis=0) for k in histories[0]}


def curves(histories, digits=6):
    """Per-epoch records over replicates' histories: [{"epoch": 1, "loss": mean, "loss_std": sd, "loss_min": ...,
    "loss_max": ...}, ...] (the spread only with two or more replicates: sample sd, min, max)."""
    keys, n = list(histories[0]), len(histories)
    values = {k: np.array([h[k] for h in histories], dtype=np.float64) for k in keys}     # [replicates, epochs]
    records = []
    for e in range(values[keys[0]].shape[1]):
        record = {"epoch": e + 1}
        for k in keys:
            column = values[k][:, e]
            record[k] = round(float(column.mean()), digits)
            if n > 1:
                record |= {f"{k}_std": round(float(column.std(ddof=1)), digits),
                           f"{k}_min": round(float(column.min()), digits),
                           f"{k}_max": round(float(column.max()), digits)}
        records.append(record)
    return records


# --- tests over replicates (compare, the sweep, the benchmarks): scipy loads inside each function ---------------
#
# Every test here is Welch's: two samples of replicates, unequal variances, the Welch-Satterthwaite degrees of
# freedom at the observed standard deviations (what scipy.stats.ttest_ind(equal_var=False) computes).

ALPHA = 0.05
POWER = 0.8
GRID = 200          # quantiles per sample variance in `power`: its value within 0.0002 of a 2000 x 2000 grid


def holm(pvalues):
    """Holm-Bonferroni adjusted p-values, in the order given: sorted ascending, the i-th smallest of m is
    multiplied by m - i (i from 0), then made non-decreasing along the sorted order and capped at 1. Rejecting
    where the adjusted p < alpha keeps the family-wise error rate of the m tests at alpha, whatever their
    correlation. None (a row without a test) stays None and is not one of the m; NaN (a test that gave no p)
    stays NaN and is one of them: it might have rejected. The numbers of statsmodels' `multipletests(method=
    "holm")` (tests/test_stats.py checks it), which costs a garbage collection per call: too slow for the
    thousands of calls of an A/A study."""
    tested = [i for i, p in enumerate(pvalues) if p is not None]
    ranked = sorted((i for i in tested if not math.isnan(pvalues[i])), key=lambda i: pvalues[i])
    adjusted, running = list(pvalues), 0.0
    for rank, i in enumerate(ranked):
        running = max(running, min(1.0, (len(tested) - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def welch(sd_a, n_a, sd_b, n_b):
    """(standard error of the difference of means, Welch-Satterthwaite degrees of freedom); (nan, nan) when a
    side has fewer than 2 values or no sd: no variance estimate there, so no test."""
    if min(n_a, n_b) < 2 or sd_a is None or sd_b is None:
        return math.nan, math.nan
    va, vb = sd_a ** 2 / n_a, sd_b ** 2 / n_b
    se = float(np.sqrt(va + vb))
    df = (va + vb) ** 2 / (va ** 2 / (n_a - 1) + vb ** 2 / (n_b - 1)) if va + vb > 0 else float(n_a + n_b - 2)
    return se, float(df)


@functools.lru_cache(maxsize=8)         # 0.6 MB each
def se_grid(sd_a, n_a, sd_b, n_b):
    """What Welch's test estimates from normal samples with these sds and sizes: (sigma, the true se of the
    difference of means; se_hat and df, arrays over a grid of the two sample variances). The variances are
    taken at GRID midpoint quantiles each of their scaled chi-square laws (scipy.stats.chi2), all pairs: each
    point weighs 1 / GRID^2, so a mean over the arrays is an expectation over the samples' variances."""
    from scipy.stats import chi2
    u = (np.arange(GRID) + 0.5) / GRID
    va = sd_a ** 2 / n_a * chi2.ppf(u, n_a - 1)[:, None] / (n_a - 1)
    vb = sd_b ** 2 / n_b * chi2.ppf(u, n_b - 1)[None, :] / (n_b - 1)
    va, vb = (v.ravel() for v in np.broadcast_arrays(va, vb))
    with np.errstate(invalid="ignore", divide="ignore"):    # one side without spread: df from the other side
        df = (va + vb) ** 2 / (va ** 2 / (n_a - 1) + vb ** 2 / (n_b - 1))
    se_hat = np.sqrt(va + vb)
    se_hat.flags.writeable = df.flags.writeable = False
    return math.sqrt(sd_a ** 2 / n_a + sd_b ** 2 / n_b), se_hat, df


@functools.lru_cache(maxsize=16)        # 0.3 MB each: compare's 7 metrics and more
def _thresholds(sd_a, n_a, sd_b, n_b, alpha):
    """(sigma, c * se_hat over `se_grid`): where the two-sided test at `alpha` starts rejecting."""
    from scipy.special import stdtrit
    sigma, se_hat, df = se_grid(sd_a, n_a, sd_b, n_b)
    return sigma, stdtrit(df, 1 - alpha / 2) * se_hat


def power(delta, sd_a, n_a, sd_b, n_b, alpha=ALPHA):
    """Power of the two-sided Welch test at level `alpha` against a true difference `delta` (normal replicates
    with these sds), the test as run: its se and df estimated from the samples. Given the two sample variances,
    the difference of means D ~ Normal(delta, sigma^2) is independent of them, and the test rejects when
    |D| > c se_hat (c: the t quantile at the Welch df of those variances); so power = the mean over the
    variances of Phi((delta - c se_hat) / sigma) + Phi((-delta - c se_hat) / sigma), on `se_grid` (no random
    draws: the same answer every call, smooth in delta). nan without a test."""
    from scipy.special import ndtr
    if math.isnan(welch(sd_a, n_a, sd_b, n_b)[0]) or not (sd_a > 0 or sd_b > 0):
        return math.nan
    sigma, threshold = _thresholds(float(sd_a), int(n_a), float(sd_b), int(n_b), float(alpha))
    return float(np.mean(ndtr((delta - threshold) / sigma) + ndtr((-delta - threshold) / sigma)))


def detectable(sd_a, n_a, sd_b, n_b, alpha=ALPHA, target=POWER):
    """The minimum detectable difference: the |B - A| that the two-sided Welch test at `alpha` detects with
    probability `target`, for these replicate counts and sds (None when there is no spread or no test)."""
    from scipy.optimize import brentq
    if math.isnan(power(0.0, sd_a, n_a, sd_b, n_b, alpha)):
        return None
    high = welch(sd_a, n_a, sd_b, n_b)[0]
    while power(high, sd_a, n_a, sd_b, n_b, alpha) < target:
        high *= 2
    return float(brentq(lambda d: power(d, sd_a, n_a, sd_b, n_b, alpha) - target, 0.0, high, xtol=high * 1e-9))


def replicates_needed(delta, sd_a, sd_b, alpha=ALPHA, target=POWER, most=10_000):
    """The fewest replicates per side (n vs n, these sds) with which the two-sided Welch test at `alpha` detects
    a true difference `delta` with probability `target`; None when more than `most` (or delta is 0)."""
    if not delta or sd_a is None or sd_b is None or not (sd_a > 0 or sd_b > 0):
        return None
    enough = lambda n: power(delta, sd_a, n, sd_b, n, alpha) >= target     # noqa: E731 (grows with n)
    if not enough(most):
        return None
    from scipy.stats import norm              # start from the normal approximation's n, then step to the exact one
    n = max(2, math.ceil((norm.ppf(1 - alpha / 2) + norm.ppf(target)) ** 2 * (sd_a ** 2 + sd_b ** 2) / delta ** 2))
    if enough(n):
        while n > 2 and enough(n - 1):
            n -= 1
        return n
    while not enough(n):                      # ends: enough(most)
        n += 1
    return n
