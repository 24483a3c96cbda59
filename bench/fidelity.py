"""The fidelity study's statistics (bench/seeds.py): equivalence of the pipeline and the book's code by TOST, the
seeds TOST needs, and the pooled difference over the recorded studies (fixed and random effects).

TOST: two one-sided Welch tests of B - A within +-margin (chapter4/significance.py's Welch standard error and degrees
of freedom). Pooling: statsmodels' `combine_effects`, inverse variance (fixed effect) with Cochran's Q and I^2,
and the DerSimonian-Laird random-effects estimate with its between-study variance tau^2, which is the one to
read when Q says the studies disagree (p < 0.05).
"""
import numpy as np

from chapter4 import significance

ALPHA = significance.ALPHA


def tost(a, b, margin, alpha=ALPHA):
    """Two one-sided Welch tests of equivalence of B and A within +-margin: H0 B - A <= -margin (p_low) and H0
    B - A >= +margin (p_high); equivalent at level alpha when their larger p (returned as "p") is < alpha.
    Two constant samples: the difference is known exactly, so each p is 0 when it lies strictly inside its
    bound and 1 otherwise."""
    from scipy.special import stdtr
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    se, df = significance.welch(float(a.std(ddof=1)), len(a), float(b.std(ddof=1)), len(b))
    diff = float(b.mean() - a.mean())
    if se == 0:
        p_low, p_high = float(not diff > -margin), float(not diff < margin)
    else:
        p_low, p_high = float(stdtr(df, -(diff + margin) / se)), float(stdtr(df, (diff - margin) / se))
    return {"margin": margin, "diff": diff, "p_low": p_low, "p_high": p_high, "p": max(p_low, p_high)}


def tost_power(n, sd, margin, alpha=ALPHA):
    """Power of TOST at `alpha`, n vs n replicates with sd `sd` on both sides, when the two truly agree: the
    test as run (se and df estimated from the samples, `significance.se_grid`). Given the sample variances, D ~
    Normal(0, sigma^2), and TOST rejects both hypotheses when |D| < margin - c se_hat (c: the one-sided t
    quantile at the Welch df); power = the mean over the variances of P(|D| < margin - c se_hat)."""
    from scipy.special import ndtr, stdtrit
    sigma, se_hat, df = significance.se_grid(float(sd), int(n), float(sd), int(n))
    room = np.maximum(margin - stdtrit(df, 1 - alpha) * se_hat, 0.0)
    return float(np.mean(ndtr(room / sigma) - ndtr(-room / sigma)))


def tost_replicates(sd, margin, alpha=ALPHA, target=significance.POWER, most=10_000):
    """Replicates per side (n vs n, both sides with standard deviation `sd`) for TOST at `alpha` to show
    equivalence within +-margin with probability `target` when the true difference is 0 (None: more than
    `most`)."""
    if not tost_power(most, sd, margin, alpha) >= target:
        return None
    low, high = 1, 2                             # tost_power(low) < target <= tost_power(high); it grows with n
    while tost_power(high, sd, margin, alpha) < target:
        low, high = high, 2 * high
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if tost_power(mid, sd, margin, alpha) < target else (low, mid)
    return high


def pooled(studies):
    """Studies [(diff, se), ...] -> the fixed-effect (inverse-variance) difference with its se and normal 95%
    interval, Cochran's Q on k - 1 degrees of freedom with its chi-square p, I^2 = max(0, (Q - df) / Q), and
    the DerSimonian-Laird random-effects difference, se, interval and tau^2 (statsmodels). One study: itself,
    no Q. A study with se 0 (no spread on either side) cannot be weighted: ValueError."""
    d, se = np.array([s[0] for s in studies], dtype=np.float64), np.array([s[1] for s in studies], np.float64)
    if not len(d) or not np.all(np.isfinite(d)) or not np.all(se > 0) or not np.all(np.isfinite(se)):
        raise ValueError(f"pooled: every study needs a finite difference and a standard error > 0, got {studies}")
    if len(d) == 1:
        from scipy.stats import norm
        half = float(norm.ppf(0.975)) * float(se[0])
        one = {"diff": float(d[0]), "se": float(se[0]), "ci95": [float(d[0]) - half, float(d[0]) + half]}
        return {**one, "q": None, "df": 0, "p": None, "i2": None, "random": {**one, "tau2": 0.0}}
    from statsmodels.stats.meta_analysis import combine_effects
    with np.errstate(invalid="ignore"):           # statsmodels' HKSJ variants, unused here, take sqrt(< 0)
        res = combine_effects(d, se ** 2, method_re="dl")
        fixed, random = res.conf_int(alpha=0.05, use_t=False)[:2]
    q, df = float(res.q), len(d) - 1
    out = {"diff": float(res.mean_effect_fe), "se": float(res.sd_eff_w_fe), "ci95": [float(x) for x in fixed],
           "q": q, "df": df, "p": float(res.test_homogeneity().pvalue), "i2": max(0.0, float(res.i2))}
    if q <= df:         # DerSimonian-Laird's tau^2 = max(0, (Q - df) / c) is 0, so random effects = fixed effect
        # (statsmodels 0.15 leaves (Q - df) / c negative here, which would weigh the studies wrongly)
        return out | {"random": {**{k: out[k] for k in ("diff", "se", "ci95")}, "tau2": 0.0}}
    return out | {"random": {"diff": float(res.mean_effect_re), "se": float(res.sd_eff_w_re),
                             "ci95": [float(x) for x in random], "tau2": float(res.tau2)}}


def headline(pool):
    """The estimate to read: random effects when Q says the studies disagree (p < 0.05), else fixed effect."""
    disagree = pool["p"] is not None and pool["p"] < ALPHA
    return ("random effects", pool["random"]) if disagree else ("fixed effect", pool)


def pooled_tost(diff, se, margin):
    """TOST of a pooled difference (normal, known se): p of the larger of the two one-sided z tests."""
    from scipy.stats import norm
    return max(float(norm.cdf(-(diff + margin) / se)), float(norm.cdf((diff - margin) / se)))
