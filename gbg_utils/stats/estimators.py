"""k-sample estimators: pass@k, best-of-k and maj@k as exact means over all C(N, k) subsets (no Monte Carlo),
and the spread of the extracted answers (a missing answer is its own distinct answer: failures never vote together).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special


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


def n_unscored(scores) -> int:
    """How many samples are unscored (NaN): every estimator leaves them out and counts them here."""
    return int(np.isnan(_mat(scores)).sum())


def _per_count(fn, s: np.ndarray, ks, *others) -> np.ndarray:
    """``fn(scores, *others, ks)`` per item on its scored samples only: items are grouped by their number of
    scored samples and each group computed on its compacted rows. An unscored sample is left out, never a
    failure; an item with fewer scored samples than some k raises (no silent 0); one with none is NaN."""
    ok = np.isfinite(s)
    if ok.all():
        return fn(s, *others, _ks(ks, s.shape[1]))
    cnt = ok.sum(1)
    kk = _ks(ks, s.shape[1])
    if cnt[cnt > 0].size and kk.max() > cnt[cnt > 0].min():
        raise ValueError(f"k = {kk.max()} exceeds the {cnt[cnt > 0].min()} scored samples of an item: ask for k <= that")
    out = np.full((s.shape[0], kk.size), np.nan)
    order = np.argsort(~ok, axis=1, kind="stable")  # scored samples first, in their order
    for c in np.unique(cnt[cnt > 0]):
        rows = np.flatnonzero(cnt == c)
        take = order[rows, :c]
        sub = [np.take_along_axis(np.asarray(x)[rows], take, 1) for x in (s, *others)]
        out[rows] = fn(sub[0], *sub[1:], kk)
    return out


def pass_at_k(scores, ks=None, threshold: float = 1.0) -> np.ndarray:
    """Unbiased pass@k per item (Chen et al. 2021): 1 - C(n-c, k)/C(n, k), c = #(score >= threshold).
    Unscored (NaN) samples are left out (n is the item's scored count; `n_unscored` counts them).

    >>> pass_at_k([[1, 0, 0, 0]], ks=[1, 2])
    array([[0.25, 0.5 ]])
    """
    return _per_count(lambda x, k: _pass(x, k, threshold), _mat(scores), ks)


def _pass(s: np.ndarray, ks, threshold: float) -> np.ndarray:
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
    ``selector=None`` (all tied) gives random@k = the item's mean score. Unscored (NaN) samples are left out.
    >>> best_of_k([[1, 0, 0, 0]], selector=[[0.1, 0.9, 0.5, 0.2]], ks=[1, 4])
    array([[0.25, 0.  ]])
    """
    s = _mat(scores)
    if selector is None:
        return _per_count(_best, s, ks)
    return _per_count(_best, s, ks, _mat(selector))


def _best(s: np.ndarray, *rest) -> np.ndarray:
    *sel_, ks = rest
    selector = sel_[0] if sel_ else None
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
    u, inv, cnt = np.unique((codes + base * np.arange(n_items)[:, None]).ravel(), return_inverse=True, return_counts=True)
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
    pad[..., w - 1 : w - 1 + d] = x[..., :d]
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
                    add[:, 2 * t :] += 0.5 * (w0 + w1)[r, None] * A * Bt * BR[r, : K1 - 2 * t]
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
    distinct. Unscored (NaN) samples are left out. Items with the same answer-count signature are computed once.
    >>> maj_at_k([[1, 1, 0, 0]], [["4", "4", "5", "6"]], ks=[1, 3])
    array([[0.5       , 0.66666667]])
    """
    s = _mat(scores)
    a = np.asarray(answers, dtype=object)
    if a.shape != s.shape:
        raise ValueError("answers and scores must have the same shape")
    return _per_count(_maj, s, ks, a)


def _maj(s: np.ndarray, answers, ks) -> np.ndarray:
    n_items, n = s.shape
    codes = _answer_codes(answers)
    cnt, val, bounds = _answer_counts(codes, s)
    row = np.repeat(np.arange(n_items), np.diff(bounds))
    o = np.lexsort((val, -cnt, row))
    rank = np.arange(len(cnt)) - bounds[row[o]]
    CV = np.zeros((n_items, 2 * np.diff(bounds).max()))
    CV[row[o], 2 * rank], CV[row[o], 2 * rank + 1] = cnt[o], val[o]
    sig, inv = np.unique(CV, axis=0, return_inverse=True)
    num = _maj_sums(sig[:, ::2].astype(np.int64), sig[:, 1::2], n, int(ks.max()))
    return num[inv.ravel()][:, ks] / _binom_table(n)[n, ks]


def _answer_stats(codes: np.ndarray):
    cnt, _, bounds = _answer_counts(codes, np.zeros(codes.shape))
    n = codes.shape[1]
    row = np.repeat(np.arange(codes.shape[0]), np.diff(bounds))
    p = cnt / n
    entropy = np.bincount(row, -p * np.log2(p), minlength=codes.shape[0])
    agreement = np.maximum.reduceat(cnt, bounds[:-1]) / n
    return np.diff(bounds), entropy + 0.0, agreement


def answer_stats(answers) -> tuple[int, float, float]:
    """One item's extracted answers: (distinct answers, entropy in bits, share of the modal answer).

    The rule, here and in `per_item`: a missing answer (None/NaN) is its own distinct answer -- failures never
    agree with each other, so n failed extractions count as n answers, not one."""
    codes = _answer_codes(np.array([list(answers)], dtype=object))
    n, entropy, agreement = _answer_stats(codes)
    return int(n[0]), float(entropy[0]), float(agreement[0])
