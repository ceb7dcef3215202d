"""A few plain sentences that read the numbers of a table, so a report says what its figures show.

Every sentence names its sample size; a difference is called significant only when its 95% CI excludes 0.
"""
from __future__ import annotations

import math

import pandas as pd


def _pct(x: float) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}"


def describe_gap(gap: pd.DataFrame) -> str:
    """One sentence per (model, benchmark, sampled config) of a stats.gap_table."""
    lines = []
    for r in gap.itertuples():
        lo, hi = getattr(r, "gap_ci_low", math.nan), getattr(r, "gap_ci_high", math.nan)
        sig = not (math.isnan(lo) or math.isnan(hi)) and (lo > 0 or hi < 0)
        who = "greedy beats the sampling mean" if r.gap > 0 else "sampling beats greedy" if r.gap < 0 else "greedy equals the sampling mean"
        lines.append(
            f"- {r.model} on {r.benchmark} (T={r.temperature:g}, {r.n_items} items, {r.n_runs} sampled runs): greedy {_pct(r.greedy)}, "
            f"sampling {_pct(r.mean)} ± {_pct(r.std)} (best run {_pct(r.best)}, worst {_pct(r.worst)}); {who} by "
            f"{_pct(abs(r.gap))} points, 95% CI [{_pct(lo)}, {_pct(hi)}] — {'significant' if sig else 'not significant'} at this size."
        )
    return "\n".join(lines) or "- no sampled results"


def describe_sweep(sweep: pd.DataFrame, x: str) -> str:
    """Where each (model, benchmark) peaks along a sweep (stats.sweep_table), and greedy for contrast."""
    lines = []
    sampled = sweep[sweep["decoding"] != "greedy"] if "decoding" in sweep else sweep
    for (m, b), g in sampled.groupby(["model", "benchmark"]):
        best = g.loc[g["mean"].idxmax()]
        worst = g.loc[g["mean"].idxmin()]
        lines.append(f"- {m} on {b}: best sampling mean {_pct(best['mean'])} at {x}={best[x]:g}, lowest {_pct(worst['mean'])} at "
                     f"{x}={worst[x]:g} ({int(best['n_items'])} items).")
    return "\n".join(lines) or "- no sampled results"


def describe_best_of_k(curves: pd.DataFrame) -> str:
    """For each method: its value at the largest k, against greedy (the `greedy` column of selection.best_of_k_table)."""
    lines = []
    for (m, b), g in curves.groupby(["model", "benchmark"]):
        kmax = g["k"].max()
        top = g[g["k"] == kmax].sort_values("value", ascending=False)
        parts = ", ".join(f"{r.method} {_pct(r.value)}" for r in top.itertuples())
        ref = f"; greedy {_pct(g['greedy'].iloc[0])}" if "greedy" in g.columns else ""
        lines.append(f"- {m} on {b}, best of k={kmax}: {parts}{ref}.")
    return "\n".join(lines) or "- no curves"


def describe_lengths(lengths: pd.DataFrame) -> str:
    lines = []
    for r in lengths.itertuples():
        if r.decoding == "greedy":
            continue
        lines.append(f"- {r.model} on {r.benchmark} (T={r.temperature:g}): sampled outputs average {r.mean_tokens:.0f} tokens, "
                     f"{r.ratio_to_greedy:.2f}x the greedy length.")
    return "\n".join(lines) or "- no sampled results"
