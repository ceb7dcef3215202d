"""Figures for the tables in gbg_utils.stats: one seaborn style, each function returns a matplotlib Figure.

    >>> fig = plot_gap_table(stats.gap_table(df)); fig.savefig("gap.png")

Figures are built with ``matplotlib.figure.Figure`` (never pyplot), so nothing is shown, nothing leaks
into pyplot's figure list and any backend (Agg included) works. Scores are drawn on their benchmark's scale
(describe.score_scale: percent for 0-1 scores, points for WildBench's WB-Score) unless ``scale`` fixes a factor.
Marks that tests read back carry a gid: "runs", "greedy" (scatter), line labels name their series.
"""

from __future__ import annotations

import functools

import matplotlib as mpl
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from ..stats import PARAM_COLS
from .describe import score_scale

PALETTE = "colorblind"


def style() -> dict:
    """The rc parameters every plot here is drawn under (seaborn whitegrid, notebook scale, colorblind)."""
    return {
        **sns.axes_style("whitegrid"),
        **sns.plotting_context("notebook", font_scale=0.85),
        "axes.prop_cycle": mpl.cycler(color=sns.color_palette(PALETTE)),
        "figure.dpi": 100,
        "savefig.dpi": 150,
        "savefig.bbox": "tight",
    }


def _styled(fn):
    @functools.wraps(fn)
    def wrap(*args, **kwargs):
        with mpl.rc_context(style()):
            return fn(*args, **kwargs)

    return wrap


def _figure(n_panels: int, ncols: int | None = None, panel=(4.2, 3.2)):
    ncols = ncols or min(n_panels, 3)
    nrows = -(-n_panels // ncols)
    fig = Figure(figsize=(panel[0] * ncols, panel[1] * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[n_panels:]:
        ax.remove()
    return fig, axes[:n_panels]


def _cols(df: pd.DataFrame, cols) -> list[str]:
    cols = [cols] if isinstance(cols, str) else list(cols or [])
    return [c for c in cols if c in df.columns]


def _panels(df: pd.DataFrame, cols):
    cols = _cols(df, cols)
    if not cols:
        return [("", df)]
    return [(" · ".join(map(str, k if isinstance(k, tuple) else (k,))), g) for k, g in df.groupby(cols, sort=True, dropna=False)]


def _factors(df: pd.DataFrame, scale: float | None) -> np.ndarray:
    """Per row, the factor that puts a score on its display scale: ``scale`` if given, else its benchmark's."""
    if scale is not None:
        return np.full(len(df), float(scale))
    if "benchmark" not in df.columns:
        return np.full(len(df), 100.0)
    return df["benchmark"].map(lambda b: score_scale(b)[0]).to_numpy(float)


def _unit(df: pd.DataFrame, scale: float | None) -> str:
    """Axis unit: "%", "points", or "% or points" where a panel mixes benchmarks of both kinds."""
    if scale is not None:
        return "%" if scale == 100 else "points" if scale == 1 else f"×{scale:g}"
    if "benchmark" not in df.columns:
        return "%"
    return " or ".join(sorted({score_scale(b)[1] for b in df["benchmark"].unique()}))


def _panel_factor(d: pd.DataFrame, scale: float | None) -> float:
    """One factor for lines drawn across a panel (greedy levels, references)."""
    f = np.unique(_factors(d, scale))
    if len(f) > 1:
        raise ValueError(
            "this panel mixes benchmarks scored in percent and in points; split the panels by benchmark or pass scale="
        )
    return float(f[0]) if len(f) else 100.0


def config_label(df: pd.DataFrame, extra=()) -> pd.Series:
    """Short label per row: the ``extra`` columns, then the decoding parameters that vary in ``df``,
    e.g. "m1 · T=0.7 p=0.9"."""
    short = {"temperature": "T", "top_p": "p", "top_k": "k", "repetition_penalty": "rp"}
    label = pd.Series("", index=df.index)
    for c in _cols(df, extra):
        label = label.where(label == "", label + " · ") + df[c].astype(str)
    for i, c in enumerate(c for c in PARAM_COLS if c in df.columns and df[c].nunique(dropna=False) > 1):
        label = label.where(label == "", label + (" · " if i == 0 else " ")) + f"{short[c]}=" + df[c].astype(str)
    return label


# --------------------------------------------------------------------------------------------- plots
@_styled
def plot_gap_table(
    gap: pd.DataFrame, rows=("model",), col: str = "benchmark", scale: float | None = None, title: str = "Greedy vs sampling mean"
) -> Figure:
    """Paper Table 2 as a heatmap of gap = greedy - sampling mean: green where greedy wins, red where it
    loses. Cells read "greedy | mean±std (n_runs)" and "Δ gap [CI]" (* when the CI excludes 0), each on its
    benchmark's scale (columns in points are labelled so)."""
    g = gap.assign(_row=config_label(gap, rows), _f=_factors(gap, scale))
    val = g.assign(_gap=g.gap * g._f).pivot(index="_row", columns=col, values="_gap")
    text = pd.DataFrame("", index=val.index, columns=val.columns)
    has_ci = "gap_ci_low" in g.columns
    for _, r in g.iterrows():
        ci, f = "", r._f
        if has_ci and np.isfinite(r.gap_ci_low):
            star = "*" if r.gap_ci_low > 0 or r.gap_ci_high < 0 else ""
            ci = f" [{r.gap_ci_low * f:+.1f}, {r.gap_ci_high * f:+.1f}]{star}"
        text.loc[r._row, r[col]] = (
            f"{r.greedy * f:.1f} | {r['mean'] * f:.1f}±{r['std'] * f:.1f} ({r.n_runs})\nΔ {r.gap * f:+.1f}{ci}"
        )
    lim = np.nanmax(np.abs(val.to_numpy())) if np.isfinite(val.to_numpy()).any() else 1.0
    fig = Figure(figsize=(2.6 + 2.4 * val.shape[1], 1.0 + 0.55 * val.shape[0]), layout="constrained")
    ax = fig.subplots()
    sns.heatmap(
        val,
        annot=text.to_numpy(),
        fmt="",
        cmap="RdYlGn",
        center=0,
        vmin=-lim,
        vmax=lim,
        ax=ax,
        linewidths=0.5,
        annot_kws={"fontsize": 7.5},
        cbar_kws={"label": f"greedy − sampling mean ({_unit(gap, scale)})"},
    )
    ax.set(xlabel="", ylabel="")
    if scale is None and "%" in _unit(gap, None):  # say which columns are not in percent
        units = {c: _unit(g[g[col] == c], None) for c in val.columns}
        ax.set_xticklabels([f"{c} ({units[c]})" if units[c] != "%" else str(c) for c in val.columns])
    ax.set_title(f"{title}\ncell: greedy | sampling mean ± std (runs); Δ = greedy − mean [CI], * CI excludes 0", fontsize=9)
    ax.tick_params(axis="y", rotation=0)
    return fig


@_styled
def plot_run_distributions(
    runs: pd.DataFrame, gap: pd.DataFrame | None = None, rows=("model",), col: str = "benchmark", scale: float | None = None
) -> Figure:
    """Scores of the sampled runs (box + points) per model, one panel per benchmark, greedy as a red diamond
    (from ``gap``, the gap_table); each on its benchmark's scale."""
    runs = runs.assign(_row=config_label(runs, rows), _score=runs.score * _factors(runs, scale))
    if gap is not None:
        gap = gap.assign(_row=config_label(gap, rows), _greedy=gap.greedy * _factors(gap, scale))
    panels = _panels(runs, col)
    fig, axes = _figure(len(panels), panel=(4.6, 0.9 + 0.45 * runs._row.nunique()))
    rng = np.random.default_rng(0)
    for ax, (name, d) in zip(axes, panels):
        order = sorted(d._row.unique())
        sns.boxplot(data=d, x="_score", y="_row", order=order, ax=ax, color="0.9", fliersize=0, width=0.6)
        y = pd.Categorical(d._row, categories=order).codes + rng.uniform(-0.18, 0.18, len(d))
        ax.scatter(d._score, y, s=9, alpha=0.6, color=sns.color_palette(PALETTE)[0], gid="runs", zorder=3)
        if gap is not None:
            gp = gap[gap[col] == d[col].iloc[0]] if col in gap.columns else gap
            gp = gp[gp._row.isin(order)]
            ax.scatter(
                gp._greedy,
                pd.Categorical(gp._row, categories=order).codes,
                marker="D",
                s=45,
                color="crimson",
                zorder=4,
                gid="greedy",
                label="greedy",
            )
            ax.legend(loc="lower right", fontsize=7)
        ax.set(title=name, xlabel=f"score of one sampled run ({_unit(d, scale)})", ylabel="")
    return fig


def _line_band(ax, x, y, lo, hi, label, **kw):
    (line,) = ax.plot(x, y, label=label, **kw)
    if lo is not None:
        ax.fill_between(x, lo, hi, alpha=0.18, color=line.get_color(), linewidth=0)
    return line


@_styled
def plot_sweep(
    sweep: pd.DataFrame,
    x: str = "temperature",
    y: str = "mean",
    hue: str = "model",
    col: str = "benchmark",
    band=("ci_low", "ci_high"),
    scale: float | None = None,
) -> Figure:
    """Score against a decoding parameter (sweep_table): sampled lines with CI bands, greedy dashed. A greedy
    measured at one x only (temperature 0) is drawn as a level line across the sweep. Any table with the x
    column works, e.g. gap_table with y="gap", band=("gap_ci_low", "gap_ci_high"). Scores on their
    benchmark's scale; a panel that mixes percent and points needs ``scale``."""
    if "decoding" not in sweep.columns:
        sweep = sweep.assign(decoding="sampled")
    panels = _panels(sweep, col)
    fig, axes = _figure(len(panels))
    colors = dict(zip(sorted(sweep[hue].unique()), sns.color_palette(PALETTE)))
    lo_c, hi_c = band if band and all(b in sweep.columns for b in band) else (None, None)
    for ax, (name, d) in zip(axes, panels):
        xs = np.sort(d[x].unique())
        f = _panel_factor(d, scale)
        for (h, dec), s in d.groupby([hue, "decoding"], sort=True):
            s = s.sort_values(x)
            kw = dict(color=colors[h], marker="o", ms=4)
            lo, hi = (s[lo_c] * f, s[hi_c] * f) if lo_c else (None, None)
            if dec == "greedy" and len(s) == 1:
                ax.axhline(s[y].iloc[0] * f, color=colors[h], ls="--", lw=1, label=f"{h} (greedy)")
                ax.plot(s[x], s[y] * f, "D", color=colors[h], ms=5)
                continue
            _line_band(
                ax, s[x].to_numpy(), s[y].to_numpy() * f, lo, hi, f"{h} ({dec})", ls="--" if dec == "greedy" else "-", **kw
            )
        ax.set(title=name, xlabel=x.replace("_", " "), ylabel=f"score ({_unit(d, scale)})", xticks=xs)
        ax.legend(fontsize=7)
    return fig


@_styled
def plot_best_of_k(
    curves: pd.DataFrame,
    reference=None,
    col=("model", "benchmark"),
    scale: float | None = None,
    logx: bool = True,
    greedy: pd.DataFrame | None = None,
) -> Figure:
    """Best-of-k curves (best_of_k_curves) per panel: one line per selector with its bootstrap band (or
    ±1.96 se). ``reference``: a score or {label: score} drawn as horizontal lines in every panel (e.g. a
    bigger model's greedy score); ``greedy``: a gap_table, whose greedy score is drawn in its own panel.
    Scores (references included, given as stored) on the panel's benchmark scale."""
    panels = _panels(curves, col)
    fig, axes = _figure(len(panels))
    methods = list(dict.fromkeys(curves.selector))
    colors = dict(zip(methods, sns.color_palette(PALETTE, len(methods))))
    refs = reference if isinstance(reference, dict) else ({} if reference is None else {"reference": reference})
    for ax, (name, d) in zip(axes, panels):
        f = _panel_factor(d, scale)
        for m in methods:
            s = d[d.selector == m].sort_values("k")
            if s.empty:
                continue
            if "ci_low" in s.columns and s.ci_low.notna().all():
                lo, hi = s.ci_low * f, s.ci_high * f
            else:
                lo, hi = (s.value - 1.96 * s.se) * f, (s.value + 1.96 * s.se) * f
            _line_band(ax, s.k.to_numpy(), s.value.to_numpy() * f, lo, hi, m, color=colors[m], lw=1.6)
        for i, (label, v) in enumerate(refs.items()):
            ax.axhline(v * f, color="0.25", ls=(0, (4, 2 + i)), lw=1, label=label)
        if greedy is not None and not greedy.empty:
            keys = [c for c in _cols(d, col) if c in greedy.columns]
            row = greedy
            for c in keys:
                row = row[row[c] == d[c].iloc[0]]
            if len(row):
                ax.axhline(row["greedy"].iloc[0] * f, color="crimson", ls="--", lw=1.2, label="greedy")
        if logx:
            ax.set_xscale("log", base=2)
        ax.set(title=name, xlabel="k (samples)", ylabel=f"score ({_unit(d, scale)})")
        ax.legend(fontsize=7)
    return fig


@_styled
def plot_lengths(lengths: pd.DataFrame, x: str = "benchmark", col: str = "model") -> Figure:
    """Mean output length in tokens (length_table), greedy vs each sampled config, ±1.96 se (paper Fig. 6)."""
    lengths = lengths.assign(
        _hue=np.where(lengths.decoding == "greedy", "greedy", "sampled " + config_label(lengths)).astype(str)
    )
    lengths["_hue"] = lengths["_hue"].str.strip()
    panels = _panels(lengths, col)
    fig, axes = _figure(len(panels))
    hues = sorted(lengths._hue.unique(), key=lambda h: (h != "greedy", h))
    colors = dict(zip(hues, sns.color_palette(PALETTE, len(hues))))
    width = 0.8 / len(hues)
    for ax, (name, d) in zip(axes, panels):
        xs = sorted(d[x].unique())
        for i, h in enumerate(hues):
            s = d[d._hue == h].set_index(x).reindex(xs)
            pos = np.arange(len(xs)) - 0.4 + width * (i + 0.5)
            ax.bar(pos, s.mean_tokens, width, yerr=1.96 * s.se, color=colors[h], label=h, capsize=2, error_kw={"lw": 0.8})
        ax.set_xticks(np.arange(len(xs)), xs)
        ax.set(title=name, ylabel="tokens per output", xlabel="")
    fig.legend(
        *axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=min(len(hues), 6), fontsize=8, frameon=False
    )
    return fig


@_styled
def plot_item_pass_rates(items: pd.DataFrame, col=("model", "benchmark"), bins: int = 32) -> Figure:
    """Histogram of per-item pass rates p_i (per_item), stacked by whether greedy got the item right.
    With n <= bins samples per item there is one bin per attainable value c/n."""
    items = items.assign(greedy=items.greedy_correct.astype(object).map({True: "right", False: "wrong"}).fillna("none"))
    n = int(items.n.max())
    edges = (np.arange(n + 2) - 0.5) / n if n <= bins else np.linspace(0, 1, bins + 1)
    panels = _panels(items, col)
    fig, axes = _figure(len(panels))
    order = ["right", "wrong", "none"]
    pal = dict(zip(order, [sns.color_palette(PALETTE)[2], sns.color_palette(PALETTE)[3], "0.6"]))
    for ax, (name, d) in zip(axes, panels):
        sns.histplot(
            data=d,
            x="p",
            hue="greedy",
            hue_order=[o for o in order if o in set(d.greedy)],
            multiple="stack",
            bins=edges,
            palette=pal,
            ax=ax,
        )
        ax.set(title=name, xlabel="p_i: fraction of samples correct", ylabel="items", xlim=(edges[0], edges[-1]))
    return fig


@_styled
def plot_paper_comparison(compare: pd.DataFrame, col: str = "benchmark") -> Figure:
    """The user's greedy and sampling mean beside the paper's (findings.paper.side_by_side, already on the paper's
    scale): one panel per benchmark, one row per model and source. Yours: filled marks with the best-worst run
    range; the paper's: hollow grey marks, its rows labelled "paper: <model>". Greedy is a diamond, the sampling
    mean a circle, joined by the gap. Marks carry gids yours_greedy / yours_mean / paper_greedy / paper_mean."""
    for c in ("source", "model", "greedy", "mean"):
        if c not in compare.columns:
            raise KeyError(f"plot_paper_comparison needs findings.paper.side_by_side's table; column {c!r} is missing")
    mine = compare["source"] == "yours"
    d = compare.assign(_row=np.where(mine, compare["model"].astype(str), "paper: " + compare["model"].astype(str)), _mine=mine)
    panels = _panels(d, col)
    n_rows = max(g._row.nunique() for _, g in panels)
    fig, axes = _figure(len(panels), panel=(5.0, 1.2 + 0.32 * n_rows))
    blue, grey = sns.color_palette(PALETTE)[0], "0.45"
    for ax, (name, g) in zip(axes, panels):
        order = list(dict.fromkeys(g.sort_values("_mine", ascending=False, kind="stable")._row))
        y = g._row.map({r: i for i, r in enumerate(order)}).to_numpy(float)
        for who, sel, color, face in (("yours", g._mine.to_numpy(), blue, blue), ("paper", ~g._mine.to_numpy(), grey, "none")):
            if not sel.any():
                continue
            s, ys = g[sel], y[sel]
            ax.hlines(ys, np.minimum(s.greedy, s["mean"]), np.maximum(s.greedy, s["mean"]), color=color, lw=1)
            if who == "yours" and {"best", "worst"} <= set(s.columns):
                ax.hlines(ys, s.worst, s.best, color=color, lw=4, alpha=0.25, label="yours: worst-best run")
            for col, marker, what in (("greedy", "D", "greedy"), ("mean", "o", "sampling mean")):
                ax.scatter(
                    s[col],
                    ys,
                    marker=marker,
                    s=40,
                    facecolors=face,
                    edgecolors=color,
                    zorder=3,
                    gid=f"{who}_{col}",
                    label=f"{who}: {what}",
                )
        ax.set_yticks(range(len(order)), order)
        ax.invert_yaxis()
        ax.set(title=name, xlabel="score (as the paper prints it: % or points)", ylabel="")
    handles = {}
    for ax in axes:  # one legend under the panels: a panel may lack the paper's rows
        handles.update(zip(*reversed(ax.get_legend_handles_labels())))
    fig.legend(
        handles.values(), handles.keys(), loc="outside lower center", ncols=min(len(handles), 3), fontsize=7, frameon=False
    )
    return fig
