"""chapter4/significance.py's tests over replicates, each against an independent computation (statsmodels' Holm,
scipy's Welch test on simulated samples); and compare's Holm correction on synthetic replicate files with no
difference (no training, fast)."""
import numpy as np
import pytest
from scipy import optimize
from scipy import stats as scipy_stats
from statsmodels.stats.multitest import multipletests

from chapter4 import significance
from chapter4 import comparison as compare


def test_holm_by_hand():
    # sorted: 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 = 0.04 -> 0.06 (never below the last)
    assert significance.holm([0.01, 0.04, None, 0.03, 0.005]) == pytest.approx([0.03, 0.06, None, 0.06, 0.02])
    assert significance.holm([None]) == [None] and significance.holm([0.3, 0.6]) == [0.6, 0.6]


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
    adjusted = significance.holm(p)
    assert adjusted == pytest.approx(list(multipletests(p, method="holm")[1]), rel=1e-12)
    for alpha in (0.001, 0.01, 0.02, 0.05, 0.1):
        assert {i for i, q in enumerate(adjusted) if q < alpha} == holm_by_definition(p, alpha)


def simulated_power(delta, sd_a, n_a, sd_b, n_b, alpha, draws=40_000, seed=0):
    """How often scipy's Welch test on normal samples with true difference `delta` rejects at `alpha`."""
    rng = np.random.default_rng(seed)
    a = rng.normal(0.0, sd_a, size=(draws, n_a))
    b = rng.normal(delta, sd_b, size=(draws, n_b))
    return float(np.mean(scipy_stats.ttest_ind(b, a, axis=1, equal_var=False).pvalue < alpha))


# 40 000 draws: the simulated power's sd is 0.2 points at 80%, so +-1.5 points is 7.5 sds (a false failure
# about 1 in 10^13); the grid integration in significance.power is within 0.05 points.
@pytest.mark.parametrize("n", [2, 3, 5, 8, 16])
@pytest.mark.parametrize("alpha", [0.05, 0.05 / 7])        # one test, and Holm's strictest level in compare
def test_detectable_difference_is_detected_80_percent_of_the_time(n, alpha):
    mde = significance.detectable(1.0, n, 1.0, n, alpha)
    assert abs(simulated_power(mde, 1.0, n, 1.0, n, alpha, seed=n) - 0.8) <= 0.015


def test_the_noncentral_t_with_the_df_at_the_true_sds_was_optimistic():
    """The old method (noncentral t, Welch-Satterthwaite df at the true sds) printed 2.90 sd at n = 5, level
    0.05/7, where Welch's test as run has about 74% power: the new figure is larger, and the old one fails."""
    def noncentral_t_power(delta, n, alpha):
        se, df = np.sqrt(2 / n), 2 * n - 2
        crit = scipy_stats.t.ppf(1 - alpha / 2, df)
        return scipy_stats.nct.sf(crit, df, delta / se) + scipy_stats.nct.sf(crit, df, -delta / se)
    old = optimize.brentq(lambda d: noncentral_t_power(d, 5, 0.05 / 7) - 0.8, 0.1, 20)
    assert old == pytest.approx(2.90, abs=0.005)
    assert significance.detectable(1.0, 5, 1.0, 5, 0.05 / 7) == pytest.approx(3.09, abs=0.005)
    assert simulated_power(old, 1.0, 5, 1.0, 5, 0.05 / 7) < 0.8 - 0.03


@pytest.mark.parametrize("delta, sd_a, n_a, sd_b, n_b, alpha", [
    (0.004, 0.0045, 8, 0.006, 8, 0.05), (0.1, 0.1, 5, 0.03, 5, 0.05 / 7), (2.0, 2.0, 3, 1.0, 12, 0.01),
    (0.3, 0.0, 5, 0.2, 4, 0.05)])
def test_power_is_welchs_test_as_run(delta, sd_a, n_a, sd_b, n_b, alpha):
    """Unequal sds, unequal n, one side without spread: significance.power against scipy's Welch test on samples."""
    assert significance.power(delta, sd_a, n_a, sd_b, n_b, alpha) == \
        pytest.approx(simulated_power(delta, sd_a, n_a, sd_b, n_b, alpha), abs=0.015)


def test_replicates_needed_is_the_fewest_with_80_percent_power():
    for delta, sd_a, sd_b, alpha in [(0.0062, 0.004, 0.006, 0.05), (0.01, 0.005, 0.005, 0.05 / 7),
                                     (0.1, 0.1, 0.2, 0.05), (3.0, 1.0, 1.0, 0.05 / 7), (0.02, 0.004, 0.0, 0.05)]:
        n = significance.replicates_needed(delta, sd_a, sd_b, alpha)
        assert significance.power(delta, sd_a, n, sd_b, n, alpha) >= 0.8
        assert n == 2 or significance.power(delta, sd_a, n - 1, sd_b, n - 1, alpha) < 0.8
    assert significance.replicates_needed(3.0, 1.0, 1.0, 0.05 / 7) == 6    # the old method said 5: 74% power
    assert simulated_power(3.0, 1.0, 6, 1.0, 6, 0.05 / 7) > 0.8 - 0.015
    assert significance.replicates_needed(0.0, 0.1, 0.1) is None and significance.replicates_needed(1e-6, 1.0, 1.0) is None
    assert significance.replicates_needed(0.1, 0.0, 0.0) is None


def test_one_detectable_difference_integrates_one_grid():
    """compare asks for 7 detectable differences: each root search reuses one grid of the sample variances
    (the t quantiles are the costly part), so compare stays fast."""
    significance._thresholds.cache_clear()
    significance.se_grid.cache_clear()
    significance.detectable(0.0041, 5, 0.0053, 5, 0.05 / 7)
    assert significance._thresholds.cache_info().misses == 1 and significance._thresholds.cache_info().hits > 5
    assert significance.se_grid.cache_info().misses == 1


def test_edge_cases_give_a_defined_answer():
    nan = float("nan")
    assert significance.holm([nan, 0.01, 0.02]) == pytest.approx([nan, 0.03, 0.04], nan_ok=True)   # as statsmodels
    assert np.isnan(significance.holm([0.04, nan])[1]) and significance.holm([0.04, nan])[0] == pytest.approx(0.08)
    assert significance.holm([]) == [] and significance.holm([None, nan]) == pytest.approx([None, nan], nan_ok=True)
    se, df = significance.welch(0.1, 1, 0.2, 5)                       # n = 1: no variance estimate, so no test
    assert np.isnan(se) and np.isnan(df)
    assert np.isnan(significance.power(0.1, 0.1, 1, 0.2, 5)) and significance.detectable(0.1, 1, 0.2, 5) is None
    assert significance.detectable(0.0, 5, 0.0, 5) is None and significance.detectable(None, 5, 0.1, 5) is None
    assert significance.welch(0.0, 3, 0.0, 4) == (0.0, 5.0)


METRICS = {"imdb": ["test.accuracy", "test.loss"], "reuters": ["test.accuracy", "test.loss"],
           "housing": ["test.mae", "test.mse", "kfold.mean_mae"]}


def test_compare_family_wise_false_verdicts_stay_under_5_percent(monkeypatch):
    """A/A on synthetic replicates: both sides from one distribution, 5 replicates, the 7 metrics of a real
    compare (accuracy and loss correlated, as in the pipeline). compare's Holm step (`family`, on Welch p-values
    computed for all draws at once by scipy) keeps "any false verdict" <= 5%; the uncorrected tests do not."""
    monkeypatch.setattr(significance, "detectable", lambda *a, **k: None)           # verdicts only: faster
    monkeypatch.setattr(significance, "replicates_needed", lambda *a, **k: None)
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
