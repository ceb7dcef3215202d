"""The greedy-stability figure and the sentences that read its table (stability_grid.run's agreement table).

    >>> outputs, table = stability_grid.run(P)
    >>> fig = plot_stability(table)          # per model x benchmark: agreement bars, score change with its CI
    >>> print(describe_stability(table))

The figure is built on ``matplotlib.figure.Figure`` under plots.style(), like every figure in report/.
Grid points that could not run (a ``note`` in the table) are drawn as a labelled gap, not left out silently.
"""

from __future__ import annotations

import math

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .describe import score_scale
from .plots import style

RATES = (("exact_match", "token ids identical"), ("tar_r", "TARr: same text"), ("tar_a", "TARa: same answer"))


def _ran(table: pd.DataFrame) -> pd.Series:
    note = table["note"] if "note" in table.columns else pd.Series("", index=table.index)
    return note.fillna("").eq("")


def plot_stability(table: pd.DataFrame) -> Figure:
    """Two panels per (model, benchmark): the share of items agreeing with the reference (exact token ids, TARr,
    TARa) per grid point, and the score change against the reference with its 95% paired CI."""
    groups = list(table.groupby(["model", "benchmark"], sort=False))
    with mpl.rc_context(style()):
        n = max(len(groups), 1)
        height = max(2.6, 0.42 * max((len(g) for _, g in groups), default=4) + 1.2)
        fig = Figure(figsize=(11, height * n), layout="constrained")
        axes = fig.subplots(n, 2, squeeze=False, gridspec_kw={"width_ratios": [1.5, 1]})
        colors = mpl.rcParams["axes.prop_cycle"].by_key()["color"]
        for (ax_rate, ax_diff), ((model, bench), g) in zip(axes, groups):
            g = g.reset_index(drop=True)
            y = np.arange(len(g))[::-1]
            ok = _ran(g)
            w = 0.8 / len(RATES)
            for k, (col, label) in enumerate(RATES):
                ax_rate.barh(y + (1 - k) * w, 100 * g[col].where(ok), height=w, color=colors[k], label=label, gid=col)
            for yi, r in zip(y, g.itertuples()):
                if not ok[r.Index]:
                    ax_rate.text(1, yi, f"not run: {str(r.note).split(':')[0]}"[:60], va="center", fontsize=7, color="0.35")
            names = [f"{p}  (reference)" if ref else p for p, ref in zip(g["point"], g["reference"].fillna(False))]
            ax_rate.set_yticks(y, names)
            ax_rate.set_xlim(0, 100)
            ax_rate.set_xlabel("items agreeing with the reference (%)")
            n_items = int(g["n_items"].max()) if g["n_items"].notna().any() else 0
            ax_rate.set_title(f"{model} on {bench}: greedy against the reference ({n_items} items)")
            handles = ax_rate.get_legend_handles_labels()
            f, unit = score_scale(bench)
            d, lo, hi = (f * g[c].where(ok) for c in ("diff", "ci_low", "ci_high"))
            ax_diff.axvline(0, color="0.5", lw=1)
            err = np.vstack([(d - lo).clip(lower=0).fillna(0), (hi - d).clip(lower=0).fillna(0)])
            ax_diff.errorbar(d, y, xerr=err, fmt="o", color=colors[3 % len(colors)], capsize=3, gid="diff")
            ax_diff.set_yticks(y, [""] * len(y))
            ax_diff.set_ylim(ax_rate.get_ylim())
            ax_diff.set_xlabel(f"vs the reference ({'points' if unit == '%' else unit}, 95% CI)")
            ax_diff.set_title("score change")
        if groups:
            fig.legend(*handles, loc="outside lower center", ncol=len(RATES), fontsize=8, frameon=False)
        else:
            axes[0, 0].set_title("no grid points")
    return fig


def _pct(x) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.0f}%"


def describe_stability(table: pd.DataFrame, overall: dict | None = None) -> str:
    """One sentence per grid point against its reference, and the least stable point; `overall` maps (model,
    benchmark) to stats.agreement.total_agreement_rates of its outputs (TAR@N over the whole grid)."""
    lines = []
    for (model, bench), g in table.groupby(["model", "benchmark"], sort=False):
        ok = _ran(g)
        is_ref = g["reference"].fillna(False).astype(bool)
        f = score_scale(bench)[0]
        name = g.loc[is_ref, "point"].iloc[0] if is_ref.any() else "?"
        lines.append(f"- {model} on {bench}, against {name} ({int(g['n_items'].max())} items):")
        for r in g[ok & ~is_ref].itertuples():
            sig = np.isfinite(r.ci_low) and np.isfinite(r.ci_high) and (r.ci_low > 0 or r.ci_high < 0)
            div = "" if r.n_diverged == 0 else f", the others first differ at token {r.first_div_median:.0f} (median)"
            lines.append(
                f"  - {r.point}: {_pct(r.exact_match)} of items identical token for token{div}; same answer on {_pct(r.tar_a)} "
                f"(TARa), same text on {_pct(r.tar_r)} (TARr); score {f * r.diff:+.1f} points, 95% CI "
                f"[{f * r.ci_low:+.1f}, {f * r.ci_high:+.1f}] ({'significant' if sig else 'not significant'} at this size)."
            )
        for r in g[~ok].itertuples():
            lines.append(f"  - {r.point}: not run -- {r.note}.")
        others = g[ok & ~is_ref]
        if len(others) and (others["exact_match"] < 1).any():
            worst = others.sort_values(["tar_a", "exact_match"]).iloc[0]
            lines.append(
                f"  - least stable: {worst['point']} (identical on {_pct(worst['exact_match'])} of items, the same answer on "
                f"{_pct(worst['tar_a'])})."
            )
        elif len(others):
            lines.append("  - every point that ran gave the reference's output, token for token, on every item.")
        o = (overall or {}).get((model, bench))
        if o:
            lines.append(
                f"  - all {o['n_points']} grid points together, on {o['n_items']} items: identical token ids on "
                f"{_pct(o['exact'])}, TARr@{o['n_points']} {_pct(o['tar_r'])}, TARa@{o['n_points']} {_pct(o['tar_a'])}."
            )
    return "\n".join(lines) or "- no grid points"


def describe_factors(table: pd.DataFrame, factors=("backend", "dtype", "batch_size", "batch_invariant")) -> str:
    """Which factor moves the greedy output: per factor, the mean share of identical outputs (and of same answers)
    over the points at each of its levels, reference excluded (a level made only of the reference is not shown)."""
    lines = []
    for (model, bench), g in table.groupby(["model", "benchmark"], sort=False):
        g = g[_ran(g) & ~g["reference"].fillna(False).astype(bool)]
        parts = []
        for f in factors:
            if f not in g.columns or g[f].nunique() < 2:
                continue
            lv = g.groupby(f)[["exact_match", "tar_a"]].mean()
            levels = ", ".join(f"{k} {_pct(r.exact_match)} / {_pct(r.tar_a)}" for k, r in lv.iterrows())
            parts.append(f"{f.replace('_', ' ')}: {levels}")
        if parts:
            lines.append(
                f"- {model} on {bench}, items identical / with the same answer as the reference, mean over the other points at "
                "each level (a level's points differ in the other factors too) -- " + "; ".join(parts) + "."
            )
    return "\n".join(lines) or "- no factor varies across the points that ran"
