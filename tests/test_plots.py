"""Figures render headless from a synthetic store, and draw the numbers the stats tables hold."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from gbg_utils import stats as st
from gbg_utils.report import plots


@pytest.fixture(scope="module")
def table():
    return st.synthetic_table(
        models=("a", "b"), benchmarks=("gsm8k", "mmlu"), n_items=30, n_samples=8, temperatures=(0.3, 0.7, 1.0), seed=3
    )


def _save(fig, tmp_path, name):
    assert isinstance(fig, Figure)
    path = tmp_path / f"{name}.png"
    fig.savefig(path)
    assert path.stat().st_size > 5000
    return path


def _line(ax, label):
    (line,) = [ln for ln in ax.get_lines() if ln.get_label() == label]
    return line


def test_gap_table(table, tmp_path):
    gap = st.gap_table(table[table.temperature.isin([0.0, 0.7])], n_boot=200)
    fig = plots.plot_gap_table(gap)
    _save(fig, tmp_path, "gap")
    ax = fig.axes[0]
    want = gap.pivot(index="model", columns="benchmark", values="gap").to_numpy() * 100
    np.testing.assert_allclose(np.asarray(ax.collections[0].get_array()).reshape(want.shape), want)
    texts = [t.get_text() for t in ax.texts]
    assert any(f"{gap.greedy.iloc[0] * 100:.1f} |" in t for t in texts)
    # several configs per model: one row per config
    fig = plots.plot_gap_table(st.gap_table(table, n_boot=0))
    assert len(fig.axes[0].get_yticklabels()) == 2 * 3


def test_run_distributions(table, tmp_path):
    sub = table[table.temperature.isin([0.0, 0.7])]
    runs, gap = st.run_scores(sub), st.gap_table(sub, n_boot=0)
    fig = plots.plot_run_distributions(runs, gap)
    _save(fig, tmp_path, "runs")
    ax = fig.axes[0]  # gsm8k
    pts = [c for c in ax.collections if c.get_gid() == "runs"][0].get_offsets()[:, 0]
    want = runs[runs.benchmark == "gsm8k"].score.to_numpy() * 100
    np.testing.assert_allclose(np.sort(pts), np.sort(want))
    greedy = [c for c in ax.collections if c.get_gid() == "greedy"][0].get_offsets()
    g = gap[gap.benchmark == "gsm8k"].sort_values("model")
    np.testing.assert_allclose(greedy[:, 0], g.greedy * 100)


def test_sweep(table, tmp_path):
    sw = st.sweep_table(table, "temperature", n_boot=100)
    fig = plots.plot_sweep(sw)
    _save(fig, tmp_path, "sweep")
    ax = fig.axes[0]
    s = sw[(sw.benchmark == "gsm8k") & (sw.model == "a") & (sw.decoding == "sampled")].sort_values("temperature")
    line = _line(ax, "a (sampled)")
    np.testing.assert_allclose(line.get_xdata(), s.temperature)
    np.testing.assert_allclose(line.get_ydata(), s["mean"] * 100)
    g = sw[(sw.benchmark == "gsm8k") & (sw.model == "a") & (sw.decoding == "greedy")]["mean"].iloc[0]
    np.testing.assert_allclose(_line(ax, "a (greedy)").get_ydata(), g * 100)
    # repetition-penalty sweep: greedy measured at several values is a line, not a level
    rp = table.assign(repetition_penalty=1.0)
    rp2 = table.assign(repetition_penalty=1.2, score=table.score[::-1].to_numpy(), config_key=table.config_key + "r")
    sw = st.sweep_table(pd.concat([rp, rp2], ignore_index=True), "repetition_penalty", n_boot=0)
    fig = plots.plot_sweep(sw[sw.temperature.isin([0, 0.7])], x="repetition_penalty")
    _save(fig, tmp_path, "sweep_rp")
    assert len(_line(fig.axes[0], "a (greedy)").get_ydata()) == 2
    gap = st.gap_table(table, n_boot=50)
    fig = plots.plot_sweep(gap, y="gap", band=("gap_ci_low", "gap_ci_high"))
    want = gap[(gap.benchmark == "gsm8k") & (gap.model == "b")].sort_values("temperature").gap * 100
    np.testing.assert_allclose(_line(fig.axes[0], "b (sampled)").get_ydata(), want)


def test_best_of_k(table, tmp_path):
    cv = st.best_of_k_curves(table[table.temperature.isin([0.0, 0.7])], selectors=["reward"], n_boot=100)
    sub = table[table.temperature.isin([0.0, 0.7])]
    gap = st.gap_table(sub, n_boot=0)
    fig = plots.plot_best_of_k(cv, reference={"bigger model greedy": 0.9}, greedy=gap)
    _save(fig, tmp_path, "bok")
    assert len(fig.axes) == 4
    ax = fig.axes[0]  # model a, gsm8k
    for m in ("oracle", "random", "majority", "reward"):
        s = cv[(cv.model == "a") & (cv.benchmark == "gsm8k") & (cv.selector == m)]
        np.testing.assert_allclose(_line(ax, m).get_ydata(), s.value * 100)
    np.testing.assert_allclose(_line(ax, "bigger model greedy").get_ydata(), [90, 90])
    for ax in fig.axes:  # each panel's own greedy score
        m, b = ax.get_title().split(" · ")
        g = gap[(gap.model == m) & (gap.benchmark == b)].greedy.iloc[0]
        np.testing.assert_allclose(_line(ax, "greedy").get_ydata(), [g * 100] * 2)


def test_lengths(table, tmp_path):
    ln = st.length_table(table)
    fig = plots.plot_lengths(ln)
    _save(fig, tmp_path, "lengths")
    heights = sorted(p.get_height() for p in fig.axes[0].patches)
    np.testing.assert_allclose(heights, sorted(ln[ln.model == "a"].mean_tokens))


def test_item_pass_rates(table, tmp_path):
    items = st.per_item(table[table.temperature.isin([0.0, 0.7])])
    fig = plots.plot_item_pass_rates(items, bins=10)
    _save(fig, tmp_path, "items")
    ax = fig.axes[0]
    assert sum(p.get_height() for p in ax.patches) == 30  # every item of (a, gsm8k) once
    right = items[(items.model == "a") & (items.benchmark == "gsm8k")].greedy_correct.sum()
    green = matplotlib.colors.to_rgb(plots.sns.color_palette(plots.PALETTE)[2])
    drawn = sum(p.get_height() for p in ax.patches if np.allclose(p.get_facecolor()[:3], green))
    assert 0 < right == drawn


def _with_wildbench(table):
    """mmlu (0/1 scores) next to a WildBench whose per-sample scores are WB-Scores in -8..10."""
    wb = table[table.benchmark == "gsm8k"].assign(benchmark="wildbench", score=lambda d: d.score * 18 - 8)
    return pd.concat([table[table.benchmark == "mmlu"], wb], ignore_index=True)


def test_wildbench_is_drawn_in_points_not_percent(table, tmp_path):
    both = _with_wildbench(table)
    sub = both[both.temperature.isin([0.0, 0.7])]
    runs, gap = st.run_scores(sub), st.gap_table(sub, n_boot=100)
    fig = plots.plot_run_distributions(runs, gap)
    _save(fig, tmp_path, "runs_wb")
    for ax, bench, factor, unit in zip(fig.axes, ("mmlu", "wildbench"), (100, 1), ("%", "points")):
        pts = [c for c in ax.collections if c.get_gid() == "runs"][0].get_offsets()[:, 0]
        np.testing.assert_allclose(np.sort(pts), np.sort(runs[runs.benchmark == bench].score * factor))
        greedy = [c for c in ax.collections if c.get_gid() == "greedy"][0].get_offsets()[:, 0]
        np.testing.assert_allclose(greedy, gap[gap.benchmark == bench].sort_values("model").greedy * factor)
        assert ax.get_title() == bench and f"({unit})" in ax.get_xlabel()
    assert (runs[runs.benchmark == "wildbench"].score.abs() > 1).any()  # a scale where ×100 is visibly wrong

    fig = plots.plot_gap_table(gap)
    ax = fig.axes[0]
    want = gap.pivot(index="model", columns="benchmark", values="gap").to_numpy() * [100, 1]
    np.testing.assert_allclose(np.asarray(ax.collections[0].get_array()).reshape(want.shape), want)
    r = gap[gap.benchmark == "wildbench"].iloc[0]
    assert any(t.get_text().startswith(f"{r.greedy:.1f} | {r['mean']:.1f}±{r['std']:.1f}") for t in ax.texts)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["mmlu", "wildbench (points)"]

    sw = st.sweep_table(both, "temperature", n_boot=0)
    fig = plots.plot_sweep(sw)
    s = sw[(sw.benchmark == "wildbench") & (sw.model == "a") & (sw.decoding == "sampled")].sort_values("temperature")
    np.testing.assert_allclose(_line(fig.axes[1], "a (sampled)").get_ydata(), s["mean"])
    assert fig.axes[1].get_ylabel() == "score (points)" and fig.axes[0].get_ylabel() == "score (%)"
    with pytest.raises(ValueError, match="percent and in points"):
        plots.plot_sweep(sw, col=None)
    assert plots.plot_sweep(sw, col=None, scale=1).axes[0].get_ylabel() == "score (points)"

    cv = st.best_of_k_curves(sub[sub.benchmark == "wildbench"], methods=("oracle", "random"), n_boot=0)
    fig = plots.plot_best_of_k(cv, reference={"bigger model greedy": 2.5}, greedy=gap)
    ax = fig.axes[0]
    np.testing.assert_allclose(_line(ax, "random").get_ydata(), cv[(cv.model == "a") & (cv.selector == "random")].value)
    np.testing.assert_allclose(_line(ax, "bigger model greedy").get_ydata(), [2.5, 2.5])
    assert ax.get_ylabel() == "score (points)"
