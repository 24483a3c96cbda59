"""Tests over replicates (compare, the sweep, the benchmarks): Holm's correction, Welch's test and its power as
run. No stage imports this module, so a change here re-runs no training (scipy loads inside each function).

Every test here is Welch's: two samples of replicates, unequal variances, the Welch-Satterthwaite degrees of
freedom at the observed standard deviations (what scipy.stats.ttest_ind(equal_var=False) computes).
"""
import functools
import math

import numpy as np

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
