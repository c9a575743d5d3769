"""The statistics behind the verdict lines: one function per test, plain arrays in, a `TestResult` out
(no database). Every test is two-sided; `decide` turns a result into the verdict's outcome, 'reproduced'
only when p < ALPHA in the paper's direction, 'contradicted' when p < ALPHA against it.

Tests are exact or permutation tests from scipy (statsmodels is not installed in the project's
environment): binomial tests for counts, a paired t-test where seeds are the unit, a Mann-Whitney U for
two independent samples and a within-example permutation test for a trend. Intervals are 95 %.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats

ALPHA = 0.05
LEVEL = 0.95
Direction = Literal["less", "greater"]


@dataclass(frozen=True)
class TestResult:
    """A test's effect (in the units of its inputs: a rate difference, a share, a shift), its 95 %
    interval, two-sided p-value and sample size. `null` is the effect under the null hypothesis (0 for
    differences, the reference for a share, 0.5 for an AUC)."""

    __test__ = False  # not a pytest test class

    test: str
    effect: float
    ci_low: float
    ci_high: float
    p_value: float
    n: int
    null: float = 0.0


def decide(result: TestResult, paper: Direction, alpha: float = ALPHA) -> str:
    """reproduced / contradicted when p < alpha with the effect on the paper's side of the null or the
    other; inconclusive otherwise (a NaN p-value included)."""
    if not result.p_value < alpha or result.effect == result.null:
        return "inconclusive"
    below = result.effect < result.null
    return "reproduced" if below == (paper == "less") else "contradicted"


def clopper_pearson(k: int, n: int) -> tuple[float, float]:
    """The exact (Clopper-Pearson) interval of a binomial proportion k / n, from beta quantiles: the
    interval binomtest's proportion_ci(method='exact') gives, without its root search."""
    a = (1 - LEVEL) / 2
    lo = float(stats.beta.ppf(a, k, n - k + 1)) if k > 0 else 0.0
    hi = float(stats.beta.ppf(1 - a, k + 1, n - k)) if k < n else 1.0
    return lo, hi


def paired_binary(x: np.ndarray, y: np.ndarray) -> TestResult:
    """Rate of x minus rate of y, where x[s, i] and y[s, i] are whether two models of seed pair s
    memorized example i (stratified exact McNemar).

    Within a seed pair, only discordant examples carry information, and under the null (both models
    memorize each example with the same probability) each one falls either way with probability 1/2;
    over the strata the discordant examples are independent, so the x-only count among them is
    Binomial(discordant, 1/2): the exact conditional test of a common odds ratio of 1 in matched pairs
    (the Mantel-Haenszel test of paired strata, exact). The interval is the Clopper-Pearson interval of
    the x-only share among discordant examples mapped to the rate difference, given their number.
    """
    x, y = np.atleast_2d(np.asarray(x, bool)), np.atleast_2d(np.asarray(y, bool))
    if x.shape != y.shape or x.size == 0:
        raise ValueError(
            f"paired_binary needs equal, non-empty (seeds, examples) arrays: {x.shape}, {y.shape}"
        )
    n_x, n_y = int((x & ~y).sum()), int((~x & y).sum())
    scale = (n_x + n_y) / x.size
    strata = f", {x.shape[0]} seed pairs" if x.shape[0] > 1 else ""
    name = f"exact McNemar ({n_x} vs {n_y} discordant{strata})"
    if n_x + n_y == 0:
        return TestResult(name, 0.0, 0.0, 0.0, 1.0, x.size)
    p = stats.binomtest(n_x, n_x + n_y, 0.5).pvalue
    lo, hi = clopper_pearson(n_x, n_x + n_y)
    effect = (n_x - n_y) / x.size
    return TestResult(name, effect, scale * (2 * lo - 1), scale * (2 * hi - 1), p, x.size)


def binomial_share(k: int, n: int, reference: float) -> TestResult:
    """Share k / n against a reference share (exact binomial test, Clopper-Pearson interval): examples
    are counted once each, and given n each falls in the share independently under the null."""
    if n <= 0:
        raise ValueError("binomial_share needs at least one example")
    b = stats.binomtest(int(k), int(n), reference)
    ci = b.proportion_ci(LEVEL, method="exact")
    return TestResult(
        f"exact binomial vs {100 * reference:g}%", k / n, ci.low, ci.high, b.pvalue, n, reference
    )


def paired_t(x: np.ndarray, y: np.ndarray, unit: str = "seeds") -> TestResult:
    """Mean of x - y over seed pairs (paired t-test and its t interval); `unit` names the pairs (seeds,
    or held-out examples scored by the same two models).

    Seeds are the unit: an exact sign-flip test over S seeds cannot go below p = 2^(1-S) (0.25 with 3
    seeds), so it could never decide; the t-test assumes normal seed-to-seed differences, fair for a
    loss averaged over many tokens.
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) != len(y) or len(x) < 2:
        raise ValueError(f"a paired t-test needs at least two pairs of {unit}")
    if np.ptp(x - y) == 0:
        raise ValueError(f"every pair of {unit} differs by the same amount, so the t-test is undefined")
    r = stats.ttest_rel(x, y)
    ci = r.confidence_interval(LEVEL)
    return TestResult(
        f"paired t-test over {len(x)} {unit}", float(np.mean(x - y)), ci.low, ci.high, r.pvalue, len(x)
    )


def _pairwise_quantile(x: np.ndarray, y: np.ndarray, j: float) -> float:
    """The j-th smallest of the len(x) * len(y) differences x_a - y_b (j may be fractional: the mean of
    its neighbours), by bisection on counts, without forming the differences."""
    ys = np.sort(y)

    def kth(k: int) -> float:
        lo, hi = float(x.min() - ys[-1]), float(x.max() - ys[0])
        for _ in range(100):
            mid = (lo + hi) / 2
            # differences <= mid: for each x_a, the y_b >= x_a - mid
            if int((len(ys) - np.searchsorted(ys, x - mid, side="left")).sum()) >= k:
                hi = mid
            else:
                lo = mid
            if hi - lo <= 1e-12 * max(1.0, abs(hi)):
                break
        return hi

    lo_k, hi_k = int(np.floor(j)), int(np.ceil(j))
    return kth(lo_k) if lo_k == hi_k else (kth(lo_k) + kth(hi_k)) / 2


def shift(x: np.ndarray, y: np.ndarray) -> TestResult:
    """Location shift of x against y, two independent samples (Mann-Whitney U; the effect is the
    Hodges-Lehmann shift, the median of all x - y, with its distribution-free interval: the order
    statistics of the differences at the U test's critical values, normal approximation of U)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    x, y = x[~np.isnan(x)], y[~np.isnan(y)]
    if len(x) < 2 or len(y) < 2:
        raise ValueError("shift needs at least two values on each side")
    n, m = len(x), len(y)
    p = stats.mannwhitneyu(x, y, alternative="two-sided").pvalue
    k = int(np.floor(n * m / 2 - stats.norm.ppf(0.5 + LEVEL / 2) * np.sqrt(n * m * (n + m + 1) / 12)))
    k = max(k, 1)
    lo, hi = _pairwise_quantile(x, y, k), _pairwise_quantile(x, y, n * m + 1 - k)
    return TestResult("Mann-Whitney U", _pairwise_quantile(x, y, (n * m + 1) / 2), lo, hi, p, n + m)


def trend(m: np.ndarray, temperatures: np.ndarray, resamples: int = 1999, seed: int = 0) -> TestResult:
    """Least-squares slope of the memorization rate over temperature, m[r, k] being whether row r (an
    example on one seed) was memorized at temperatures[k] (within-row permutation test).

    The rows are paired across temperatures (the same example, the same seed), so under the null the
    temperature labels are exchangeable within each row: scipy's permutation_test with paired samples
    permutes them. The slope is the mean over rows of sum_k w_k m[r, k], w the centred temperatures over
    their sum of squares, so rows memorized at all or none of the temperatures add 0 and only the others
    are permuted; the interval is a percentile bootstrap over rows.
    """
    m = np.asarray(m, float)
    t = np.asarray(temperatures, float)
    if m.ndim != 2 or m.shape[1] != len(t) or len(np.unique(t)) < 2 or len(m) == 0:
        raise ValueError("trend needs (rows, temperatures) with at least two temperatures")
    w = (t - t.mean()) / ((t - t.mean()) ** 2).sum()
    contrib = m @ w
    mixed = m[(m.min(axis=1) < m.max(axis=1))]
    name = f"within-example permutation test over {len(t)} temperatures ({len(m)} example-seeds)"
    if len(mixed) == 0:
        return TestResult(name, 0.0, 0.0, 0.0, 1.0, len(m))
    rng = np.random.default_rng(seed)

    def slope(*cols: np.ndarray, axis: int = -1) -> np.ndarray:
        return sum(wk * np.sum(c, axis=axis) for wk, c in zip(w, cols, strict=True)) / len(m)

    p = stats.permutation_test(
        tuple(mixed.T), slope, permutation_type="samples", vectorized=True, n_resamples=resamples, rng=rng
    ).pvalue
    ci = stats.bootstrap(
        (contrib,), np.mean, n_resamples=max(resamples // 2, 199), method="percentile", rng=rng
    ).confidence_interval
    return TestResult(name, float(contrib.mean()), ci.low, ci.high, p, len(m))


def auc_trials(auc: np.ndarray, n_pos: np.ndarray, n_neg: np.ndarray) -> TestResult:
    """Held-out ROC-AUC over classifier trials against 0.5.

    Trials resample one data set, so their AUCs are dependent and neither a t-test over trials nor a
    binomial count of AUC > 0.5 is valid. Each trial's AUC is a Mann-Whitney U on its own test split,
    under the null distributed as U with that split's positives and negatives (normal approximation);
    the median trial's z-score z_med satisfies P(|z_med| >= c) <= 2 P(|z| >= c) whatever the dependence
    (the median exceeds c only if half the trials do; Markov), so p = min(1, 2 p_one(z_med)). The
    effect is the median AUC; the interval, median ± 1.96 null standard errors of one trial's AUC.
    """
    auc, n_pos, n_neg = (np.asarray(a, float) for a in (auc, n_pos, n_neg))
    ok = ~np.isnan(auc) & (n_pos > 0) & (n_neg > 0)
    if not ok.any():
        raise ValueError("auc_trials needs at least one trial with positives and negatives")
    auc, n_pos, n_neg = auc[ok], n_pos[ok], n_neg[ok]
    se = np.sqrt((n_pos + n_neg + 1) / (12 * n_pos * n_neg))
    z = float(np.median((auc - 0.5) / se))
    p = min(1.0, 2 * 2 * stats.norm.sf(abs(z)))
    med, half = float(np.median(auc)), float(stats.norm.ppf(0.5 + LEVEL / 2) * np.median(se))
    name = f"median held-out AUC over {len(auc)} trials, Mann-Whitney null per trial, doubled for the median"
    return TestResult(name, med, med - half, med + half, p, len(auc), 0.5)
