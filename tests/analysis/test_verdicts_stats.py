"""The verdicts' tests (kdplatform.analysis.stats) against brute force and independent scipy calls on
small inputs: the Hodges-Lehmann shift and its interval from all pairwise differences, exact intervals,
the trend test's exact enumeration, and the outcome rule."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats as sps

from kdplatform.analysis import stats


def test_decide_rule():
    r = stats.TestResult("t", effect=-1.0, ci_low=-2, ci_high=-0.5, p_value=0.01, n=10)
    assert stats.decide(r, "less") == "reproduced" and stats.decide(r, "greater") == "contradicted"
    assert stats.decide(stats.TestResult("t", -1.0, -2, 0.5, 0.05, 10), "less") == "inconclusive"
    assert stats.decide(stats.TestResult("t", 0.3, 0.2, 0.4, 0.001, 10, null=0.1), "less") == "contradicted"
    assert stats.decide(stats.TestResult("t", 0.3, 0.2, 0.4, float("nan"), 10), "greater") == "inconclusive"


@pytest.mark.parametrize(("k", "n"), [(0, 10), (3, 20), (20, 20), (45, 50), (1, 1)])
def test_clopper_pearson_is_scipys_exact_interval(k, n):
    ci = sps.binomtest(k, n).proportion_ci(method="exact")
    assert np.allclose(stats.clopper_pearson(k, n), (ci.low, ci.high))


def test_paired_binary_is_mcnemar_on_summed_discordant_pairs():
    rng = np.random.default_rng(0)
    x, y = rng.random((3, 50)) < 0.3, rng.random((3, 50)) < 0.5
    r = stats.paired_binary(x, y)
    n_x, n_y = int((x & ~y).sum()), int((y & ~x).sum())
    assert r.p_value == sps.binomtest(n_x, n_x + n_y).pvalue
    assert np.isclose(r.effect, x.mean() - y.mean())
    assert r.ci_low < r.effect < r.ci_high
    assert stats.paired_binary(x, x).p_value == 1.0


def test_paired_t_against_the_t_distribution():
    x, y = np.array([6.31, 6.40, 6.36]), np.array([6.45, 6.52, 6.49])
    d = x - y
    t = d.mean() / (d.std(ddof=1) / np.sqrt(3))
    r = stats.paired_t(x, y)
    assert np.isclose(r.p_value, 2 * sps.t.sf(abs(t), 2))
    half = sps.t.ppf(0.975, 2) * d.std(ddof=1) / np.sqrt(3)
    assert np.allclose([r.ci_low, r.ci_high], [d.mean() - half, d.mean() + half])
    with pytest.raises(ValueError):
        stats.paired_t(x[:1], y[:1])


def test_shift_is_hodges_lehmann_with_order_statistic_interval():
    rng = np.random.default_rng(1)
    x, y = np.round(rng.normal(0, 3, 23)), np.round(rng.normal(2, 3, 31))
    r = stats.shift(x, y)
    diffs = np.sort(np.subtract.outer(x, y).ravel())
    assert np.isclose(r.effect, np.median(diffs))
    n, m = len(x), len(y)
    k = int(np.floor(n * m / 2 - sps.norm.ppf(0.975) * np.sqrt(n * m * (n + m + 1) / 12)))
    assert np.allclose([r.ci_low, r.ci_high], [diffs[k - 1], diffs[n * m - k]])
    assert r.p_value == sps.mannwhitneyu(x, y, alternative="two-sided").pvalue


def test_trend_exact_on_few_rows():
    """Three mixed rows at two temperatures: 2^3 relabellings, enumerated by scipy and here."""
    m = np.array([[1, 0], [1, 0], [1, 0], [0, 0], [1, 1]])
    r = stats.trend(m, np.array([1.0, 2.0]))
    assert np.isclose(r.effect, (m[:, 1].mean() - m[:, 0].mean()) / 1.0)
    slopes = [np.mean([(b - a) for a, b in rows]) for rows in itertools.product([(1, 0), (0, 1)], repeat=3)]
    obs = np.mean([-1, -1, -1])
    assert np.isclose(r.p_value, np.mean(np.abs(slopes) >= abs(obs) - 1e-12))


def test_auc_trials_median_bound():
    auc = np.array([0.7, 0.8, 0.75])
    r = stats.auc_trials(auc, np.full(3, 15), np.full(3, 45))
    se = np.sqrt(61 / (12 * 15 * 45))
    assert np.isclose(r.p_value, min(1, 4 * sps.norm.sf((0.75 - 0.5) / se)))
    assert r.effect == 0.75 and np.isclose(r.ci_high - r.effect, sps.norm.ppf(0.975) * se)
