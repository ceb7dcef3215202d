"""Tables over the tidy frame: per item, per config, the greedy-vs-sampling gap, sweeps, run scores, lengths,
best-of-k curves, and best-of-N selection (`best_of_k_table`, formerly selection.py).

Best-of-N selection:

    >>> df = store.frame(extra_scorers=["reward:ArmoRM-Llama3-8B-v0.1"])
    >>> t = best_of_k_table(df)          # oracle, random, majority, logprob, reward:* (whatever df holds)
    >>> t[(t.selector == "reward:ArmoRM-Llama3-8B-v0.1") & (t.k == 16)][["model", "value", "greedy"]]

Selectors:
* "oracle": the best sample by its own score (pass@k for 0/1 scores), an upper bound no real selector beats;
* "random": any sample (= the mean score; the k = 1 point of every curve);
* "majority": self-consistency, the most frequent extracted answer (maj@k; a missing answer never votes
  with another, and ties split evenly);
* "logprob": the sample with the highest mean token log-probability under the policy model itself (stored
  only when generated with logprobs=True);
* any other name is a column of the frame used as the ranking, higher is better, e.g. "reward:<name>" from
  `score.reward.score_rewards`. A sample with no value there (e.g. too long for the reward model) ranks last.

Every value is the exact mean over all C(N, k) subsets of each item's N samples (`stats.best_of_k`,
`stats.maj_at_k`), not a Monte-Carlo draw. Ties in the ranking are broken at random in expectation.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats as sps

from .cells import BY, CONFIG_COLS, Cell, _align, _by_groups, _key_cols, cells
from .estimators import _answer_codes, _answer_stats, _ks, best_of_k, maj_at_k, pass_at_k
from .uncertainty import _boot_ci, _boot_weights, _nanmean, _nanse, _se, _t_p, clustered_se, n_clusters


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
            out = pd.DataFrame({"item_id": s.item_ids(), "n": s.n, "p": S.mean(1), "n_correct": (S >= threshold).sum(1)})
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
    row = {
        "n_items": n,
        "n_runs": cell.n,
        "n_unscored": int(np.isnan(cell.matrix("score")).sum()),
        "mean": pbar.mean() if n else np.nan,
        "se": _se(pbar),
        "se_clustered": clustered_se(pbar, groups) if groups is not None else np.nan,
        "single_run_se": float(_nanmean(_nanse(S), 0)) if n > 1 else np.nan,
        # a single run (greedy) has no spread, whatever the ddof
        "std": r.std(ddof=ddof) if len(r) > 1 else np.nan,
        "best": r.max() if len(r) else np.nan,
        "worst": r.min() if len(r) else np.nan,
    }
    w = _ci_weights(n, n_boot, seed, groups)
    row["ci_low"], row["ci_high"] = _boot_ci(w, pbar, ci) if w is not None else (np.nan, np.nan)
    row["ci_method"] = _ci_method(groups) if w is not None else None
    return row


def config_table(
    df: pd.DataFrame, by=BY, n_boot: int = 1000, ci: float = 0.95, seed=0, ragged: str = "truncate", ddof: int = 1
) -> pd.DataFrame:
    """One row per cell, greedy and sampled: mean over items (of per-item mean scores), se, se_clustered,
    bootstrap ci_low/ci_high (whole groups resampled when there are groups; ci_method says which), and over
    runs std (with ``ddof``; the paper's scripts used 0)/best/worst with n_runs (1 for greedy) and n_unscored."""
    by, _ = _key_cols(df, by)
    rows = []
    for c in cells(df, by, ragged):
        rows.append({**c.key, "decoding": "greedy" if c.greedy else "sampled", **_cell_summary(c, n_boot, ci, seed, ddof)})
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


def gap_table(
    df: pd.DataFrame, by=BY, n_boot: int = 1000, ci: float = 0.95, seed=0, ragged: str = "truncate", ddof: int = 1
) -> pd.DataFrame:
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
            row = {
                **sc.key,
                "n_items": sc.n_items,
                "n_runs": sc.n,
                "n_unscored": n_uns,
                "greedy_n_unscored": g_uns,
                "greedy": avg(G),
                "greedy_se": _se(G),
                "mean": summ["mean"],
                "mean_se": summ["se"],
                "single_run_se": summ["single_run_se"],
                "std": summ["std"],
                "best": summ["best"],
                "worst": summ["worst"],
                "gap": avg(d),
                "gap_se": _se(d),
                "p_value": p,
                "p_method": "clustered t (n_clusters - 1 df)" if groups is not None else "paired t",
            }
            w = _ci_weights(sc.n_items, n_boot, seed, groups)
            if n_boot:
                lo, hi = _boot_ci(w, np.column_stack([G, pbar, d]), ci) if w is not None else (np.full(3, np.nan),) * 2
                for i, name in enumerate(("greedy", "mean", "gap")):
                    row[f"{name}_ci_low"], row[f"{name}_ci_high"] = lo[i], hi[i]
                row["ci_method"] = _ci_method(groups) if w is not None else None
            cl = (lambda x: clustered_se(x, groups)) if groups is not None else (lambda x: np.nan)
            row.update(
                greedy_se_clustered=cl(G),
                mean_se_clustered=cl(pbar),
                gap_se_clustered=cl(d),
                n_clusters=n_clusters(groups) if groups is not None else np.nan,
            )
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
        frames.append(
            pd.DataFrame(
                {**c.key, "run": np.arange(c.n), "score": _nanmean(S, 0), "n_items": c.n_items, "n_unscored": np.isnan(S).sum(0)}
            )
        )
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def best_of_k_curves(
    df: pd.DataFrame,
    selectors=(),
    ks=None,
    by=BY,
    methods=("oracle", "random", "majority"),
    n_boot: int = 1000,
    ci: float = 0.95,
    seed=0,
    threshold: float = 1.0,
    ragged: str = "truncate",
) -> pd.DataFrame:
    """Best-of-k curves per sampled cell: one row per (cell, selector, k) with value (mean over items), se,
    bootstrap ci_low/ci_high (all k together; whole groups resampled where the benchmark has groups, ci_method
    says which), gain_ci_low/gain_ci_high (value - greedy, paired over the same items, where a greedy cell
    exists) and n_items, n, n_unscored. Unscored samples are left out and counted; ks run up to the fewest
    scored samples of an item. "majority" is refused on code benchmarks (NO_MAJORITY).

    methods: "oracle" (best by score; = pass@k for 0/1), "pass" (pass@k at ``threshold``), "random",
    "majority" (maj@k on ``extracted``); ``selectors`` adds one curve per column (e.g. "reward",
    "mean_logprob"), named by the column. ks defaults to 1..n.
    """
    by, _ = _key_cols(df, by)
    frames = []
    for g, samples in _by_groups(cells(df, by, ragged), by):
        for c in samples:
            gc, c = _align(g, c) if g is not None else (None, c)
            out = _curves_of(c, gc, selectors, ks, methods, n_boot, ci, seed, threshold)
            if out is not None:
                frames.append(out)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


# Benchmarks whose extracted answers cannot be compared as strings (code): no majority vote there.
NO_MAJORITY = frozenset({"humaneval"})


def _band(w: np.ndarray, X: np.ndarray, ci: float, groups):
    """A best-of-k band: the item bootstrap's percentiles, or with groups a cluster band that does not under-cover
    at few clusters: mean +- t(G-1) x the cluster bootstrap's SD x sqrt(G / (G-1)) (the bootstrap's variance
    is (G-1)/G of the clustered one; t for G-1 df)."""
    if groups is None:
        return _boot_ci(w, X, ci)
    g = n_clusters(groups)
    means = (w @ X) / w.sum(1)[:, None]
    half = sps.t.ppf(0.5 + ci / 2, g - 1) * means.std(0, ddof=1) * np.sqrt(g / (g - 1))
    m = X.mean(0)
    return m - half, m + half


def _curves_of(c, gc, selectors, ks, methods, n_boot, ci, seed, threshold):
    """One sampled cell's curves (see best_of_k_curves); ``gc`` its aligned greedy cell or None."""
    S = c.matrix("score")
    keep = np.isfinite(S).any(1)  # an item with no scored sample is left out (and counted)
    n_uns = int(np.isnan(S[keep]).sum())
    if not keep.any():
        return None
    if not keep.all():
        c, gc = c.subset(keep), (gc.subset(keep) if gc is not None else None)
        S = c.matrix("score")
    n = int(np.isfinite(S).sum(1).min())  # ks run up to the fewest scored samples of an item
    k = _ks(ks if ks is None else [x for x in np.atleast_1d(ks) if x <= n], n)
    if c.key.get("benchmark") in NO_MAJORITY and "majority" in methods:
        raise ValueError(f"majority voting on {c.key['benchmark']}: its answers are code, not comparable strings")
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
    out = pd.DataFrame(
        {"selector": np.repeat(list(curves), len(k)), "k": np.tile(k, len(curves)), "value": V.mean(0), "se": _se(V)}
    )
    groups = c.groups()
    G = _nanmean(gc.matrix("score"), 1) if gc is not None else np.full(c.n_items, np.nan)
    paired = np.isfinite(G)
    w = _ci_weights(c.n_items, n_boot, seed, groups)
    if n_boot:
        lo, hi = _band(w, V, ci, groups) if w is not None else (np.full(V.shape[1], np.nan),) * 2
        out["ci_low"], out["ci_high"] = lo, hi
        if paired.all():  # value - greedy over the same items, resampled together (whole groups where there are groups)
            glo, ghi = _band(w, V - G[:, None], ci, groups) if w is not None else (np.full(V.shape[1], np.nan),) * 2
            out["gain_ci_low"], out["gain_ci_high"] = glo, ghi
        out["ci_method"] = (
            ("cluster bootstrap-t (n_clusters - 1 df)" if groups is not None else _ci_method(groups)) if w is not None else None
        )
    out["n_items"], out["n"], out["n_unscored"] = c.n_items, c.n, n_uns
    for key, val in reversed(list(c.key.items())):
        out.insert(0, key, val)
    return out


def length_table(df: pd.DataFrame, by=BY, ragged: str = "truncate") -> pd.DataFrame:
    """Output length in tokens per cell (paper Figure 6): mean_tokens (mean over items of per-item means),
    se, median_tokens, n_items, n_completions, and ratio_to_greedy within the ``by`` group."""
    by, _ = _key_cols(df, by)
    rows = []
    for g, samples in _by_groups(cells(df, by, ragged), by):
        g_mean = g.matrix("n_tokens").mean() if g is not None else np.nan
        for c in ([g] if g is not None else []) + samples:
            L = c.matrix("n_tokens")
            rows.append(
                {
                    **c.key,
                    "decoding": "greedy" if c.greedy else "sampled",
                    "mean_tokens": L.mean(),
                    "se": _se(L.mean(1)),
                    "median_tokens": float(np.median(L)),
                    "n_items": c.n_items,
                    "n_completions": L.size,
                    "ratio_to_greedy": L.mean() / g_mean,
                }
            )
    return pd.DataFrame(rows)


METHODS = ("oracle", "random", "majority", "pass")  # computed by best_of_k_curves itself
COLUMN_OF = {"logprob": "mean_logprob"}  # selector name -> the frame column it ranks by


def selector_column(selector: str) -> str | None:
    """The frame column a selector ranks by (None for the built-in methods)."""
    return None if selector in METHODS else COLUMN_OF.get(selector, selector)


def default_selectors(frame: pd.DataFrame) -> list[str]:
    """oracle and random always; majority if answers were extracted; logprob if log-probs were stored; every reward column."""
    out = ["oracle", "random"]
    if "extracted" in frame.columns and frame["extracted"].notna().any():
        out.append("majority")
    if "mean_logprob" in frame.columns and frame["mean_logprob"].notna().any():
        out.append("logprob")
    return out + [c for c in frame.columns if str(c).startswith("reward:")]


def best_of_k_table(
    frame: pd.DataFrame, selectors=None, ks=None, by=BY, n_boot: int = 0, ci: float = 0.95, seed=0, ragged: str = "truncate"
) -> pd.DataFrame:
    """Long table of best-of-k curves: one row per (by..., sampled config, selector, k).

    Columns: by... (model, benchmark), the config columns, selector, k, value (mean over items), se,
    ci_low/ci_high when n_boot > 0, n_items, n (samples per item), and greedy: the greedy score of the
    same (by...) group, for the reference line (NaN if there is no greedy run).
    `ks` defaults to 1..n; in a cell with fewer samples, larger k are left out.

    >>> t = best_of_k_table(df, selectors=["oracle", "majority", "reward:FsfairX-LLaMA3-RM-v0.1"], ks=[1, 4, 16])
    >>> t.pivot_table(index=["model", "selector"], columns="k", values="value")
    """
    by = [by] if isinstance(by, str) else list(by)
    selectors = default_selectors(frame) if selectors is None else list(selectors)
    if not selectors:
        raise ValueError("no selectors given")
    if len(set(selectors)) != len(selectors):
        raise ValueError(f"selectors repeat: {selectors}")
    for s in selectors:
        col = selector_column(s)
        if col is not None and col not in frame.columns:
            hint = (
                " (generate with logprobs=True)"
                if s == "logprob"
                else " (score it with score.reward.score_rewards and read it with store.frame(extra_scorers=[...]))"
                if s.startswith("reward:")
                else ""
            )
            raise KeyError(f"selector {s!r}: no column {col!r} in the frame{hint}")
        if col is not None and not frame[col].notna().any():
            raise ValueError(
                f"selector {s!r}: column {col!r} is empty{' (generate with logprobs=True)' if s == 'logprob' else ''}"
            )
    if "majority" in selectors and "extracted" not in frame.columns:
        raise KeyError("selector 'majority' needs the column 'extracted' (the benchmark scorer's extracted answers)")

    sampled = frame[~frame["greedy"].astype(bool)]
    keys = by + [c for c in CONFIG_COLS if c in frame.columns and c not in by]
    frames = []
    for key, cell in sampled.groupby(keys, dropna=False, sort=True):
        n = int(cell.groupby("item_id").size().min())
        k = np.arange(1, n + 1) if ks is None else np.array([x for x in np.atleast_1d(ks) if 1 <= x <= n], int)
        if ks is not None and k.size < np.size(ks):
            warnings.warn(
                f"{dict(zip(keys, key if isinstance(key, tuple) else (key,)))} has {n} samples per item: k > {n} left out",
                stacklevel=2,
            )
        if k.size == 0:
            continue
        where = dict(zip(keys, key if isinstance(key, tuple) else (key,)))
        methods = [s for s in selectors if s in METHODS]
        if "majority" in methods and where.get("benchmark") in NO_MAJORITY:  # not offered where answers are code
            methods.remove("majority")
            warnings.warn(f"selector 'majority' is not offered on {where['benchmark']}: its answers are code", stacklevel=2)
        cols = []
        for s in selectors:
            col = selector_column(s)
            if col is None:
                continue
            lacking = int(cell[col].isna().sum())
            where = dict(zip(keys, key if isinstance(key, tuple) else (key,)))
            if lacking == len(cell):
                warnings.warn(f"selector {s!r}: no values for {where}; its curve there is left out", stacklevel=2)
                continue
            if lacking:
                warnings.warn(
                    f"selector {s!r}: {lacking} of {len(cell)} samples of {where} have no value and rank last", stacklevel=2
                )
            cols.append(col)
        if not methods and not cols:
            continue
        kv = key if isinstance(key, tuple) else (key,)
        greedy = frame[frame["greedy"].astype(bool)]
        greedy = greedy[np.logical_and.reduce([greedy[c] == v for c, v in zip(keys, kv) if c in by])]
        cell = pd.concat([greedy, cell], ignore_index=True)  # the greedy cell pairs the gain's interval
        t = best_of_k_curves(cell, selectors=cols, ks=k, by=by, methods=methods, n_boot=n_boot, ci=ci, seed=seed, ragged=ragged)
        frames.append(t)
    if not frames:
        return pd.DataFrame(columns=keys + ["selector", "k", "value", "se", "n_items", "n", "greedy"])
    out = pd.concat(frames, ignore_index=True)
    name_of = {selector_column(s) or s: s for s in selectors}
    out["selector"] = out["selector"].map(name_of)
    out["selector"] = pd.Categorical(out["selector"], categories=selectors)  # the caller's order
    out = out.sort_values(keys + ["selector", "k"], kind="stable", ignore_index=True)
    out["selector"] = out["selector"].astype(str)
    return out.merge(greedy_scores(frame, by), on=by, how="left")


def greedy_scores(frame: pd.DataFrame, by=BY) -> pd.DataFrame:
    """The greedy score (mean over items) per (by...) group: the reference line of the best-of-k plots.

    >>> greedy_scores(df)
         model benchmark  greedy
    0  llama3      gsm8k   0.781
    """
    by = [by] if isinstance(by, str) else list(by)
    g = frame[frame["greedy"].astype(bool)]
    if g.empty:
        return pd.DataFrame(columns=by + ["greedy"])
    n_cfg = g.groupby(by, dropna=False)["config_key"].nunique() if "config_key" in g.columns else None
    if n_cfg is not None and (n_cfg > 1).any():
        bad = n_cfg[n_cfg > 1].index[0]
        raise ValueError(
            f"{int(n_cfg.max())} greedy configs for {bad}; add the column that tells them apart "
            "(e.g. 'repetition_penalty') to by="
        )
    per_item = g.groupby(by + ["item_id"], dropna=False)["score"].mean()
    return per_item.groupby(level=list(range(len(by))), dropna=False).mean().rename("greedy").reset_index()
