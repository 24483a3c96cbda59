"""Replicates: their seeds, and what a number over them reports (no TensorFlow; scipy loads when needed).

Every training run is repeated `replicates` times. Replicate r trains with seed `seed + 1000 * r` (replicate 0
is the single run's seed); a K-fold run's fold f adds f, as the folds of one run always did. A number over the
replicates is their mean, with the sample standard deviation, the Student-t 95% interval of the mean, and the
smallest and largest value: `summary("accuracy", [...])` -> {"accuracy": mean, "accuracy_std": sd,
"accuracy_ci95_low": ..., "accuracy_ci95_high": ..., "accuracy_min": ..., "accuracy_max": ...}. One run has
no spread: then only the value itself is reported.
"""
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


# --- tests over replicates (compare, the benchmarks): scipy loads inside each function --------------------------
#
# Every test here is Welch's: two samples of replicates, unequal variances, the Welch-Satterthwaite degrees of
# freedom at the observed standard deviations (what scipy.stats.ttest_ind(equal_var=False) computes).

ALPHA = 0.05
POWER = 0.8


def holm(pvalues):
    """Holm-Bonferroni adjusted p-values, in the order given (None, for a row without a test, stays None):
    sorted ascending, the i-th smallest of m is multiplied by m - i (i from 0), then made non-decreasing along
    the sorted order and capped at 1. Rejecting where the adjusted p < alpha keeps the family-wise error rate
    of the m tests at alpha, whatever their correlation."""
    order = sorted((i for i, p in enumerate(pvalues) if p is not None), key=lambda i: pvalues[i])
    adjusted, running = [None] * len(pvalues), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def welch(sd_a, n_a, sd_b, n_b):
    """(standard error of the difference of means, Welch-Satterthwaite degrees of freedom)."""
    va, vb = sd_a ** 2 / n_a, sd_b ** 2 / n_b
    se = float(np.sqrt(va + vb))
    df = (va + vb) ** 2 / (va ** 2 / (n_a - 1) + vb ** 2 / (n_b - 1)) if va + vb > 0 else float(n_a + n_b - 2)
    return se, float(df)


def power(delta, sd_a, n_a, sd_b, n_b, alpha=ALPHA):
    """Power of the two-sided Welch test at level `alpha` against a true difference `delta`: the statistic taken
    as noncentral t with the Welch-Satterthwaite df (at these sds) and noncentrality |delta| / se, both tails:
    P(T > t_crit) + P(T < -t_crit). (scipy.special's t and noncentral-t functions: what scipy.stats.t and
    scipy.stats.nct call, without their per-call overhead.)"""
    from scipy.special import nctdtr, stdtrit
    se, df = welch(sd_a, n_a, sd_b, n_b)
    crit, nc = float(stdtrit(df, 1 - alpha / 2)), abs(delta) / se
    far = 1 - float(nctdtr(df, -nc, crit))       # P(T < -t_crit) <= alpha / 2; nan where the cdf rounds to 1
    return float(1 - nctdtr(df, nc, crit)) + (far if math.isfinite(far) else 0.0)


def detectable(sd_a, n_a, sd_b, n_b, alpha=ALPHA, target=POWER):
    """The minimum detectable difference: the |B - A| that the two-sided Welch test at `alpha` detects with
    probability `target`, for these replicate counts and sds (None when there is no spread)."""
    from scipy.optimize import brentq
    se, _ = welch(sd_a, n_a, sd_b, n_b)
    if not se > 0:
        return None
    high = se
    while power(high, sd_a, n_a, sd_b, n_b, alpha) < target:
        high *= 2
    return float(brentq(lambda d: power(d, sd_a, n_a, sd_b, n_b, alpha) - target, 0.0, high, xtol=se * 1e-9))


def replicates_needed(delta, sd_a, sd_b, alpha=ALPHA, target=POWER, most=10_000):
    """The fewest replicates per side (n vs n, these sds) with which the two-sided Welch test at `alpha` detects
    a true difference `delta` with probability `target`; None when more than `most` (or delta is 0)."""
    if not delta or not (sd_a > 0 or sd_b > 0) or power(delta, sd_a, most, sd_b, most, alpha) < target:
        return None
    low, high = 1, 2                            # power grows with n: power(low) < target <= power(high)
    while power(delta, sd_a, high, sd_b, high, alpha) < target:
        low, high = high, min(2 * high, most)
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if power(delta, sd_a, mid, sd_b, mid, alpha) < target else (low, mid)
    return high


def tost(a, b, margin):
    """Two one-sided Welch tests of equivalence of B and A within +-margin: H0 B - A <= -margin (p_low) and H0
    B - A >= +margin (p_high); equivalent at level alpha when their larger p (returned as "p") is < alpha."""
    from scipy.special import stdtr
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    se, df = welch(a.std(ddof=1), len(a), b.std(ddof=1), len(b))
    diff = float(b.mean() - a.mean())
    p_low, p_high = float(stdtr(df, -(diff + margin) / se)), float(stdtr(df, (diff - margin) / se))
    return {"margin": margin, "diff": diff, "p_low": p_low, "p_high": p_high, "p": max(p_low, p_high)}


def tost_replicates(sd, margin, alpha=ALPHA, target=POWER, most=10_000):
    """Replicates per side (n vs n, both sides with standard deviation `sd`) for TOST at `alpha` to show
    equivalence within +-margin with probability `target` when the true difference is 0. Power: each one-sided
    statistic as noncentral t (df 2n - 2, Welch's at equal sds and n; noncentrality margin / se); the two
    failures are nearly disjoint, so power = 1 - 2 P(T < t_crit)."""
    from scipy.special import nctdtr, stdtrit

    def tost_power(n):
        se, df = welch(sd, n, sd, n)
        return 1 - 2 * float(nctdtr(df, margin / se, float(stdtrit(df, 1 - alpha))))
    return next((n for n in range(2, most + 1) if tost_power(n) >= target), None)


def pooled(studies):
    """Inverse-variance pooled difference over studies [(diff, se), ...] (fixed effect), with Cochran's Q, its
    chi-square p on k - 1 degrees of freedom and I^2 = max(0, (Q - df) / Q): the share of the spread between
    studies beyond what their own standard errors explain."""
    from scipy.stats import chi2, norm
    d, se = np.array([s[0] for s in studies], dtype=np.float64), np.array([s[1] for s in studies])
    w = 1 / se ** 2
    mean, error = float((w * d).sum() / w.sum()), float(1 / np.sqrt(w.sum()))
    q, df = float((w * (d - mean) ** 2).sum()), len(d) - 1
    half = float(norm.ppf(0.975)) * error
    return {"diff": mean, "se": error, "ci95": [mean - half, mean + half], "q": q, "df": df,
            "p": float(chi2.sf(q, df)) if df else None, "i2": max(0.0, (q - df) / q) if q > 0 else 0.0}
