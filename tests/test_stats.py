"""chapter4/stats.py's tests over replicates, each against an independent computation; and compare's Holm
correction on synthetic replicate files with no difference (no training, fast)."""
import numpy as np
import pytest
from scipy import optimize
from scipy import stats as scipy_stats

from chapter4 import stats
from stages import compare


def test_holm_by_hand():
    # sorted: 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 = 0.04 -> 0.06 (never below the last)
    assert stats.holm([0.01, 0.04, None, 0.03, 0.005]) == pytest.approx([0.03, 0.06, None, 0.06, 0.02])
    assert stats.holm([None]) == [None] and stats.holm([0.3, 0.6]) == [0.6, 0.6]


def holm_by_definition(p, alpha):
    """Holm's step-down procedure as stated: reject the smallest p while p_(i) < alpha / (m - i), then stop."""
    order, rejected = np.argsort(p, kind="stable"), set()
    for i, j in enumerate(order):
        if p[j] >= alpha / (len(p) - i):
            break
        rejected.add(j)
    return rejected


@pytest.mark.parametrize("seed", range(20))
def test_holm_adjusted_p_rejects_what_the_step_down_procedure_rejects(seed):
    rng = np.random.default_rng(seed)
    p = list(rng.uniform(0, 0.2, size=rng.integers(1, 12)) ** 2)
    adjusted = stats.holm(p)
    for alpha in (0.001, 0.01, 0.02, 0.05, 0.1):
        assert {i for i, q in enumerate(adjusted) if q < alpha} == holm_by_definition(p, alpha)


def power_by_scipy_stats(delta, sd_a, n_a, sd_b, n_b, alpha):
    se = np.sqrt(sd_a ** 2 / n_a + sd_b ** 2 / n_b)
    df = se ** 4 / ((sd_a ** 2 / n_a) ** 2 / (n_a - 1) + (sd_b ** 2 / n_b) ** 2 / (n_b - 1))
    crit = scipy_stats.t.ppf(1 - alpha / 2, df)
    # P(T > crit) + P(T < -crit); the second as P(T' > crit) for noncentrality -delta/se (nct.cdf is nan far out)
    return scipy_stats.nct.sf(crit, df, delta / se) + scipy_stats.nct.sf(crit, df, -delta / se)


@pytest.mark.parametrize("sd_a, n_a, sd_b, n_b, alpha", [
    (0.005, 5, 0.005, 5, 0.05), (0.0045, 8, 0.006, 8, 0.05), (0.1, 5, 0.03, 5, 0.05 / 7), (2.0, 3, 1.0, 12, 0.01)])
def test_detectable_difference_is_where_the_noncentral_t_power_is_80_percent(sd_a, n_a, sd_b, n_b, alpha):
    mde = stats.detectable(sd_a, n_a, sd_b, n_b, alpha)
    se = np.sqrt(sd_a ** 2 / n_a + sd_b ** 2 / n_b)
    reference = optimize.brentq(lambda d: power_by_scipy_stats(d, sd_a, n_a, sd_b, n_b, alpha) - 0.8, 1e-9, 50 * se)
    assert mde == pytest.approx(reference, rel=1e-6)
    # and by simulation: Welch's test on normal samples with that true difference detects it ~80% of the time
    rng = np.random.default_rng(1)
    a = rng.normal(0, sd_a, size=(4000, n_a))
    b = rng.normal(mde, sd_b, size=(4000, n_b))
    detected = np.mean(scipy_stats.ttest_ind(b, a, axis=1, equal_var=False).pvalue < alpha)
    assert 0.75 < detected < 0.85


def test_replicates_needed_is_the_fewest_with_80_percent_power():
    for delta, sd_a, sd_b, alpha in [(0.0062, 0.004, 0.006, 0.05), (0.01, 0.005, 0.005, 0.05 / 7), (0.1, 0.1, 0.2, 0.05)]:
        n = stats.replicates_needed(delta, sd_a, sd_b, alpha)
        assert power_by_scipy_stats(delta, sd_a, n, sd_b, n, alpha) >= 0.8
        assert power_by_scipy_stats(delta, sd_a, n - 1, sd_b, n - 1, alpha) < 0.8
    assert stats.replicates_needed(0.0, 0.1, 0.1) is None and stats.replicates_needed(1e-6, 1.0, 1.0) is None


@pytest.mark.parametrize("seed", range(5))
def test_tost_is_two_one_sided_welch_tests(seed):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(0.79, 0.005, 8), rng.normal(0.79 + rng.uniform(-0.01, 0.01), 0.006, 12)
    for margin in (0.005, 0.01):
        result = stats.tost(list(a), list(b), margin)
        low = scipy_stats.ttest_ind(b + margin, a, equal_var=False, alternative="greater").pvalue
        high = scipy_stats.ttest_ind(b - margin, a, equal_var=False, alternative="less").pvalue
        assert (result["p_low"], result["p_high"]) == pytest.approx((low, high), rel=1e-9)
        assert result["p"] == pytest.approx(max(low, high), rel=1e-9)


def test_pooled_is_the_inverse_variance_mean_with_cochrans_q():
    studies = [(-0.0008, 0.0027), (-0.0062, 0.0026), (0.0037, 0.0020), (-0.0021, 0.0018)]
    out = stats.pooled(studies)
    w = [1 / s ** 2 for _, s in studies]
    mean = sum(wi * d for wi, (d, _) in zip(w, studies)) / sum(w)
    q = sum(wi * (d - mean) ** 2 for wi, (d, _) in zip(w, studies))
    assert out["diff"] == pytest.approx(mean) and out["se"] == pytest.approx(sum(w) ** -0.5)
    assert out["q"] == pytest.approx(q) and out["p"] == pytest.approx(scipy_stats.chi2.sf(q, 3))
    assert out["i2"] == pytest.approx((q - 3) / q)


METRICS = {"imdb": ["test.accuracy", "test.loss"], "reuters": ["test.accuracy", "test.loss"],
           "housing": ["test.mae", "test.mse", "kfold.mean_mae"]}


def test_compare_family_wise_false_verdicts_stay_under_5_percent(monkeypatch):
    """A/A on synthetic replicates: both sides from one distribution, 5 replicates, the 7 metrics of a real
    compare (accuracy and loss correlated, as in the pipeline). compare's Holm step (`family`, on Welch p-values
    computed for all draws at once by scipy) keeps "any false verdict" <= 5%; the uncorrected tests do not."""
    monkeypatch.setattr(stats, "detectable", lambda *a, **k: None)           # verdicts only: faster
    monkeypatch.setattr(stats, "replicates_needed", lambda *a, **k: None)
    rng = np.random.default_rng(2026)
    cov = np.eye(7)
    for i, j, r in [(0, 1, -0.7), (2, 3, -0.7), (4, 5, 0.9), (4, 6, 0.3), (5, 6, 0.3)]:
        cov[i, j] = cov[j, i] = r
    signs = [compare.direction(m) for ms in METRICS.values() for m in ms]
    draws = 4000
    a, b = rng.multivariate_normal(np.zeros(7), cov, size=(2, draws, 5))     # [draw, replicate, metric]
    p = scipy_stats.ttest_ind(b, a, axis=1, equal_var=False).pvalue            # [draw, metric]
    diff = b.mean(axis=1) - a.mean(axis=1)
    corrected = 0
    for d in range(draws):
        table = [{"p": float(p[d, k]), "diff": float(diff[d, k]), "n_a": 5, "n_b": 5, "sd_a": 1.0, "sd_b": 1.0}
                 for k in range(7)]
        corrected += any(r["verdict"] in ("better", "worse") for r in compare.family(table, signs))
    assert corrected / draws <= 0.05
    assert np.mean((p < 0.05).any(axis=1)) > 0.15                  # uncorrected: 7 tests at 0.05 each
    # and end to end, a few draws through compare.rows (Welch's test by compare itself): same verdicts
    for d in range(20):
        files = [{task: {m: list(side[d, :, KEYS.index((task, m))]) for m in ms} for task, ms in METRICS.items()}
                 for side in (a, b)]
        table = [{"p": float(p[d, k]), "diff": float(diff[d, k]), "n_a": 5, "n_b": 5, "sd_a": 1.0, "sd_b": 1.0}
                 for k in range(7)]
        assert [r["verdict"] for r in compare.rows(*files)] == [r["verdict"] for r in compare.family(table, signs)]


KEYS = [(t, m) for t, ms in METRICS.items() for m in ms]
