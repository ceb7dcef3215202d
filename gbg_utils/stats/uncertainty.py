"""Uncertainty: standard errors, bootstrap CIs and paired tests, clustered by item group when there are groups."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as sps


def _se(x: np.ndarray, axis: int = 0) -> np.ndarray | float:
    n = x.shape[axis]
    return x.std(axis=axis, ddof=1) / np.sqrt(n) if n > 1 else np.full(np.delete(x.shape, axis), np.nan)[()]


def _nanmean(x: np.ndarray, axis: int):
    """Mean over the finite entries along ``axis`` (NaN where there are none), without warnings."""
    ok = np.isfinite(x)
    n = ok.sum(axis)
    return np.where(n > 0, np.where(ok, x, 0.0).sum(axis) / np.maximum(n, 1), np.nan)[()]


def _nanse(x: np.ndarray) -> np.ndarray:
    """SE of the mean over the finite entries of each column (NaN below two)."""
    ok = np.isfinite(x)
    n = ok.sum(0)
    e = np.where(ok, x - _nanmean(x, 0), 0.0)
    return np.where(n > 1, np.sqrt((e**2).sum(0) / np.maximum(n - 1, 1) / np.maximum(n, 1)), np.nan)


def _cluster_codes(groups) -> np.ndarray:
    codes = pd.factorize(pd.Series(groups))[0]
    miss = codes < 0  # an item without a group is its own cluster
    codes[miss] = codes.max(initial=-1) + 1 + np.arange(miss.sum())
    return codes


def n_clusters(groups) -> int:
    """Number of clusters: one per distinct group, plus one per item without a group."""
    codes = _cluster_codes(groups)
    return int(codes.max(initial=-1) + 1)


def clustered_se(x, groups=None) -> float:
    """Cluster-robust SE of the mean (Miller 2024, eq. 4): sqrt(sd^2/n + sum_c sum_{i!=j in c} e_i e_j / n^2).

    Equals the plain SE when every item is its own cluster (or ``groups`` is None); floored at 0.
    >>> round(clustered_se([1, 1, 0, 0], ["a", "a", "b", "b"]), 3)   # plain SE 0.289: clusters agree inside
    0.382
    """
    x = np.asarray(x, float)
    n = len(x)
    se2 = x.var(ddof=1) / n if n > 1 else np.nan
    if groups is None:
        return float(np.sqrt(se2))
    e = x - x.mean()
    s = np.bincount(_cluster_codes(groups), weights=e)
    return float(np.sqrt(max(se2 + ((s**2).sum() - (e**2).sum()) / n**2, 0.0)))


def _boot_weights(n: int, n_boot: int, seed, groups=None) -> np.ndarray:
    """(n_boot, n) resample counts; with ``groups`` whole clusters are resampled."""
    rng = np.random.default_rng(seed)
    if groups is None:
        codes, g = np.arange(n), n
    else:
        codes = _cluster_codes(groups)
        g = codes.max() + 1
    idx = rng.integers(0, g, (n_boot, g)) + g * np.arange(n_boot)[:, None]
    w = np.bincount(idx.ravel(), minlength=n_boot * g).reshape(n_boot, g).astype(float)
    return w if groups is None else w[:, codes]


def _boot_ci(w: np.ndarray, x: np.ndarray, ci: float):
    means = (w @ x.reshape(len(x), -1)) / w.sum(1)[:, None]
    lo, hi = np.percentile(means, [50 * (1 - ci), 50 * (1 + ci)], axis=0)
    return lo.reshape(x.shape[1:])[()], hi.reshape(x.shape[1:])[()]


def bootstrap_ci(x, n_boot: int = 1000, ci: float = 0.95, seed=0, groups=None):
    """Percentile bootstrap CI of the mean over items (axis 0), all columns resampled together.

    ``groups`` resamples whole clusters. Returns (low, high), scalars for 1-d ``x``.
    >>> bootstrap_ci(np.r_[np.ones(60), np.zeros(40)])
    (np.float64(0.51), np.float64(0.69))
    """
    x = np.asarray(x, float)
    return _boot_ci(_boot_weights(len(x), n_boot, seed, groups), x, ci)


def _t_p(d: np.ndarray, groups=None) -> tuple[float, float, float]:
    """(se, t, two-sided p) of mean(d) = 0: paired t on n-1 df, or with ``groups`` the clustered SE on
    n_clusters-1 df. NaN where the test is undefined: no greedy to pair with, fewer than 2 items (clusters),
    or all differences 0 (0/0); equal nonzero differences give t = ±inf, p = 0, as scipy.stats.ttest_rel."""
    n = len(d)
    df = (n_clusters(groups) if groups is not None else n) - 1
    m = float(d.mean()) if n else np.nan
    if not np.isfinite(m) or df < 1:
        return np.nan, np.nan, np.nan
    se = clustered_se(d, groups) if groups is not None else float(_se(d))
    if not se > 0:
        return se, (np.nan if m == 0 else np.sign(m) * np.inf), (np.nan if m == 0 else 0.0)
    t = m / se
    return se, t, float(2 * sps.t.sf(abs(t), df))


def paired_test(a, b, method: str = "t", n_perm: int = 10000, seed=0) -> dict:
    """Paired test of mean(a) == mean(b) over the same items: ``"t"`` (= scipy.stats.ttest_rel) or
    ``"permutation"`` (sign-flip of the differences; exact enumeration when 2**n <= n_perm).

    p is NaN where the test is undefined: no items, or for the t test one item or all differences 0.
    >>> paired_test(greedy_per_item, sample_mean_per_item)["p_value"]
    """
    d = np.asarray(a, float) - np.asarray(b, float)
    n = len(d)
    se, t, p = _t_p(d)
    if method == "permutation" and (n == 0 or not np.isfinite(d).all()):
        p = np.nan
    elif method == "permutation":
        obs = abs(d.mean()) - 1e-12
        if 2**n <= n_perm:
            signs = 1 - 2 * ((np.arange(2**n)[:, None] >> np.arange(n)) & 1)
            p = float(np.mean(np.abs(signs @ d / n) >= obs))
        else:
            signs = np.random.default_rng(seed).choice([-1.0, 1.0], (n_perm, n))
            p = float((np.sum(np.abs(signs @ d / n) >= obs) + 1) / (n_perm + 1))
    elif method != "t":
        raise ValueError("method must be 't' or 'permutation'")
    return {"n": n, "diff": float(d.mean()) if n else np.nan, "se": se, "stat": float(t), "p_value": p, "method": method}


def mcnemar(a, b, threshold: float = 1.0, exact: bool = True) -> dict:
    """McNemar's test for paired correctness (e.g. greedy vs one sampled run) over the same items.

    Exact: two-sided binomial test of b10 among the b01 + b10 discordant items; else chi2 with continuity.
    >>> mcnemar(greedy, run0)["p_value"]
    """
    a = np.asarray(a, float) >= threshold
    b = np.asarray(b, float) >= threshold
    b10, b01 = int(np.sum(a & ~b)), int(np.sum(~a & b))
    m = b10 + b01
    if m == 0:
        stat, p = 0.0, 1.0
    elif exact:
        stat, p = float(b10), float(sps.binomtest(b10, m, 0.5).pvalue)
    else:
        stat = (abs(b10 - b01) - 1) ** 2 / m
        p = float(sps.chi2.sf(stat, 1))
    return {"n": len(a), "b10": b10, "b01": b01, "stat": stat, "p_value": p}
