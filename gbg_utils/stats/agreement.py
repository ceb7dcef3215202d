"""Greedy stability: how far one greedy output moves when only the engine changes (backend, dtype, batch size).

Input: one row per (grid point, item) -- the greedy output of that item under that engine -- with columns
``point`` (a label), ``item_id``, ``token_ids`` (a sequence of ints), ``text``, ``extracted`` (the parsed
answer, None/NaN when nothing could be parsed), ``score``, and optionally ``group`` (clustered CIs).

    >>> table = agreement_table(outputs, reference="transformers/float32/bs1", factors=["backend", "dtype", "batch_size"])
    >>> overall = total_agreement_rates(outputs)      # TARr@N / TARa@N over all the grid points together

Per grid point, against the reference, over the items both have:

* ``exact_match``: the share of items whose token ids are identical;
* ``first_div_median`` / ``first_div_min``: where the token ids first differ (0-based), over the items that differ;
  a sequence that is a prefix of the other differs at the shorter one's length;
* ``tar_r``: the share with the same raw text, ``tar_a``: the same extracted answer -- TARr@2 / TARa@2 of
  Atil et al. 2024 ("LLM Stability: A detailed analysis with some surprises"), whose TAR@N is the share of items
  on which all N runs agree. Two outputs with the same text have the same answer, so a missing answer agrees
  with a missing answer only when the texts are the same (TARa >= TARr always);
* ``diff``: mean score minus the reference's over the items both scored, with a paired 95% percentile-bootstrap
  CI (``ci_low``, ``ci_high``; whole groups resampled when there is a ``group`` column) and the paired t-test's
  ``p_value`` (clustered SE with groups), as stats.uncertainty computes them.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .uncertainty import _t_p, bootstrap_ci

COLUMNS = (
    "point",
    "reference",
    "n_items",
    "exact_match",
    "n_diverged",
    "first_div_median",
    "first_div_min",
    "tar_r",
    "tar_a",
    "score",
    "score_ref",
    "diff",
    "ci_low",
    "ci_high",
    "p_value",
)


def first_divergence(a: Sequence[int], b: Sequence[int]) -> int | None:
    """The first position where two token sequences differ; None when they are identical.

    >>> first_divergence([1, 2, 3], [1, 2, 4]), first_divergence([1, 2], [1, 2, 3]), first_divergence([5], [5])
    (2, 2, None)
    """
    a, b = list(a), list(b)
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def _missing(x) -> bool:
    return x is None or (isinstance(x, float) and np.isnan(x))


def same_answer(answer_a, answer_b, text_a: str, text_b: str) -> bool:
    """Two outputs give the same answer: the same text, or the same extracted answer (a missing one matches nothing
    but an identical text)."""
    if text_a == text_b:
        return True
    return not _missing(answer_a) and not _missing(answer_b) and str(answer_a) == str(answer_b)


def total_agreement(values: Sequence[Sequence], equal=None) -> float:
    """TAR@N: the share of items on which all N runs agree. `values`: one sequence of N outputs per item;
    `equal(x, y)` decides agreement with the first run (default ==). NaN for no items.

    >>> total_agreement([["a", "a", "a"], ["a", "b", "a"], ["c", "c", "c"]])   # 2 of 3 items agree in all 3 runs
    0.6666666666666666
    """
    equal = equal or (lambda x, y: x == y)
    rows = [list(v) for v in values]
    if not rows:
        return float("nan")
    return float(np.mean([all(equal(r[0], x) for x in r[1:]) for r in rows]))


def _check(outputs: pd.DataFrame, point: str) -> None:
    need = {point, "item_id", "token_ids", "text", "extracted", "score"}
    missing = sorted(need - set(outputs.columns))
    if missing:
        raise ValueError(f"agreement needs the columns {sorted(need)}; missing {missing}")
    dup = outputs.duplicated([point, "item_id"])
    if dup.any():
        raise ValueError(f"{int(dup.sum())} duplicate (point, item_id) rows: one greedy output per item and grid point")


def compare(ref: pd.DataFrame, other: pd.DataFrame, n_boot: int = 1000, ci: float = 0.95, seed=0) -> dict:
    """One grid point against the reference: both frames are one row per item (see the module docstring)."""
    m = ref.merge(other, on="item_id", suffixes=("_ref", ""))
    n = len(m)
    div = [first_divergence(a, b) for a, b in zip(m["token_ids_ref"], m["token_ids"])]
    diverged = np.array([d for d in div if d is not None], float)
    out = {
        "n_items": n,
        "exact_match": float(np.mean([d is None for d in div])) if n else np.nan,
        "n_diverged": len(diverged),
        "first_div_median": float(np.median(diverged)) if len(diverged) else np.nan,
        "first_div_min": float(diverged.min()) if len(diverged) else np.nan,
        "tar_r": float(np.mean(m["text_ref"].to_numpy() == m["text"].to_numpy())) if n else np.nan,
        "tar_a": float(np.mean([same_answer(*r) for r in zip(m["extracted_ref"], m["extracted"], m["text_ref"], m["text"])]))
        if n
        else np.nan,
    }
    a, b = m["score"].to_numpy(float), m["score_ref"].to_numpy(float)
    ok = np.isfinite(a) & np.isfinite(b)
    d = a[ok] - b[ok]
    groups = m["group"].to_numpy()[ok] if "group" in m.columns and m["group"].notna().any() else None
    lo = hi = p = np.nan
    if len(d):
        if n_boot > 0:
            lo, hi = (float(x) for x in bootstrap_ci(d, n_boot=n_boot, ci=ci, seed=seed, groups=groups))
        p = _t_p(d, groups)[2]
    out.update(
        score=float(a[ok].mean()) if len(d) else np.nan,
        score_ref=float(b[ok].mean()) if len(d) else np.nan,
        diff=float(d.mean()) if len(d) else np.nan,
        ci_low=lo,
        ci_high=hi,
        p_value=p,
    )
    return out


def agreement_table(
    outputs: pd.DataFrame,
    reference: str,
    point: str = "point",
    factors: Sequence[str] = (),
    n_boot: int = 1000,
    ci: float = 0.95,
    seed=0,
) -> pd.DataFrame:
    """One row per grid point (the reference's own row first: its agreement with itself is 1, its diff 0), in
    the order the points first appear; `factors` are columns carried from `outputs` (one value per point).
    Warns when a point lacks some of the reference's items (its rates are over the items both have)."""
    _check(outputs, point)
    points = list(dict.fromkeys(outputs[point]))
    if reference not in points:
        raise ValueError(f"reference {reference!r} is not among the grid points {points}")
    ref = outputs[outputs[point] == reference]
    cols = ["item_id", "token_ids", "text", "extracted", "score"] + (["group"] if "group" in outputs.columns else [])
    rows = []
    for p in [reference] + [q for q in points if q != reference]:
        g = outputs[outputs[point] == p]
        short = set(ref["item_id"]) - set(g["item_id"])
        if short:
            warnings.warn(f"{p}: {len(short)} of the reference's {len(ref)} items missing; compared on the rest", stacklevel=2)
        r = compare(ref[cols], g[cols].drop(columns=["group"], errors="ignore"), n_boot=n_boot, ci=ci, seed=seed)
        rows.append({"point": p, "reference": p == reference, **{f: g[f].iloc[0] for f in factors}, **r})
    order = ["point", *factors] + [c for c in COLUMNS if c != "point"]
    return pd.DataFrame(rows)[order]


def total_agreement_rates(outputs: pd.DataFrame, point: str = "point") -> dict:
    """Over all N grid points together, on the items every point has: exact@N (identical token ids),
    TARr@N (identical text) and TARa@N (the same answer, `same_answer`) -- the share of items on which all N agree."""
    _check(outputs, point)
    n_points = outputs[point].nunique()
    wide = outputs.groupby("item_id").filter(lambda g: len(g) == n_points)
    per_item = [g for _, g in wide.groupby("item_id", sort=False)]
    pairs = [list(zip(g["extracted"], g["text"])) for g in per_item]
    return {
        "n_points": int(n_points),
        "n_items": len(per_item),
        "exact": total_agreement([[tuple(t) for t in g["token_ids"]] for g in per_item]),
        "tar_r": total_agreement([list(g["text"]) for g in per_item]),
        "tar_a": total_agreement(pairs, equal=lambda x, y: same_answer(x[0], y[0], x[1], y[1])),
    }
