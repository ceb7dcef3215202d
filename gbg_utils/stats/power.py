"""How many samples are enough: variance components, Miller's sample-size formula, and an independence check
of the run-to-run std.

Units. Scores are in score units (0/1 for exact match, so a gap of 0.03 is 3 points); variances are in squared
score units. ``points=True`` makes the gaps and stds a function takes or returns points (100 x score units);
variances stay in squared score units, as `variance_components` returns them.

    >>> vc = variance_components(df)                     # omega2, sigma2 per (model, benchmark) x sampled config
    >>> items_needed(0.03, omega2=1 / 9, sigma2=0, k=None)       # Miller 2024's worked case: ~969 items
    >>> sample_size_table(df, deltas=(1, 2, 3), ks=(1, 4, None), points=True)
    >>> independence_check(df)                           # observed vs predicted std of the N run scores
    >>> independence_check_summary(64.4, 2.50, n_items=1319, n_runs=128, points=True, ddof=0)   # a paper's figures

Model (Miller 2024, "Adding Error Bars to Evals", arXiv 2411.00640, power analysis). Item i has a true paired
difference D_i = greedy_i - mu_i (mu_i: its expected sampled score) and a within-item sampling variance
sigma_i^2. Over items D has variance omega^2; sigma^2 = mean_i sigma_i^2. With K samples per item the mean over n
items of the observed differences d_i = greedy_i - mean_j S_ij has variance (omega^2 + sigma^2 / K) / n (greedy
is deterministic, so only the sampled side has sampling noise), which gives the sample-size formula
n = (z_{1-alpha/2} + z_{1-beta})^2 (omega^2 + sigma^2 / K) / delta^2 for a two-sided test at level alpha with
power 1 - beta. Items are treated as independent: with clustered items (MMLU subjects) the clustered variance is
larger and n grows by the design effect, which this module does not estimate.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats as sps

from .cells import BY, Cell, _align, _by_groups, _key_cols, cells
from .uncertainty import _nanmean

DELTAS = (0.01, 0.02, 0.03, 0.05)  # in score units (1, 2, 3, 5 points)
KS = (1, 4, 16, None)  # None: infinitely many samples per item (sigma^2 / K -> 0)


# ----------------------------------------------------------------------------- checks and units
def _k_array(k) -> np.ndarray:
    k = np.asarray(np.inf if k is None else k, float)
    if np.isnan(k).any() or (k < 1).any():
        raise ValueError(f"k (samples per item) must be >= 1, or None / math.inf for infinitely many; got {k}")
    return k


def _z(alpha, power) -> float:
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise ValueError(f"alpha and power must lie in (0, 1); got alpha={alpha}, power={power}")
    return float(sps.norm.ppf(1 - alpha / 2) + sps.norm.ppf(power))


def _var_per_item(omega2, sigma2, k) -> np.ndarray:
    omega2, sigma2 = np.asarray(omega2, float), np.asarray(sigma2, float)
    if (omega2 < 0).any() or (sigma2 < 0).any():
        raise ValueError(f"omega2 and sigma2 are variances and must be >= 0; got omega2={omega2}, sigma2={sigma2}")
    k = _k_array(k)
    return omega2 + np.where(np.isinf(k), 0.0, sigma2 / np.where(np.isinf(k), 1.0, k))


def _scalar(x):
    x = np.asarray(x)
    return float(x) if x.ndim == 0 else x


# ----------------------------------------------------------------------------- the formula
def items_needed(delta, omega2, sigma2, k, alpha: float = 0.05, power: float = 0.8, points: bool = False):
    """Items n to detect a true gap ``delta`` (Miller 2024): (z_{1-alpha/2} + z_{power})^2 (omega2 + sigma2/k) / delta^2.

    delta is in score units (0.03 = 3 points for 0/1 scores), or in points with ``points=True``; omega2 and
    sigma2 in squared score units (as `variance_components` returns them). k = samples per item; None or
    math.inf for infinitely many. Returns the exact (fractional) n: round it up for a plan. Arrays broadcast.

    >>> items_needed(0.03, omega2=1 / 9, sigma2=0.0, k=None)    # Miller's worked case
    968.99...
    """
    delta = np.asarray(delta, float) / (100.0 if points else 1.0)
    if not (delta > 0).all():
        raise ValueError(f"delta must be > 0; got {delta}")
    return _scalar(_z(alpha, power) ** 2 * _var_per_item(omega2, sigma2, k) / delta**2)


def min_detectable_gap(n_items, omega2, sigma2, k, alpha: float = 0.05, power: float = 0.8, points: bool = False):
    """The smallest true gap ``n_items`` items with k samples each detect at level alpha with the given power:
    (z_{1-alpha/2} + z_{power}) sqrt((omega2 + sigma2/k) / n_items); the inverse of `items_needed`. In score units,
    or points with ``points=True``."""
    n = np.asarray(n_items, float)
    if not (n > 0).all():
        raise ValueError(f"n_items must be > 0; got {n_items}")
    gap = _z(alpha, power) * np.sqrt(_var_per_item(omega2, sigma2, k) / n)
    return _scalar(gap * (100.0 if points else 1.0))


# ----------------------------------------------------------------------------- variance components from a pilot
def _components(g: Cell | None, s: Cell) -> dict:
    """omega2 / sigma2 of one sampled cell against its greedy cell (None: no greedy, omega2 is NaN)."""
    if g is not None:
        g, s = _align(g, s)
    S = s.matrix("score")
    k_i = np.isfinite(S).sum(1)
    G = _nanmean(g.matrix("score"), 1) if g is not None else np.full(s.n_items, np.nan)
    # an item needs two scored samples for its within-item variance, and a scored greedy for its difference
    keep = k_i >= 2
    if g is not None:
        keep &= np.isfinite(G)
    S, k_i, G = S[keep], k_i[keep], G[keep]
    n = len(S)
    pbar = np.where(np.isfinite(S), S, 0.0).sum(1) / np.maximum(k_i, 1)
    # unbiased per-item variance; for 0/1 scores it is K/(K-1) p(1-p)
    s2 = np.where(np.isfinite(S), (S - pbar[:, None]) ** 2, 0.0).sum(1) / np.maximum(k_i - 1, 1)
    d = G - pbar
    raw = float(d.var(ddof=1)) if n > 1 and g is not None else np.nan
    # E[var(d)] = omega^2 + mean(sigma_i^2 / K_i): remove the noise of the sampling means (method of moments)
    noise = float((s2 / k_i).mean()) if n else np.nan
    return {
        "n_items": n,
        "n_runs": s.n,
        "n_dropped": int((~keep).sum()),
        "gap": float(d.mean()) if n and g is not None else np.nan,
        "omega2": max(raw - noise, 0.0) if np.isfinite(raw) else np.nan,
        "omega2_raw": raw,
        "sigma2": float(s2.mean()) if n else np.nan,
    }


def variance_components(df: pd.DataFrame, by=BY, ragged: str = "truncate") -> pd.DataFrame:
    """Miller's variance components from pilot data: one row per (by..., sampled config).

    omega2: between-item variance of the paired difference d_i = greedy_i - (item i's sampling mean), corrected
    for the noise of the sampling mean: omega2 = var(d, ddof=1) - mean_i(s_i^2 / K_i), floored at 0. Justification:
    the sampling mean of item i is mu_i + e_i with E[e_i | i] = 0 and Var(e_i | i) = sigma_i^2 / K_i, so (law of total
    variance, items independent) E[var(d)] = omega^2 + mean(sigma_i^2 / K_i), and s_i^2 is unbiased for sigma_i^2;
    the difference is therefore unbiased for omega^2 (before the floor). omega2_raw is var(d) uncorrected.
    sigma2: mean over items of the per-item sample variance s_i^2 (ddof=1; for 0/1 scores K/(K-1) p_i(1-p_i)).
    Also gap (mean d), n_items (used), n_runs (K), n_dropped (items with under 2 scored samples or an unscored
    greedy). Without a greedy cell omega2 and gap are NaN.
    """
    by, _ = _key_cols(df, by)
    rows = []
    for g, samples in _by_groups(cells(df, by, ragged), by):
        for s in samples:
            rows.append({**s.key, **_components(g, s)})
    return pd.DataFrame(rows)


def sample_size_table(
    df: pd.DataFrame,
    deltas=None,
    ks=KS,
    alpha: float = 0.05,
    power: float = 0.8,
    points: bool = False,
    by=BY,
    ragged: str = "truncate",
) -> pd.DataFrame:
    """Items needed per (by..., sampled config) x delta x k, from the pilot's `variance_components`.

    deltas: gaps to detect, in score units (default 0.01, 0.02, 0.03, 0.05), or points with ``points=True``
    (default 1, 2, 3, 5); ks: samples per item (None = infinitely many, shown as inf). Columns: the cell's keys,
    n_items, n_runs, omega2, sigma2, gap (the pilot's observed gap), delta, k, items_needed (rounded up),
    min_detectable_gap (with the pilot's n_items at this k) and current_min_detectable_gap (the pilot's n_items and
    n_runs: what this run can detect); gaps in the units of delta.
    """
    if deltas is None:
        deltas = tuple(d * 100 for d in DELTAS) if points else DELTAS
    deltas = np.atleast_1d(np.asarray(deltas, float))
    kk = np.array([np.inf if k is None else k for k in np.atleast_1d(np.asarray(ks, object))], float)
    _k_array(kk)
    vc = variance_components(df, by=by, ragged=ragged)
    rows = []
    for rec in vc.to_dict("records"):
        o2, s2, n, K = rec["omega2"], rec["sigma2"], rec["n_items"], rec["n_runs"]
        ok = np.isfinite(o2) and np.isfinite(s2) and n > 0
        cur = min_detectable_gap(n, o2, s2, K, alpha, power, points) if ok else np.nan
        for k in kk:
            mdg = min_detectable_gap(n, o2, s2, k, alpha, power, points) if ok else np.nan
            for d in deltas:
                need = items_needed(d, o2, s2, k, alpha, power, points) if ok else np.nan
                rows.append(
                    {
                        **rec,
                        "gap": rec["gap"] * (100.0 if points else 1.0),
                        "delta": d,
                        "k": k,
                        # a float n of exactly 969 can come out 969.0000001: round before the ceiling
                        "items_needed": math.ceil(round(need, 6)) if np.isfinite(need) else pd.NA,
                        "min_detectable_gap": mdg,
                        "current_min_detectable_gap": cur,
                    }
                )
    out = pd.DataFrame(rows)
    if len(out):
        out["items_needed"] = out["items_needed"].astype("Int64")
        out = out.drop(columns=["omega2_raw", "n_dropped"])
    return out


# ----------------------------------------------------------------------------- independence of the runs
def _chi2_check(var_obs: float, var_pred: float, n_runs: int, alpha: float, ddof: int) -> dict:
    """One-sided test that N run scores with sample variance var_obs (ddof=1) come from independent draws of
    variance var_pred: (N-1) var_obs / var_pred ~ chi^2_{N-1} under H0 (run scores ~ normal by the CLT over items).
    max_std is the largest std (with ``ddof``) of the run scores that independent draws allow at this alpha."""
    dof = n_runs - 1
    if dof < 1 or n_runs <= ddof or not var_pred > 0 or not np.isfinite(var_obs):
        return {"statistic": np.nan, "p_value": np.nan, "max_std": np.nan, "flagged": pd.NA}
    stat = dof * var_obs / var_pred
    p = float(sps.chi2.sf(stat, dof))
    return {
        "statistic": float(stat),
        "p_value": p,
        "max_std": float(np.sqrt(var_pred * sps.chi2.ppf(1 - alpha, dof) / (n_runs - ddof))),
        "flagged": bool(p < alpha),
    }


def _check_alpha(alpha):
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1); got {alpha}")


def independence_check(df: pd.DataFrame, alpha: float = 0.05, by=BY, ragged: str = "truncate", ddof: int = 1) -> pd.DataFrame:
    """Is the run-to-run std of the sampled runs what independent sampling predicts? One row per sampled cell.

    If the samples are independent given the item, run j's score r_j = mean_i S_ij has variance
    sum_i sigma_i^2 / n^2; predicted_std = sqrt(sum_i s_i^2) / n with s_i^2 the unbiased per-item variance
    (for 0/1 scores K/(K-1) p_i(1-p_i), p_i the item's sampling mean; the unbiased form makes E[observed var] =
    predicted var exactly under independence). Shared shocks (a run whose every item is easier, e.g. one seed or
    batch per run) add a covariance between items and make the observed std larger. The test: statistic =
    (N-1) s^2 / predicted_std^2 (s: the sample std of the N run scores, ddof=1) against chi^2_{N-1}, one-sided;
    flagged when p_value < alpha; max_std is the largest std independence allows at alpha. observed_std and
    max_std are with ``ddof`` (1; the paper's scripts used 0); ratio = s / predicted_std. Items with an unscored sample are left
    out (n_dropped): a run's predicted variance needs the same items in every run. Scores in score units.
    """
    _check_alpha(alpha)
    by, _ = _key_cols(df, by)
    rows = []
    for c in cells(df, by, ragged):
        if c.greedy:
            continue
        S = c.matrix("score")
        full = np.isfinite(S).all(1)
        S = S[full]
        n, N = S.shape
        runs = S.mean(0) if n else np.full(N, np.nan)
        var_obs = float(runs.var(ddof=1)) if N > 1 and n else np.nan
        var_pred = float(S.var(axis=1, ddof=1).sum() / n**2) if N > 1 and n else np.nan
        rows.append(
            {
                **c.key,
                "n_items": n,
                "n_runs": N,
                "n_dropped": int((~full).sum()),
                "mean": float(runs.mean()) if n else np.nan,
                "observed_std": float(runs.std(ddof=ddof)) if N > ddof and n else np.nan,
                "predicted_std": float(np.sqrt(var_pred)),
                "ratio": float(np.sqrt(var_obs / var_pred)) if var_pred > 0 else np.nan,
                **_chi2_check(var_obs, var_pred, N, alpha, ddof),
            }
        )
    out = pd.DataFrame(rows)
    if len(out):
        out["flagged"] = out["flagged"].astype("boolean")
    return out


def independence_check_summary(
    mean: float, std: float, n_items: int, n_runs: int, alpha: float = 0.05, points: bool = False, ddof: int = 1
) -> dict:
    """The independence check from published figures only: mean accuracy, std of the run scores, n items, N runs.

    The per-item rates are unknown, but sum_i p_i(1-p_i) <= n m(1-m) (concavity), so independent 0/1 draws give a
    run-score std of at most bound_std = sqrt(m(1-m)/n). Flagged when std exceeds what that bound allows: the
    one-sided chi^2 test of `independence_check` with bound_std in place of the prediction (conservative: the true
    prediction is smaller). mean and std in score units (accuracy 0..1), or points (0..100) with ``points=True``;
    ``ddof`` is the std's (the paper's scripts used numpy's default 0). Returned stds are in the input's units.

    >>> independence_check_summary(64.4, 2.50, 1319, 128, points=True, ddof=0)["flagged"]   # paper Table 2
    True
    """
    _check_alpha(alpha)
    scale = 100.0 if points else 1.0
    m, s = mean / scale, std / scale
    if not 0 <= m <= 1:
        raise ValueError(f"mean accuracy {mean} outside [0, {scale:g}]" + ("" if points else "; in points? pass points=True"))
    if not s >= 0:
        raise ValueError(f"std must be >= 0; got {std}")
    if int(n_items) != n_items or n_items < 1 or int(n_runs) != n_runs or n_runs < 2 or not 0 <= ddof < n_runs:
        raise ValueError(f"need whole n_items >= 1, n_runs >= 2 and 0 <= ddof < n_runs; got {n_items}, {n_runs}, ddof={ddof}")
    var_obs = s**2 * (n_runs - ddof) / (n_runs - 1)  # as the ddof=1 sample variance
    var_bound = m * (1 - m) / n_items
    r = _chi2_check(var_obs, var_bound, int(n_runs), alpha, ddof)
    return {
        "mean": mean,
        "std": std,
        "n_items": int(n_items),
        "n_runs": int(n_runs),
        "bound_std": float(np.sqrt(var_bound)) * scale,
        "ratio": float(np.sqrt(var_obs / var_bound)) if var_bound > 0 else np.nan,
        "statistic": r["statistic"],
        "p_value": r["p_value"],
        "max_std": r["max_std"] * scale,
        "flagged": r["flagged"],
    }
