"""The sentences of gbg_utils.report.describe read each benchmark on its own scale."""

import numpy as np
import pandas as pd

from gbg_utils import stats as st
from gbg_utils.report import describe


def test_score_scale_follows_the_task():
    assert describe.score_scale("gsm8k") == (100.0, "%") and describe.score_scale("alpaca_eval") == (100.0, "%")
    assert describe.score_scale("wildbench") == (1.0, "points")  # WB-Score, -8..10
    assert describe.score_scale("some_new_benchmark") == (100.0, "%")  # undeclared: a 0-1 score


def _both():
    t = st.synthetic_table(models=("a",), benchmarks=("gsm8k",), n_items=30, n_samples=4, seed=5)
    wb = t.assign(benchmark="wildbench", score=t.score * 18 - 8)
    return pd.concat([t, wb], ignore_index=True)


def test_describe_gap_on_each_benchmarks_scale():
    gap = st.gap_table(_both(), n_boot=100)
    lines = describe.describe_gap(gap).splitlines()
    g, w = gap.set_index("benchmark").loc["gsm8k"], gap.set_index("benchmark").loc["wildbench"]
    assert f"greedy {100 * g.greedy:.1f}, sampling {100 * g['mean']:.1f} ± {100 * g['std']:.1f}" in lines[0]
    assert "on wildbench" in lines[1]
    assert f"greedy {w.greedy:.1f}, sampling {w['mean']:.1f} ± {w['std']:.1f}" in lines[1]
    assert f"by {abs(w.gap):.1f} points, 95% CI [{w.gap_ci_low:.1f}, {w.gap_ci_high:.1f}]" in lines[1]
    assert f"{100 * w.greedy:.1f}" not in lines[1]


def test_describe_sweep_and_best_of_k_on_each_benchmarks_scale():
    df = _both()
    sw = st.sweep_table(df, "temperature", n_boot=0)
    text = describe.describe_sweep(sw, "temperature")
    m = sw[(sw.benchmark == "wildbench") & (sw.decoding == "sampled")]["mean"].iloc[0]
    assert f"a on wildbench: best sampling mean {m:.1f} at temperature=0.7" in text
    cv = st.best_of_k_curves(df, methods=("oracle",), n_boot=0)
    top = cv[(cv.benchmark == "wildbench") & (cv.k == 4)].value.iloc[0]
    assert f"a on wildbench, best of k=4: oracle {top:.1f}." in describe.describe_best_of_k(cv)
    assert np.isfinite(top) and abs(top) <= 10


def test_best_of_k_table_reads_and_plots_as_it_is_returned():
    """The table stats.best_of_k_table returns goes straight into describe_best_of_k and plot_best_of_k: one name,
    `selector`, for the curve's column (the notebook used to rename it)."""
    from gbg_utils.report import plots

    df = _both()
    t = st.best_of_k_table(df[df.benchmark == "gsm8k"], selectors=["oracle", "random"], n_boot=0)
    assert "selector" in t.columns and "method" not in t.columns
    kmax = t.k.max()
    top = t[(t.k == kmax) & (t.selector == "oracle")].value.iloc[0]
    assert f"best of k={kmax}: oracle {100 * top:.1f}" in describe.describe_best_of_k(t)
    fig = plots.plot_best_of_k(t)
    assert {"oracle", "random"} <= {ln.get_label() for ax in fig.axes for ln in ax.get_lines()}
