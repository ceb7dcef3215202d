"""Best-of-N selection: how good the chosen sample of k is under each selector, for k = 1..N, with greedy as the reference.

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
  `reward.score_rewards`. A sample with no value there (e.g. too long for the reward model) ranks last.

Every value is the exact mean over all C(N, k) subsets of each item's N samples (`stats.best_of_k`,
`stats.maj_at_k`), not a Monte-Carlo draw. Ties in the ranking are broken at random in expectation.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from . import stats

METHODS = ("oracle", "random", "majority", "pass")  # computed by stats.best_of_k_curves itself
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


def best_of_k_table(frame: pd.DataFrame, selectors=None, ks=None, by=stats.BY, n_boot: int = 0, ci: float = 0.95,
                    seed=0, ragged: str = "truncate") -> pd.DataFrame:
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
            hint = (" (generate with logprobs=True)" if s == "logprob" else
                    " (score it with reward.score_rewards and read it with store.frame(extra_scorers=[...]))" if s.startswith("reward:") else "")
            raise KeyError(f"selector {s!r}: no column {col!r} in the frame{hint}")
        if col is not None and not frame[col].notna().any():
            raise ValueError(f"selector {s!r}: column {col!r} is empty{' (generate with logprobs=True)' if s == 'logprob' else ''}")
    if "majority" in selectors and "extracted" not in frame.columns:
        raise KeyError("selector 'majority' needs the column 'extracted' (the benchmark scorer's extracted answers)")

    sampled = frame[~frame["greedy"].astype(bool)]
    keys = by + [c for c in stats.CONFIG_COLS if c in frame.columns and c not in by]
    frames = []
    for key, cell in sampled.groupby(keys, dropna=False, sort=True):
        n = int(cell.groupby("item_id").size().min())
        k = np.arange(1, n + 1) if ks is None else np.array([x for x in np.atleast_1d(ks) if 1 <= x <= n], int)
        if ks is not None and k.size < np.size(ks):
            warnings.warn(f"{dict(zip(keys, key if isinstance(key, tuple) else (key,)))} has {n} samples per item: "
                          f"k > {n} left out", stacklevel=2)
        if k.size == 0:
            continue
        methods = [s for s in selectors if s in METHODS]
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
                warnings.warn(f"selector {s!r}: {lacking} of {len(cell)} samples of {where} have no value and rank last", stacklevel=2)
            cols.append(col)
        if not methods and not cols:
            continue
        t = stats.best_of_k_curves(cell, selectors=cols, ks=k, by=by, methods=methods, n_boot=n_boot, ci=ci,
                                   seed=seed, ragged=ragged)
        frames.append(t)
    if not frames:
        return pd.DataFrame(columns=keys + ["selector", "k", "value", "se", "n_items", "n", "greedy"])
    out = pd.concat(frames, ignore_index=True)
    name_of = {selector_column(s) or s: s for s in selectors}
    out = out.rename(columns={"method": "selector"})
    out["selector"] = out["selector"].map(name_of)
    out["selector"] = pd.Categorical(out["selector"], categories=selectors)  # the caller's order
    out = out.sort_values(keys + ["selector", "k"], kind="stable", ignore_index=True)
    out["selector"] = out["selector"].astype(str)
    return out.merge(greedy_scores(frame, by), on=by, how="left")


def greedy_scores(frame: pd.DataFrame, by=stats.BY) -> pd.DataFrame:
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
        raise ValueError(f"{int(n_cfg.max())} greedy configs for {bad}; add the column that tells them apart "
                         "(e.g. 'repetition_penalty') to by=")
    per_item = g.groupby(by + ["item_id"], dropna=False)["score"].mean()
    return per_item.groupby(level=list(range(len(by))), dropna=False).mean().rename("greedy").reset_index()
