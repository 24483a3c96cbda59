"""bench/fidelity.py, the fidelity study's statistics, each against an independent computation: TOST against
scipy's one-sided Welch tests and against simulation, pooling against the textbook formulas."""
import numpy as np
import pytest
from scipy import stats as scipy_stats

from bench import fidelity


@pytest.mark.parametrize("seed", range(5))
def test_tost_is_two_one_sided_welch_tests(seed):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(0.79, 0.005, 8), rng.normal(0.79 + rng.uniform(-0.01, 0.01), 0.006, 12)
    for margin in (0.005, 0.01):
        result = fidelity.tost(list(a), list(b), margin)
        low = scipy_stats.ttest_ind(b + margin, a, equal_var=False, alternative="greater").pvalue
        high = scipy_stats.ttest_ind(b - margin, a, equal_var=False, alternative="less").pvalue
        assert (result["p_low"], result["p_high"]) == pytest.approx((low, high), rel=1e-9)
        assert result["p"] == pytest.approx(max(low, high), rel=1e-9)


def test_tost_on_constant_samples_is_decided_by_the_exact_difference():
    assert fidelity.tost([0.8] * 4, [0.8] * 4, 0.01)["p"] == 0.0            # inside the margin: equivalent
    assert fidelity.tost([0.8] * 4, [0.805] * 3, 0.01)["p"] == 0.0
    assert fidelity.tost([0.8] * 4, [0.83] * 3, 0.01)["p"] == 1.0           # outside: not shown equivalent
    assert fidelity.tost([0.8] * 4, [0.81] * 3, 0.01)["p"] == 1.0           # on the bound: not inside it


def simulated_tost_power(n, sd, margin, alpha=0.05, draws=40_000, seed=0):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(0, sd, size=(2, draws, n))
    low = scipy_stats.ttest_ind(b + margin, a, axis=1, equal_var=False, alternative="greater").pvalue
    high = scipy_stats.ttest_ind(b - margin, a, axis=1, equal_var=False, alternative="less").pvalue
    return float(np.mean(np.maximum(low, high) < alpha))


@pytest.mark.parametrize("n, sd, margin", [(3, 0.004, 0.01), (6, 0.005, 0.01), (12, 0.12, 0.15), (5, 0.065, 0.15)])
def test_tost_power_is_the_test_as_run(n, sd, margin):
    assert fidelity.tost_power(n, sd, margin) == pytest.approx(simulated_tost_power(n, sd, margin), abs=0.015)


def test_tost_replicates_is_the_fewest_with_80_percent_power():
    for sd, margin in [(0.005, 0.01), (0.0055, 0.01), (0.12, 0.15), (0.065, 0.15)]:
        n = fidelity.tost_replicates(sd, margin)
        assert fidelity.tost_power(n, sd, margin) >= 0.8 > fidelity.tost_power(n - 1, sd, margin)
    assert fidelity.tost_replicates(1.0, 1e-4, most=1000) is None


STUDIES = [(-0.0062, 0.0027), (0.0037, 0.0020), (-0.0018, 0.0029), (0.0011, 0.0021)]


def test_pooled_is_the_inverse_variance_mean_with_cochrans_q_and_dersimonian_laird():
    out = fidelity.pooled(STUDIES)
    d, se = np.array(STUDIES).T
    w = 1 / se ** 2
    mean = (w * d).sum() / w.sum()
    q = (w * (d - mean) ** 2).sum()
    assert out["diff"] == pytest.approx(mean) and out["se"] == pytest.approx(w.sum() ** -0.5)
    assert out["q"] == pytest.approx(q) and out["p"] == pytest.approx(scipy_stats.chi2.sf(q, 3))
    assert out["i2"] == pytest.approx((q - 3) / q)
    tau2 = max(0.0, (q - 3) / (w.sum() - (w ** 2).sum() / w.sum()))          # DerSimonian and Laird (1986)
    w_re = 1 / (se ** 2 + tau2)
    re = out["random"]
    assert re["tau2"] == pytest.approx(tau2) and re["diff"] == pytest.approx((w_re * d).sum() / w_re.sum())
    assert re["se"] == pytest.approx(w_re.sum() ** -0.5)
    assert re["ci95"] == pytest.approx([re["diff"] - 1.959964 * re["se"], re["diff"] + 1.959964 * re["se"]])
    assert fidelity.headline(out) == ("random effects", re)              # Q's p = 0.025: they disagree


def test_agreeing_studies_read_the_fixed_effect_and_one_study_is_itself():
    out = fidelity.pooled([(0.001, 0.002), (0.0012, 0.0025)])
    assert out["p"] > 0.05 and out["random"]["tau2"] == 0.0 and fidelity.headline(out) == ("fixed effect", out)
    one = fidelity.pooled([(0.001, 0.002)])
    assert one["diff"] == 0.001 and one["q"] is None and fidelity.headline(one)[0] == "fixed effect"


@pytest.mark.parametrize("studies", [[(0.001, 0.0), (0.002, 0.001)], [(float("nan"), 0.001)], []])
def test_pooled_refuses_a_study_it_cannot_weigh(studies):
    with pytest.raises(ValueError, match="standard error > 0"):
        fidelity.pooled(studies)


def test_pooled_tost_is_two_one_sided_z_tests():
    assert fidelity.pooled_tost(0.0, 0.004, 0.01) == pytest.approx(scipy_stats.norm.sf(2.5))
    assert fidelity.pooled_tost(0.008, 0.004, 0.01) == pytest.approx(scipy_stats.norm.sf(0.5))
