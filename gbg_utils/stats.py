"""Statistics over scored samples: the paper's numbers, exact and vectorised, with the uncertainty it left out.

Input is the tidy table, one row per scored completion (model, benchmark, item_id, group, config_key,
greedy, temperature, top_p, top_k, repetition_penalty, sample_idx, score, extracted, n_tokens, optional
selector columns such as ``reward``).

    >>> gap = gap_table(df)                                   # paper Table 2, plus SEs, CIs and a paired test
    >>> curves = best_of_k_curves(df, selectors=["reward"])   # oracle / random / majority / reward, k = 1..N

Conventions
-----------
* A *cell* is one ``by`` group (default model, benchmark) times one decoding config (``CONFIG_COLS``); the
  greedy rows of a ``by`` group are its greedy cell. Several greedy configs in one ``by`` group are an error:
  add the column that tells them apart (e.g. ``repetition_penalty``) to ``by``.
* Run j is the j-th sample (by ``sample_idx``) of every item; run scores are the column means of the
  items x N score matrix.
* Ragged cells (items with unequal sample counts) never pass silently: ``ragged="truncate"`` (default) keeps
  the first N_min samples of every item by ``sample_idx`` and warns, ``ragged="raise"`` raises. Duplicate
  (item_id, sample_idx) rows in a cell raise. Paired statistics use the items greedy and sampling share and
  warn when those differ.
* "Correct" (pass@k, McNemar) means ``score >= threshold`` (default 1).
* A missing extracted answer (None/NaN) is its own distinct answer: failures never vote together.
* A missing score (NaN: e.g. a judgment that failed or could not be parsed) is an unscored sample, not a 0:
  gap/config/run/rank tables average over the scored samples (an item over its scored samples, a run over its
  scored items), leave out items with none (or an unscored greedy) and report the count as ``n_unscored``.
* SE = sd(ddof=1)/sqrt(n_items). The std of the N run scores takes ``ddof`` (default 1, the sample std);
  the paper's analysis scripts used numpy's default ``np.std`` (ddof=0): pass ``ddof=0`` to reproduce them.
* With item groups (``group``: MMLU subject, MixEval source) SEs, CIs and p-values are clustered: an item
  without a group is its own cluster.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special
from scipy import stats as sps

BY = ("model", "benchmark")
CONFIG_COLS = ("config_key", "temperature", "top_p", "top_k", "repetition_penalty")
PARAM_COLS = CONFIG_COLS[1:]


# --------------------------------------------------------------------------------------------- cells
class _Table:
    """The tidy frame plus a cache of its columns as numpy arrays (cells index into them)."""

    def __init__(self, df: pd.DataFrame):
        for c in ("item_id", "greedy", "sample_idx", "score"):
            if c not in df.columns:
                raise KeyError(f"column {c!r} missing from the scored table")
        self.df = df
        self.item_codes, self.item_ids = pd.factorize(df["item_id"], sort=True)
        self._cols: dict[str, np.ndarray] = {}

    def col(self, name: str) -> np.ndarray:
        if name not in self._cols:
            if name not in self.df.columns:
                raise KeyError(f"column {name!r} missing from the scored table")
            self._cols[name] = self.df[name].to_numpy()
        return self._cols[name]


@dataclass
class Cell:
    """One (by..., decoding config) group as an items x N grid of row positions into the table."""

    key: dict
    greedy: bool
    items: np.ndarray  # item codes, sorted
    take: np.ndarray  # (n_items, n) row positions, samples ordered by sample_idx
    table: _Table

    @property
    def n_items(self) -> int:
        return self.take.shape[0]

    @property
    def n(self) -> int:
        return self.take.shape[1]

    def matrix(self, col: str, dtype=float) -> np.ndarray:
        a = self.table.col(col)[self.take]
        return a if dtype is None else a.astype(dtype)

    def item_ids(self) -> np.ndarray:
        return np.asarray(self.table.item_ids[self.items])

    def groups(self) -> np.ndarray | None:
        if "group" not in self.table.df.columns:
            return None
        G = self.table.col("group")[self.take]
        na = pd.isna(G)
        # first sample with a group: an unscored sample comes out of store.frame without one
        g = G[np.arange(len(G)), np.argmax(~na, axis=1)] if G.size else G[:, 0]
        return None if pd.isna(g).all() else g

    def subset(self, pos) -> "Cell":
        return Cell(self.key, self.greedy, self.items[pos], self.take[pos], self.table)


def _key_cols(df: pd.DataFrame, by) -> tuple[list[str], list[str]]:
    by = [by] if isinstance(by, str) else list(by)
    missing = [c for c in by if c not in df.columns]
    if missing:
        raise KeyError(f"by= columns not in the table: {missing}")
    return by, [c for c in CONFIG_COLS if c in df.columns and c not in by]


def cells(df: pd.DataFrame, by=BY, ragged: str = "truncate") -> list[Cell]:
    """Split the table into cells (``by`` x decoding config, greedy separate), each an items x N grid.

    >>> [(c.key["model"], c.greedy, c.n_items, c.n) for c in cells(df)]
    [('m1', False, 1319, 128), ('m1', True, 1319, 1)]
    """
    if ragged not in ("truncate", "raise"):
        raise ValueError("ragged must be 'truncate' or 'raise'")
    by, cfg = _key_cols(df, by)
    tab = _Table(df)
    sidx = df["sample_idx"].to_numpy(np.int64)
    names = by + cfg + ["greedy"]
    out = []
    for key, pos in df.groupby(names, dropna=False, sort=True).indices.items():
        key = dict(zip(names, key if isinstance(key, tuple) else (key,)))
        greedy = bool(key.pop("greedy"))
        ic = tab.item_codes[pos]
        order = np.lexsort((sidx[pos], ic))
        pos, ic = pos[order], ic[order]
        si = sidx[pos]
        if np.any((ic[1:] == ic[:-1]) & (si[1:] == si[:-1])):
            raise ValueError(f"duplicate (item_id, sample_idx) rows in cell {key} (greedy={greedy}); "
                             "are two models/configs sharing one key? add the distinguishing column to by=")
        items, start, counts = np.unique(ic, return_index=True, return_counts=True)
        n = int(counts.min())
        if (counts != n).any():
            msg = f"cell {key} (greedy={greedy}): items have {n}..{counts.max()} samples"
            if ragged == "raise":
                raise ValueError(msg + "; pass ragged='truncate' to keep the first N_min of every item")
            warnings.warn(msg + f"; keeping the first {n} samples of every item (by sample_idx)", stacklevel=3)
        out.append(Cell(key, greedy, items, pos[start[:, None] + np.arange(n)], tab))
    return out


def _by_groups(cs: list[Cell], by: list[str]):
    """Yield (greedy cell or None, sampled cells) per ``by`` group."""
    groups: dict[tuple, list[Cell]] = {}
    for c in cs:
        groups.setdefault(tuple(c.key[b] for b in by), []).append(c)
    for k, lst in groups.items():
        gs = [c for c in lst if c.greedy]
        if len(gs) > 1:
            raise ValueError(f"{len(gs)} greedy configs for {dict(zip(by, k))}; add the column that tells "
                             "them apart (e.g. 'repetition_penalty') to by=")
        yield (gs[0] if gs else None), [c for c in lst if not c.greedy]


def _align(a: Cell, b: Cell) -> tuple[Cell, Cell]:
    common, ia, ib = np.intersect1d(a.items, b.items, assume_unique=True, return_indices=True)
    if len(common) < max(a.n_items, b.n_items):
        warnings.warn(f"{b.key}: greedy has {a.n_items} items, sampling {b.n_items}; "
                      f"paired statistics use the {len(common)} shared", stacklevel=3)
    return a.subset(ia), b.subset(ib)


def _one_cell(df: pd.DataFrame, ragged: str) -> Cell:
    cs = cells(df, by=[c for c in BY if c in df.columns], ragged=ragged)
    if len(cs) != 1:
        raise ValueError(f"expected rows of one (model, benchmark, config), got {len(cs)} cells; filter first")
    return cs[0]


def score_matrix(df: pd.DataFrame, value: str = "score", ragged: str = "truncate") -> pd.DataFrame:
    """Items x samples matrix of ``value`` for the rows of one cell (one model, benchmark, config).

    >>> score_matrix(df[(df.model == "m1") & ~df.greedy]).shape
    (1319, 128)
    """
    c = _one_cell(df, ragged)
    return pd.DataFrame(c.matrix(value, dtype=None), index=pd.Index(c.item_ids(), name="item_id"),
                        columns=pd.RangeIndex(c.n, name="sample"))


# ---------------------------------------------------------------------------------- uncertainty
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
    return np.where(n > 1, np.sqrt((e ** 2).sum(0) / np.maximum(n - 1, 1) / np.maximum(n, 1)), np.nan)


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
    return float(np.sqrt(max(se2 + ((s ** 2).sum() - (e ** 2).sum()) / n ** 2, 0.0)))


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
        if 2 ** n <= n_perm:
            signs = 1 - 2 * ((np.arange(2 ** n)[:, None] >> np.arange(n)) & 1)
            p = float(np.mean(np.abs(signs @ d / n) >= obs))
        else:
            signs = np.random.default_rng(seed).choice([-1.0, 1.0], (n_perm, n))
            p = float((np.sum(np.abs(signs @ d / n) >= obs) + 1) / (n_perm + 1))
    elif method != "t":
        raise ValueError("method must be 't' or 'permutation'")
    return {"n": n, "diff": float(d.mean()) if n else np.nan, "se": se, "stat": float(t), "p_value": p,
            "method": method}


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


# ---------------------------------------------------------------------------------- k-sample estimators
def _ks(ks, n: int) -> np.ndarray:
    ks = np.arange(1, n + 1) if ks is None else np.atleast_1d(np.asarray(ks, int))
    if ks.size == 0 or ks.min() < 1 or ks.max() > n:
        raise ValueError(f"k must lie in 1..{n} (the common number of samples per item)")
    return ks


def _logcomb(a, b):
    return special.gammaln(a + 1) - special.gammaln(b + 1) - special.gammaln(a - b + 1)


def _mat(x) -> np.ndarray:
    x = np.asarray(x, float)
    if x.ndim != 2:
        raise ValueError("expected an items x samples matrix")
    return x


def pass_at_k(scores, ks=None, threshold: float = 1.0) -> np.ndarray:
    """Unbiased pass@k per item (Chen et al. 2021): 1 - C(n-c, k)/C(n, k), c = #(score >= threshold).

    >>> pass_at_k([[1, 0, 0, 0]], ks=[1, 2])
    array([[0.25, 0.5 ]])
    """
    s = _mat(scores)
    n = s.shape[1]
    k = _ks(ks, n)[None, :]
    a = (n - (s >= threshold).sum(1))[:, None]
    fail = np.where(a >= k, np.exp(_logcomb(np.maximum(a, k), k) - _logcomb(n, k)), 0.0)
    return 1.0 - fail


def rank_weights(n: int, ks=None) -> np.ndarray:
    """(n, len(ks)): P(the best of a random k-subset is the i-th ranked of n) = C(n-i, k-1)/C(n, k)."""
    k = _ks(ks, n)[None, :]
    a = n - np.arange(1, n + 1)[:, None]
    return np.where(a >= k - 1, np.exp(_logcomb(np.maximum(a, k - 1), k - 1) - _logcomb(n, k)), 0.0)


def best_of_k(scores, selector=None, ks=None) -> np.ndarray:
    """Expected score of the sample a selector picks from a random k-subset, per item (items x len(ks)).

    Exact average over all C(n, k) subsets. Samples are ranked by ``selector`` (higher is better; NaN
    ranks last); tied selector values are broken at random, which in expectation replaces each tied
    sample's score by its tie group's mean. ``selector=scores`` gives oracle@k (= pass@k for 0/1 scores),
    ``selector=None`` (all tied) gives random@k = the item's mean score.
    >>> best_of_k([[1, 0, 0, 0]], selector=[[0.1, 0.9, 0.5, 0.2]], ks=[1, 4])
    array([[0.25, 0.  ]])
    """
    s = _mat(scores)
    n_items, n = s.shape
    if selector is None:
        vals = np.repeat(s.mean(1, keepdims=True), n, axis=1)
    else:
        sel = _mat(selector)
        sel = np.where(np.isnan(sel), -np.inf, sel)
        order = np.argsort(-sel, axis=1, kind="stable")
        ss, sv = np.take_along_axis(sel, order, 1), np.take_along_axis(s, order, 1)
        new = np.ones_like(ss, bool)
        new[:, 1:] = ss[:, 1:] != ss[:, :-1]
        gid = np.cumsum(new.ravel()) - 1
        vals = (np.bincount(gid, sv.ravel()) / np.bincount(gid))[gid].reshape(n_items, n)
    return vals @ rank_weights(n, ks)


def _answer_codes(answers) -> np.ndarray:
    a = np.asarray(answers, dtype=object)
    codes = pd.factorize(a.ravel())[0]
    miss = codes < 0  # a missing answer never agrees with another
    codes[miss] = codes.max() + 1 + np.arange(miss.sum())
    return codes.reshape(a.shape)


def _answer_counts(codes: np.ndarray, scores: np.ndarray):
    """Per (item, distinct answer): count and value (mean score of that answer's samples), item-sorted."""
    n_items = codes.shape[0]
    base = codes.max() + 1
    u, inv, cnt = np.unique((codes + base * np.arange(n_items)[:, None]).ravel(),
                            return_inverse=True, return_counts=True)
    val = np.bincount(inv, scores.ravel()) / cnt
    bounds = np.searchsorted(u // base, np.arange(n_items + 1))
    return cnt, val, bounds


def _binom_table(n: int) -> np.ndarray:
    if n > 1000:
        raise ValueError("maj@k needs n <= 1000 samples (binomial coefficients overflow float64 beyond)")
    a = np.arange(n + 1)
    return special.comb(a[:, None], a[None, :])  # zero above the diagonal


def _conv_rows(x: np.ndarray, kern: np.ndarray, out_len: int) -> np.ndarray:
    """Row-wise polynomial product over the last axis of ``x`` (..., d) with ``kern`` (rows, w), first
    ``out_len`` coefficients; ``kern`` broadcasts against the leading axis of ``x``."""
    w = kern.shape[-1]
    pad = np.zeros(x.shape[:-1] + (w - 1 + out_len,))
    d = min(x.shape[-1], out_len)
    pad[..., w - 1: w - 1 + d] = x[..., :d]
    win = np.lib.stride_tricks.sliding_window_view(pad, w, axis=-1)  # [..., d, i] = x[..., d + i - w + 1]
    k = kern[:, ::-1].reshape((kern.shape[0],) + (1,) * (x.ndim - 2) + (w,))
    return np.einsum("...dw,...w->...d", win, np.broadcast_to(k, x.shape[:-1] + (w,)))


def _maj_sums(C: np.ndarray, V: np.ndarray, n: int, kmax: int) -> np.ndarray:
    """Sum over all k-subsets of the majority answer's value (ties split evenly), k = 0..kmax, per row.

    C, V: (rows, answers) answer counts (descending, 0-padded) and values. A k-subset's answer counts x
    are multivariate hypergeometric; split the sum by t = the subset's top count. Answers with c < t can
    never reach t and fold into a rest factor (1+z)^R (z counts subset size). Per row:
    * t = 1: every sampled answer is tied, so the tie count is the subset size (one product).
    * c2 < t <= c1: only the top answer reaches t (closed form).
    * c3 < t <= c2: two answers can; their "below t" sums are running prefix sums over t.
    * 2 <= t <= c3: a DP over the answers with c >= t, tracking the total (degree d) and how many answers
      sit at t (j); each adds C(c,x) z^x for x < t, or C(c,t) z^t and j + 1. Rows are vectorised.
    """
    B = _binom_table(n)
    rows, m = C.shape
    C = np.pad(C, ((0, 0), (0, max(0, 3 - m))))
    V = np.pad(V, ((0, 0), (0, max(0, 3 - m))))
    K1 = kmax + 1
    kk = np.arange(K1)
    c1, c2, c3, v0, v1 = C[:, 0], C[:, 1], C[:, 2], V[:, 0], V[:, 1]
    num = np.zeros((rows, K1))
    for t in range(1, min(c1.max(), kmax) + 1):  # c2 < t <= c1
        r = np.flatnonzero((c2 < t) & (t <= c1))
        num[r, t:] += (v0[r] * B[c1[r], t])[:, None] * B[n - c1[r], : K1 - t]
    multi = np.flatnonzero(c2 > 0)
    if len(multi):  # t = 1; rows sorted by their number of answers so each step is a prefix
        na = (C[multi] > 0).sum(1)
        multi = multi[np.argsort(-na, kind="stable")]
        na = np.sort(na)[::-1]
        N1, V1 = np.zeros((len(multi), K1)), np.zeros((len(multi), K1))
        N1[:, 0] = 1.0
        for r in range(na[0]):
            q, hi = int((na > r).sum()), min(r + 2, K1)
            cb, vb = C[multi[:q], r, None], V[multi[:q], r, None]
            V1[:q, 1:hi] += cb * (V1[:q, : hi - 1] + vb * N1[:q, : hi - 1])  # right side evaluated first
            N1[:q, 1:hi] += cb * N1[:q, : hi - 1]
        num[multi, 1:] += V1[:, 1:] / kk[1:]
    two = np.flatnonzero(c2 > np.maximum(c3, 1))
    if len(two):
        BR = B[n - c1[two] - c2[two], :K1]
        Ha, Hb = BR.copy(), BR.copy()  # sum_{x<t} C(c, x) C(R, m - x) for the top two answers
        a1, a2, w0, w1, lo = c1[two], c2[two], v0[two], v1[two], np.maximum(c3[two], 1)
        for t in range(1, min(a2.max(), kmax) + 1):
            r = np.flatnonzero((lo < t) & (t <= a2))
            if len(r):
                A, Bt = B[a1[r], t][:, None], B[a2[r], t][:, None]
                add = np.zeros((len(r), K1))
                add[:, t:] = w0[r, None] * A * Hb[r, : K1 - t] + w1[r, None] * Bt * Ha[r, : K1 - t]
                if 2 * t <= kmax:
                    add[:, 2 * t:] += 0.5 * (w0 + w1)[r, None] * A * Bt * BR[r, : K1 - 2 * t]
                num[two[r]] += add
            Ha[:, t:] += B[a1, t][:, None] * BR[:, : K1 - t]
            Hb[:, t:] += B[a2, t][:, None] * BR[:, : K1 - t]
    # 2 <= t <= c3. The rest factor (1+z)^R is applied last, once per distinct (row, R): R changes with t
    # only where t passes an answer count.
    T3 = min(c3.max(), kmax)
    per_t = []
    for t in range(2, T3 + 1):
        r = np.flatnonzero(c3 >= t)
        s_t = (C[r] >= t).sum(1)
        r = r[np.argsort(-s_t, kind="stable")]  # rows with more answers at >= t first: steps are prefixes
        per_t.append((t, r, np.sort(s_t)[::-1], n - np.where(C[r] >= t, C[r], 0).sum(1)))
    if per_t:
        keys = np.unique(np.concatenate([r * (n + 1) + R for _, r, _, R in per_t]))
        acc = np.zeros((len(keys), K1))

    def finish(X, r, R):  # value sums over tie counts j >= 1, each split j ways
        val = (X[:, 1, 1:, :] / np.arange(1, X.shape[2])[:, None]).sum(1)
        acc[np.searchsorted(keys, r * (n + 1) + R), : val.shape[1]] += val

    for t, r, s_t, R in per_t:
        X = np.zeros((len(r), 2, 1, 1))  # [:, 0] subset counts, [:, 1] value sums; (j, d)
        X[:, 0, 0, 0] = 1.0
        jmax = kmax // t
        for b in range(s_t[0]):
            q = int((s_t > b).sum())  # rows with a b-th answer reaching t; the rest are done
            if q < len(r):
                finish(X[q:], r[q:], R[q:])
                X, r, R, s_t = X[:q], r[:q], R[:q], s_t[:q]
            cb = C[r, b]
            dn, jn = min(X.shape[-1] + t, K1), min(X.shape[2] + 1, jmax + 1)
            new = np.zeros((q, 2, jn, dn))
            new[:, :, : X.shape[2]] = _conv_rows(X, B[cb, :t], dn)  # x < t
            D = B[cb, t][:, None, None]
            G = X[:, :, : jn - 1, : dn - t]  # x = t: one more answer at the top count
            new[:, 0, 1:, t:] += D * G[:, 0]
            new[:, 1, 1:, t:] += D * (G[:, 1] + V[r, b, None, None] * G[:, 0])
            X = new
        finish(X, r, R)
    if per_t:
        np.add.at(num, keys // (n + 1), _conv_rows(acc, B[keys % (n + 1), :K1], K1))
    return num


def maj_at_k(scores, answers, ks=None) -> np.ndarray:
    """Exact expected score of majority voting over a random k-subset of each item's n samples.

    An answer's value is the mean score of its samples (its score when scoring is per answer). Ties for
    the top count are split evenly (the expectation under random tie-breaking). Missing answers are each
    distinct. Items with the same answer-count signature are computed once.
    >>> maj_at_k([[1, 1, 0, 0]], [["4", "4", "5", "6"]], ks=[1, 3])
    array([[0.5       , 0.66666667]])
    """
    s = _mat(scores)
    n_items, n = s.shape
    ks = _ks(ks, n)
    codes = _answer_codes(answers)
    if codes.shape != s.shape:
        raise ValueError("answers and scores must have the same shape")
    cnt, val, bounds = _answer_counts(codes, s)
    row = np.repeat(np.arange(n_items), np.diff(bounds))
    o = np.lexsort((val, -cnt, row))
    rank = np.arange(len(cnt)) - bounds[row[o]]
    CV = np.zeros((n_items, 2 * np.diff(bounds).max()))
    CV[row[o], 2 * rank], CV[row[o], 2 * rank + 1] = cnt[o], val[o]
    sig, inv = np.unique(CV, axis=0, return_inverse=True)
    num = _maj_sums(sig[:, ::2].astype(np.int64), sig[:, 1::2], n, int(ks.max()))
    return num[inv.ravel()][:, ks] / _binom_table(n)[n, ks]


# ---------------------------------------------------------------------------------- per item
def _answer_stats(codes: np.ndarray):
    cnt, _, bounds = _answer_counts(codes, np.zeros(codes.shape))
    n = codes.shape[1]
    row = np.repeat(np.arange(codes.shape[0]), np.diff(bounds))
    p = cnt / n
    entropy = np.bincount(row, -p * np.log2(p), minlength=codes.shape[0])
    agreement = np.maximum.reduceat(cnt, bounds[:-1]) / n
    return np.diff(bounds), entropy + 0.0, agreement


def per_item(df: pd.DataFrame, by=BY, threshold: float = 1.0, ragged: str = "truncate") -> pd.DataFrame:
    """One row per (cell, item) of every sampled cell.

    p: fraction of samples correct (mean score); greedy: the greedy score; greedy_correct; n_answers,
    entropy (bits) and agreement (share of the modal answer) of the extracted answers; greedy_agreement:
    share of samples whose answer equals greedy's.
    """
    by, _ = _key_cols(df, by)
    has_ans = "extracted" in df.columns
    frames = []
    for g, samples in _by_groups(cells(df, by, ragged), by):
        for s in samples:
            S = s.matrix("score")
            out = pd.DataFrame({"item_id": s.item_ids(), "n": s.n, "p": S.mean(1),
                                "n_correct": (S >= threshold).sum(1)})
            out["group"] = s.groups() if s.groups() is not None else None
            gs = np.full(s.n_items, np.nan)
            g_ans = None
            if g is not None:
                common, ig, is_ = np.intersect1d(g.items, s.items, assume_unique=True, return_indices=True)
                gs[is_] = g.matrix("score")[ig].mean(1)
                if has_ans:
                    g_ans = np.full(s.n_items, None, dtype=object)
                    g_ans[is_] = g.matrix("extracted", dtype=None)[ig, 0]
            out["greedy"] = gs
            out["greedy_correct"] = pd.array(np.where(np.isnan(gs), None, gs >= threshold), dtype="boolean")
            if has_ans:
                A = s.matrix("extracted", dtype=None)
                out["n_answers"], out["entropy"], out["agreement"] = _answer_stats(_answer_codes(A))
                if g_ans is not None:
                    ok = ~pd.isna(A) & (A == g_ans[:, None])
                    out["greedy_agreement"] = np.where(pd.isna(g_ans), np.nan, ok.mean(1))
            for k, val in reversed(list(s.key.items())):
                out.insert(0, k, val)
            frames.append(out)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


# ---------------------------------------------------------------------------------- tables
def _ci_method(groups) -> str:
    return "cluster bootstrap" if groups is not None else "item bootstrap"


def _ci_weights(n: int, n_boot: int, seed, groups) -> np.ndarray | None:
    """Bootstrap weights for a table's CIs; None without resamples, or with one cluster (a CI of width 0
    would claim a certainty one cluster cannot give)."""
    if not n_boot or not n or (groups is not None and n_clusters(groups) < 2):
        return None
    return _boot_weights(n, n_boot, seed, groups)


def _cell_summary(cell: Cell, n_boot: int, ci: float, seed, ddof: int = 1) -> dict:
    """mean (over items of per-item mean scores), se, se_clustered, bootstrap CI (clusters resampled when
    there are groups), single_run_se and std/best/worst over the runs. Unscored samples are left out (an
    item with none is dropped); n_unscored counts them."""
    S = cell.matrix("score")
    keep = np.isfinite(S).any(1)
    groups = cell.groups()
    S, groups = S[keep], (groups[keep] if groups is not None else None)
    runs, pbar = _nanmean(S, 0), _nanmean(S, 1)
    r = runs[np.isfinite(runs)]
    n = len(pbar)
    row = {"n_items": n, "n_runs": cell.n, "n_unscored": int(np.isnan(cell.matrix("score")).sum()),
           "mean": pbar.mean() if n else np.nan, "se": _se(pbar),
           "se_clustered": clustered_se(pbar, groups) if groups is not None else np.nan,
           "single_run_se": float(_nanmean(_nanse(S), 0)) if n > 1 else np.nan,
           # a single run (greedy) has no spread, whatever the ddof
           "std": r.std(ddof=ddof) if len(r) > 1 else np.nan,
           "best": r.max() if len(r) else np.nan, "worst": r.min() if len(r) else np.nan}
    w = _ci_weights(n, n_boot, seed, groups)
    row["ci_low"], row["ci_high"] = _boot_ci(w, pbar, ci) if w is not None else (np.nan, np.nan)
    row["ci_method"] = _ci_method(groups) if w is not None else None
    return row


def config_table(df: pd.DataFrame, by=BY, n_boot: int = 1000, ci: float = 0.95, seed=0,
                 ragged: str = "truncate", ddof: int = 1) -> pd.DataFrame:
    """One row per cell, greedy and sampled: mean over items (of per-item mean scores), se, se_clustered,
    bootstrap ci_low/ci_high (whole groups resampled when there are groups; ci_method says which), and over
    runs std (with ``ddof``; the paper's scripts used 0)/best/worst with n_runs (1 for greedy) and n_unscored."""
    by, _ = _key_cols(df, by)
    rows = []
    for c in cells(df, by, ragged):
        rows.append({**c.key, "decoding": "greedy" if c.greedy else "sampled",
                     **_cell_summary(c, n_boot, ci, seed, ddof)})
    return pd.DataFrame(rows)


def sweep_table(df: pd.DataFrame, x: str = "temperature", by=BY, **kw) -> pd.DataFrame:
    """config_table as a function of ``x`` (a config column or any column, e.g. a merged model_size or
    alignment column), sorted by (by..., decoding, x). Keyword arguments go to config_table.

    >>> sweep_table(df, "repetition_penalty")   # greedy and sampled lines per model, benchmark
    """
    if x not in df.columns:
        raise KeyError(f"sweep column {x!r} not in the table")
    by, _ = _key_cols(df, by)
    t = config_table(df, by=by if x in CONFIG_COLS or x in by else by + [x], **kw)
    return t.sort_values([c for c in by if c != x] + ["decoding", x], kind="stable", ignore_index=True)


def gap_table(df: pd.DataFrame, by=BY, n_boot: int = 1000, ci: float = 0.95, seed=0,
              ragged: str = "truncate", ddof: int = 1) -> pd.DataFrame:
    """Paper Table 2 with uncertainty: one row per sampled cell, against its group's greedy cell.

    greedy; mean/std/best/worst over the n_runs sampled runs (std with ``ddof``: default 1, the sample std;
    the paper's scripts used numpy's default 0); gap = greedy - mean with its paired SE (gap_se), bootstrap
    CIs and p_value; SEs plain and clustered by ``group``; single_run_se is the SE one sampled run would have
    (the per-item mean over N samples shrinks it to mean_se).
    Without groups the CIs resample items and p_value is the paired t; with groups the CIs resample whole
    groups and p_value is a t on gap_se_clustered with n_clusters - 1 df (ci_method, p_method say which).
    Scores are over the items greedy and sampling share; unscored samples are left out (an item with none, or
    with an unscored greedy, is dropped) and counted in n_unscored / greedy_n_unscored.
    """
    by, _ = _key_cols(df, by)
    rows = []
    for g, samples in _by_groups(cells(df, by, ragged), by):
        for s in samples:
            gc, sc = _align(g, s) if g is not None else (None, s)
            keep = np.isfinite(sc.matrix("score")).any(1)
            n_uns, g_uns = int(np.isnan(sc.matrix("score")).sum()), np.nan
            if gc is not None:
                keep &= np.isfinite(gc.matrix("score")).any(1)
                g_uns = int(np.isnan(gc.matrix("score")).sum())
            if not keep.all():
                sc, gc = sc.subset(keep), (gc.subset(keep) if gc is not None else None)
            S = sc.matrix("score")
            G = _nanmean(gc.matrix("score"), 1) if gc is not None else np.full(sc.n_items, np.nan)
            pbar, groups = _nanmean(S, 1), sc.groups()
            d = G - pbar
            summ = _cell_summary(sc, 0, ci, seed, ddof)
            _, t, p = _t_p(d, groups)
            avg = (lambda x: x.mean()) if sc.n_items else (lambda x: np.nan)
            row = {**sc.key, "n_items": sc.n_items, "n_runs": sc.n, "n_unscored": n_uns, "greedy_n_unscored": g_uns,
                   "greedy": avg(G), "greedy_se": _se(G),
                   "mean": summ["mean"], "mean_se": summ["se"], "single_run_se": summ["single_run_se"],
                   "std": summ["std"], "best": summ["best"], "worst": summ["worst"],
                   "gap": avg(d), "gap_se": _se(d), "p_value": p,
                   "p_method": "clustered t (n_clusters - 1 df)" if groups is not None else "paired t"}
            w = _ci_weights(sc.n_items, n_boot, seed, groups)
            if n_boot:
                lo, hi = _boot_ci(w, np.column_stack([G, pbar, d]), ci) if w is not None else (np.full(3, np.nan),) * 2
                for i, name in enumerate(("greedy", "mean", "gap")):
                    row[f"{name}_ci_low"], row[f"{name}_ci_high"] = lo[i], hi[i]
                row["ci_method"] = _ci_method(groups) if w is not None else None
            cl = (lambda x: clustered_se(x, groups)) if groups is not None else (lambda x: np.nan)
            row.update(greedy_se_clustered=cl(G), mean_se_clustered=cl(pbar), gap_se_clustered=cl(d),
                       n_clusters=n_clusters(groups) if groups is not None else np.nan)
            rows.append(row)
    return pd.DataFrame(rows)


def run_scores(df: pd.DataFrame, by=BY, ragged: str = "truncate") -> pd.DataFrame:
    """Long table of sampled-run scores: one row per (sampled cell, run) with score, n_items, n_unscored."""
    by, _ = _key_cols(df, by)
    frames = []
    for c in cells(df, by, ragged):
        if c.greedy:
            continue
        S = c.matrix("score")  # a run's score is over its scored items (n_items - n_unscored)
        frames.append(pd.DataFrame({**c.key, "run": np.arange(c.n), "score": _nanmean(S, 0), "n_items": c.n_items,
                                    "n_unscored": np.isnan(S).sum(0)}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def best_of_k_curves(df: pd.DataFrame, selectors=(), ks=None, by=BY,
                     methods=("oracle", "random", "majority"), n_boot: int = 1000, ci: float = 0.95,
                     seed=0, threshold: float = 1.0, ragged: str = "truncate") -> pd.DataFrame:
    """Best-of-k curves per sampled cell: one row per (cell, method, k) with value (mean over items), se,
    bootstrap ci_low/ci_high (over items, all k together) and n_items, n.

    methods: "oracle" (best by score; = pass@k for 0/1), "pass" (pass@k at ``threshold``), "random",
    "majority" (maj@k on ``extracted``); ``selectors`` adds one curve per column (e.g. "reward",
    "mean_logprob"), named by the column. ks defaults to 1..n.
    """
    by, _ = _key_cols(df, by)
    frames = []
    for c in cells(df, by, ragged):
        if c.greedy:
            continue
        S = c.matrix("score")
        k = _ks(ks, c.n)
        curves = {}
        for m in methods:
            if m == "oracle":
                curves[m] = best_of_k(S, S, k)
            elif m == "pass":
                curves[m] = pass_at_k(S, k, threshold)
            elif m == "random":
                curves[m] = best_of_k(S, None, k)
            elif m == "majority":
                curves[m] = maj_at_k(S, c.matrix("extracted", dtype=None), k)
            else:
                raise ValueError(f"unknown method {m!r}")
        for sel in selectors:
            curves[sel] = best_of_k(S, c.matrix(sel), k)
        V = np.concatenate(list(curves.values()), axis=1)  # items x (methods * k)
        out = pd.DataFrame({"method": np.repeat(list(curves), len(k)), "k": np.tile(k, len(curves)),
                            "value": V.mean(0), "se": _se(V)})
        if n_boot:
            out["ci_low"], out["ci_high"] = _boot_ci(_boot_weights(c.n_items, n_boot, seed), V, ci)
        out["n_items"], out["n"] = c.n_items, c.n
        for key, val in reversed(list(c.key.items())):
            out.insert(0, key, val)
        frames.append(out)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def length_table(df: pd.DataFrame, by=BY, ragged: str = "truncate") -> pd.DataFrame:
    """Output length in tokens per cell (paper Figure 6): mean_tokens (mean over items of per-item means),
    se, median_tokens, n_items, n_completions, and ratio_to_greedy within the ``by`` group."""
    by, _ = _key_cols(df, by)
    rows = []
    for g, samples in _by_groups(cells(df, by, ragged), by):
        g_mean = g.matrix("n_tokens").mean() if g is not None else np.nan
        for c in ([g] if g is not None else []) + samples:
            L = c.matrix("n_tokens")
            rows.append({**c.key, "decoding": "greedy" if c.greedy else "sampled", "mean_tokens": L.mean(),
                         "se": _se(L.mean(1)), "median_tokens": float(np.median(L)), "n_items": c.n_items,
                         "n_completions": L.size, "ratio_to_greedy": L.mean() / g_mean})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------- rankings
TIE_TOL = 1e-12  # scores closer than this are tied (means of the same counts can differ in the last bit)


def _sgn(x: np.ndarray) -> np.ndarray:
    return np.where(np.abs(x) <= TIE_TOL, 0.0, np.sign(x))


def _tau_b(x: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Kendall tau-b between x (m,) and each row of Y (r, m)."""
    i, j = np.triu_indices(len(x), 1)
    sx, sy = _sgn(x[i] - x[j]), _sgn(Y[:, i] - Y[:, j])
    den = np.sqrt((sx != 0).sum() * (sy != 0).sum(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (sx * sy).sum(1) / den, np.nan)


def _ranking_groups(df, by, ragged):
    """Per (by..., sampling params): models, greedy per-item scores, sampled items x N matrices, aligned."""
    by, _ = _key_cols(df, by)
    params = [c for c in PARAM_COLS if c in df.columns and c not in by]
    cs = cells(df, ["model"] + by, ragged)
    greedy: dict[tuple, Cell] = {}
    for c in cs:
        if c.greedy:
            k = tuple(c.key[b] for b in ["model"] + by)
            if k in greedy:
                raise ValueError(f"several greedy configs for {dict(zip(['model'] + by, k))}; add the column "
                                 "that tells them apart (e.g. 'repetition_penalty') to by=")
            greedy[k] = c
    groups: dict[tuple, dict[str, Cell]] = {}
    for c in cs:
        if c.greedy:
            continue
        k = tuple(c.key[b] for b in by + params)
        d = groups.setdefault(k, {})
        if c.key["model"] in d:
            raise ValueError(f"model {c.key['model']!r} has two sampled configs with params {k}")
        d[c.key["model"]] = c
    for k, d in groups.items():
        models = sorted(d)
        gcells = [greedy.get(tuple([m]) + k[: len(by)]) for m in models]
        items = d[models[0]].items
        for c in list(d.values()) + [g for g in gcells if g is not None]:
            items = np.intersect1d(items, c.items, assume_unique=True)
        if any(c.n_items != len(items) for c in d.values()):
            warnings.warn(f"{dict(zip(by + params, k))}: models cover different items; ranking on the "
                          f"{len(items)} shared", stacklevel=3)
        n = min(c.n for c in d.values())
        # unscored samples (NaN) are left out of a run's mean, as in gap_table
        runs = np.stack([_nanmean(d[m].subset(np.searchsorted(d[m].items, items)).matrix("score")[:, :n], 0)
                         for m in models], axis=1)  # (n_runs, models)
        g = np.array([_nanmean(gc.subset(np.searchsorted(gc.items, items)).matrix("score").ravel(), 0)
                      if gc is not None else np.nan for gc in gcells])
        yield dict(zip(by + params, k)), models, g, runs, len(items)


def rank_table(df: pd.DataFrame, by=("benchmark",), ragged: str = "truncate") -> pd.DataFrame:
    """Long table of model scores and ranks (1 = best; ties, within TIE_TOL, share the best rank) under
    greedy, the sampling mean and each sampled run, per (by..., sampling params), on the items all models
    share."""
    frames = []
    for key, models, g, runs, n_items in _ranking_groups(df, by, ragged):
        src = [("greedy", -1, g), ("mean", -1, runs.mean(0))] + [("run", j, r) for j, r in enumerate(runs)]
        for name, j, sc in src:
            rank = 1.0 + (sc[None, :] > sc[:, None] + TIE_TOL).sum(1)  # models better beyond a tie
            frames.append(pd.DataFrame({**key, "source": name, "run": j, "model": models, "score": sc,
                                        "rank": np.where(np.isnan(sc), np.nan, rank), "n_items": n_items}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def rank_flips(df: pd.DataFrame, by=("benchmark",), ragged: str = "truncate") -> pd.DataFrame:
    """How often sampled runs reorder the models relative to greedy, per (by..., sampling params).

    A flip is a model pair strictly ordered under greedy and strictly reversed in a run; a tie (scores
    within TIE_TOL), under greedy or in the run, is never a flip. frac_runs_reordered: share of runs with at
    least one flip; frac_top_changed: share of runs whose top model(s) share none with greedy's (so breaking
    a greedy tie at the top is no change); pair_flip_rate: share of (strictly ordered pair, run) that flip;
    tau_mean/tau_min: Kendall tau-b of greedy vs run scores; tau_greedy_vs_mean. Orders write ties as "=".
    NaN where a model has no greedy score.
    """
    rows = []
    for key, models, g, runs, n_items in _ranking_groups(df, by, ragged):
        i, j = np.triu_indices(len(models), 1)
        sg = _sgn(g[i] - g[j])
        flips = (sg != 0) & (_sgn(runs[:, i] - runs[:, j]) == -sg)  # (n_runs, pairs)
        top_g = g >= np.max(g) - TIE_TOL
        top_r = runs >= runs.max(1, keepdims=True) - TIE_TOL
        has_g = bool(np.isfinite(g).all())
        taus = _tau_b(g, runs)

        def order(s):
            o = np.argsort(-s, kind="stable")
            return models[o[0]] + "".join((" = " if abs(s[a] - s[b]) <= TIE_TOL else " > ") + models[b]
                                          for a, b in zip(o[:-1], o[1:]))

        rows.append({**key, "n_models": len(models), "n_runs": runs.shape[0], "n_items": n_items,
                     "greedy_order": order(g) if has_g else None, "mean_order": order(runs.mean(0)),
                     "frac_runs_reordered": float(np.mean(flips.any(1))) if has_g else np.nan,
                     "frac_top_changed": float(np.mean(~(top_r & top_g).any(1))) if has_g else np.nan,
                     "pair_flip_rate": float(flips.sum() / max((sg != 0).sum() * runs.shape[0], 1)) if has_g else np.nan,
                     "tau_mean": float(np.nanmean(taus)) if np.isfinite(taus).any() else np.nan,
                     "tau_min": float(np.nanmin(taus)) if np.isfinite(taus).any() else np.nan,
                     "tau_greedy_vs_mean": float(_tau_b(g, runs.mean(0)[None])[0])})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------- synthetic data
def synthetic_table(models=("m1",), benchmarks=("gsm8k",), n_items: int = 50, n_samples: int = 16,
                    temperatures=(0.7,), n_groups: int = 5, seed=0) -> pd.DataFrame:
    """A scored table in the input contract, for tests, benchmarks and demos.

    Per-item pass rates are U-shaped (expit of ability - difficulty) and fall with temperature; wrong
    answers come from a few per-item distractors (Zipf-like), plus unique junk and missing extractions;
    greedy is better or worse than one sample by model; ``reward`` = score + noise; sampled outputs run longer.
    >>> synthetic_table(n_items=1319, n_samples=128).shape
    (170151, 15)
    """
    rng = np.random.default_rng(seed)
    frames = []
    for mi, model in enumerate(models):
        ability = 0.8 * mi + rng.normal(0.5, 0.3)
        greedy_edge = rng.uniform(0.6, 1.3)  # < 1: greedy beats one sample, > 1: loses
        for benchmark in benchmarks:
            items = np.array([f"{benchmark}-{i:05d}" for i in range(n_items)])
            groups = np.array([f"g{i % n_groups}" for i in range(n_items)])
            z = rng.normal(0, 1.5, n_items)
            base_len = rng.gamma(4, 40, n_items)

            def block(p, n, greedy, temp):
                ok = rng.random((n_items, n)) < p[:, None]
                wrong = np.minimum(rng.geometric(0.5, (n_items, n)), 4) + np.arange(n_items)[:, None] * 10
                ans = np.where(ok, (np.arange(n_items) * 10)[:, None], wrong).astype(str).astype(object)
                junk = ~ok & (rng.random((n_items, n)) < 0.1)
                ans[junk] = [f"junk{x}" for x in rng.integers(0, 10 ** 9, junk.sum())]
                ans[~ok & ~junk & (rng.random((n_items, n)) < 0.05)] = None
                score = ok.astype(float)
                return pd.DataFrame({
                    "model": model, "benchmark": benchmark, "item_id": np.repeat(items, n),
                    "group": np.repeat(groups, n), "config_key": "greedy" if greedy else f"T{temp:g}",
                    "greedy": greedy, "temperature": 0.0 if greedy else float(temp), "top_p": 1.0,
                    "top_k": -1, "repetition_penalty": 1.0, "sample_idx": np.tile(np.arange(n), n_items),
                    "score": score.ravel(), "extracted": ans.ravel(),
                    "n_tokens": rng.poisson(base_len[:, None] * (1 + 0.15 * temp), (n_items, n)).ravel(),
                    "reward": (score + rng.normal(0, 0.8, score.shape)).ravel()})

            p0 = special.expit(1.5 * (ability - z))
            frames.append(block(p0 ** greedy_edge, 1, True, 0.0))
            for temp in temperatures:
                frames.append(block(special.expit(1.5 * (ability - z) - 0.8 * temp), n_samples, False, temp))
    return pd.concat(frames, ignore_index=True)
