"""How a claim's verdict is decided: units, their states, and one error control for every claim.

A claim is tested on *units* (benchmarks, or pairs of benchmarks), never on raw model x benchmark x config cells:
the cells of one unit are first combined into one estimate with one interval (a mean of differences, a geometric
mean of std ratios). Each unit then takes a state against the claim's bar (its boundary moved by the margin the
paper's words imply, the same bar on both sides):

* "agree": the unit's 95% interval lies wholly on the claim's side of the bar;
* "disagree": it lies wholly on the other side of the same bar;
* anything else ("CI spans ...", "too small", "no CI") leaves the unit unresolved.

Error control, the same for every claim (`majority`): supported when more than half of the units in scope agree,
contradicted when more than half disagree, else inconclusive. The count is over *all* units in scope, resolved
or not, so more units never mean more false contradictions: with m units at the bar, a false contradiction needs
more than m/2 of them to cross it at 2.5% each (at m = 1: 2.5%; at m = 14: below 1e-9).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

from . import paper

MIN_ITEMS = 10  # below this a cell's interval is not trusted: it is left out of its unit ("too small")
Z = float(sps.norm.ppf(0.975))
# The decoding settings a claim must not mix: one claim compares like with like, or refuses.
SETTING_COLS = ("temperature", "top_p", "top_k", "repetition_penalty")


@dataclass(frozen=True)
class Unit:
    """One counted unit: its estimate and 95% interval on the shown scale, its state, and a sentence."""

    name: str
    value: float
    lo: float
    hi: float
    state: str
    text: str
    n_items: int | None = None


def num(x) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def finite(*xs) -> bool:
    return all(math.isfinite(num(x)) for x in xs)


def factor(benchmark: str) -> float:
    return paper.factor(benchmark)


def label(benchmark: str) -> str:
    return paper.benchmark_label(benchmark)


def small(n_items, n_runs=None) -> str | None:
    """Why a cell is too small to count, or None."""
    if num(n_items) < MIN_ITEMS:
        return f"{int(num(n_items))} items (fewer than {MIN_ITEMS})"
    if n_runs is not None and num(n_runs) < 2:
        return f"{int(num(n_runs))} sampled run(s)"
    return None


def min_int(values) -> int | None:
    vals = [int(v) for v in values if finite(v)]
    return min(vals) if vals else None


def need(df: pd.DataFrame, cols, what: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise KeyError(f"{what} needs columns {missing}; pass the table the notebook computes")


def mixed_settings(df: pd.DataFrame, skip=()) -> str | None:
    """One line when the rows mix decoding settings (e.g. two temperatures), else None: the claim refuses to pick."""
    for c in SETTING_COLS:
        if c in df.columns and c not in skip:
            vals = sorted({float(v) for v in df[c].dropna()})
            if len(vals) > 1:
                return f"the table mixes {c} = {', '.join(f'{v:g}' for v in vals)}: pass the rows of one setting"
    return None


def se_of(row, lo_col: str, hi_col: str, se_cols=()) -> float:
    """A cell's SE: from its 95% interval's width where it has one, else the largest of ``se_cols``."""
    lo, hi = num(getattr(row, lo_col, math.nan)), num(getattr(row, hi_col, math.nan))
    if finite(lo, hi):
        return (hi - lo) / (2 * Z)
    ses = [num(getattr(row, c, math.nan)) for c in se_cols]
    ses = [s for s in ses if math.isfinite(s)]
    return max(ses) if ses else math.nan


def mean_ci(values, ses) -> tuple[float, float, float]:
    """Mean of independent estimates and its normal 95% interval: (mean, low, high)."""
    v, s = np.asarray(values, float), np.asarray(ses, float)
    if not len(v):
        return (math.nan,) * 3
    m = float(v.mean())
    se = float(np.sqrt((s**2).sum()) / len(v)) if np.isfinite(s).all() else math.nan
    return (m, m - Z * se, m + Z * se) if math.isfinite(se) else (m, math.nan, math.nan)


def log_std_var(n_runs) -> float:
    """Var(log s) of a std over N normal runs (delta method): 1 / (2 (N - 1))."""
    n = num(n_runs)
    return 1 / (2 * (n - 1)) if n >= 2 else math.nan


def per_item_std(std, n_items) -> float:
    """A run std on a per-item footing: std * sqrt(n_items). Under independent sampling a run's std is
    sqrt(sum_i var_i) / n, so this is the root mean per-item variance: it no longer follows the item count."""
    return num(std) * math.sqrt(num(n_items))


def ratio_ci(pairs) -> tuple[float, float, float]:
    """Geometric mean of std ratios over ``pairs`` [(std_num, n_runs_num, std_den, n_runs_den), ...] (stds on one
    footing), with a normal 95% interval on the mean log ratio. A std of 0 is evidence, not a missing value: a
    ratio of 0 (or infinity) with an interval of [0, 0] ([inf, inf]); 0 over 0 says nothing (NaN)."""
    logs, var = [], []
    for s1, n1, s2, n2 in pairs:
        s1, s2 = num(s1), num(s2)
        if not finite(s1, s2) or (s1 == 0 and s2 == 0):
            return (math.nan,) * 3
        logs.append(-math.inf if s1 == 0 else math.inf if s2 == 0 else math.log(s1 / s2))
        var.append(log_std_var(n1) + log_std_var(n2))
    if not logs:
        return (math.nan,) * 3
    m = sum(logs) / len(logs)
    if not math.isfinite(m):
        return (math.exp(m), math.exp(m), math.exp(m)) if not math.isnan(m) else (math.nan,) * 3
    se = math.sqrt(sum(var)) / len(var)
    if not math.isfinite(se):
        return (math.exp(m), math.nan, math.nan)
    return (math.exp(m), math.exp(m - Z * se), math.exp(m + Z * se))


def std_ratio_ci(std_num: float, n_num: int, std_den: float, n_den: int, ci: float = 0.95) -> tuple[float, float, float]:
    """Ratio of two run stds with its F interval: (ratio, low, high), NaN where a std is 0 or missing or a side
    has fewer than 2 runs."""
    s1, s2 = num(std_num), num(std_den)
    if not (finite(s1, s2) and s1 > 0 and s2 > 0 and n_num >= 2 and n_den >= 2):
        return (math.nan, math.nan, math.nan)
    r2, a = (s1 / s2) ** 2, (1 - ci) / 2
    lo = r2 / sps.f.ppf(1 - a, n_num - 1, n_den - 1)
    hi = r2 / sps.f.ppf(a, n_num - 1, n_den - 1)
    return (math.sqrt(r2), math.sqrt(lo), math.sqrt(hi))


def state(lo: float, hi: float, bar: float, want: str, bar_text: str, too_small: str | None = None) -> str:
    """A unit's state against one bar, the same on both sides: "agree" when the interval lies wholly on the
    ``want`` side ("above"/"below"), "disagree" when wholly on the other, else unresolved."""
    if too_small:
        return "too small"
    if math.isnan(num(lo)) or math.isnan(num(hi)):
        return "no CI"
    side = "above" if lo > bar else "below" if hi < bar else None
    if side is None:
        return f"CI spans {bar_text}"
    return "agree" if side == want else "disagree"


def majority(units: list[Unit], noun: str = "units") -> tuple[str, str]:
    """The error control of every claim: supported when more than half of the units in scope agree at 95%,
    contradicted when more than half disagree, else inconclusive."""
    n = len(units)
    g = sum(u.state == "agree" for u in units)
    b = sum(u.state == "disagree" for u in units)
    rest = [u.state for u in units if u.state not in ("agree", "disagree")]
    why = f"{g} of {n} {noun} agree and {b} disagree at 95%"
    if rest:
        why += "; unresolved: " + ", ".join(f"{rest.count(k)} {k}" for k in sorted(set(rest)))
    if g * 2 > n:
        return "supported", why + f" (more than half of {n} agree)"
    if b * 2 > n:
        return "contradicted", why + f" (more than half of {n} disagree)"
    return "inconclusive", why + f" (supported or contradicted needs more than {n / 2:g})"


def one_value(units: list[Unit]) -> dict:
    """value/ci_low/ci_high/n_items for a Verdict when one unit decides."""
    if len(units) != 1:
        return {"n_items": min_int(u.n_items for u in units)}
    u = units[0]
    return {"value": u.value, "ci_low": u.lo, "ci_high": u.hi, "n_items": u.n_items}


def listing(parts: list[str], limit: int = 4) -> str:
    return "; ".join(parts[:limit]) + (f"; and {len(parts) - limit} more" if len(parts) > limit else "")


def pool(cells) -> tuple[float, float, float]:
    """One unit's estimate from its cells' (value, low, high): a lone cell keeps its own interval; several are
    averaged, each SE read off its 95% interval, combined as independent."""
    cells = [c for c in cells if finite(c[0])]
    if not cells:
        return (math.nan,) * 3
    if len(cells) == 1:
        return tuple(cells[0])
    return mean_ci([c[0] for c in cells], [(c[2] - c[1]) / (2 * Z) for c in cells])


def diff_cell(d: float, *ses: float) -> tuple[float, float, float]:
    """A difference and its normal 95% interval from the SEs of its terms, combined as independent."""
    se = math.sqrt(sum(s * s for s in ses)) if finite(*ses) else math.nan
    return (d, d - Z * se, d + Z * se) if math.isfinite(se) else (d, math.nan, math.nan)
