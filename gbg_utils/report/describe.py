"""A few plain sentences that read the numbers of a table, so a report says what its figures show.

Every sentence names its sample size; a difference is called significant only when its 95% CI excludes 0.
Scores are read on their benchmark's scale (`score_scale`): percent for 0-1 scores, points otherwise.
"""

from __future__ import annotations

import functools
import math

import pandas as pd

from ..tasks import REGISTRY


@functools.cache
def score_scale(benchmark) -> tuple[float, str]:
    """(factor, unit) to show a benchmark's per-sample scores in: (100, "%") when its task's `score_range`
    lies in 0..1 (and for benchmarks no task declares), else (1, "points") -- WildBench's WB-Score, -8..10."""
    lo, hi = getattr(REGISTRY.get(benchmark), "score_range", (0.0, 1.0))
    return (100.0, "%") if 0 <= lo and hi <= 1 else (1.0, "points")


def _scale_of(r) -> float:
    b = getattr(r, "benchmark", None)
    return score_scale(b)[0] if isinstance(b, str) else 100.0


def _pct(x: float, scale: float = 100.0) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{scale * x:.1f}"


def describe_gap(gap: pd.DataFrame) -> str:
    """One sentence per (model, benchmark, sampled config) of a stats.gap_table."""
    lines = []
    for r in gap.itertuples():
        lo, hi = getattr(r, "gap_ci_low", math.nan), getattr(r, "gap_ci_high", math.nan)
        sig = not (math.isnan(lo) or math.isnan(hi)) and (lo > 0 or hi < 0)
        who = (
            "greedy beats the sampling mean"
            if r.gap > 0
            else "sampling beats greedy"
            if r.gap < 0
            else "greedy equals the sampling mean"
        )
        f = _scale_of(r)  # points: percentage points, or the benchmark's own (WB-Score)
        lines.append(
            f"- {r.model} on {r.benchmark} (T={r.temperature:g}, {r.n_items} items, {r.n_runs} sampled runs): greedy {_pct(r.greedy, f)}, "
            f"sampling {_pct(r.mean, f)} ± {_pct(r.std, f)} (best run {_pct(r.best, f)}, worst {_pct(r.worst, f)}); {who} by "
            f"{_pct(abs(r.gap), f)} points, 95% CI [{_pct(lo, f)}, {_pct(hi, f)}] — {'significant' if sig else 'not significant'} at this size."
        )
    return "\n".join(lines) or "- no sampled results"


def describe_sweep(sweep: pd.DataFrame, x: str) -> str:
    """Where each (model, benchmark) peaks along a sweep (stats.sweep_table), and greedy for contrast."""
    lines = []
    sampled = sweep[sweep["decoding"] != "greedy"] if "decoding" in sweep else sweep
    for (m, b), g in sampled.groupby(["model", "benchmark"]):
        best = g.loc[g["mean"].idxmax()]
        worst = g.loc[g["mean"].idxmin()]
        f = score_scale(b)[0]
        lines.append(
            f"- {m} on {b}: best sampling mean {_pct(best['mean'], f)} at {x}={best[x]:g}, lowest {_pct(worst['mean'], f)} at "
            f"{x}={worst[x]:g} ({int(best['n_items'])} items)."
        )
    return "\n".join(lines) or "- no sampled results"


def describe_best_of_k(curves: pd.DataFrame) -> str:
    """For each selector: its value at the largest k, against greedy (the `greedy` column of stats.best_of_k_table)."""
    lines = []
    for (m, b), g in curves.groupby(["model", "benchmark"]):
        kmax = g["k"].max()
        top = g[g["k"] == kmax].sort_values("value", ascending=False)
        f = score_scale(b)[0]
        parts = ", ".join(f"{r.selector} {_pct(r.value, f)}" for r in top.itertuples())
        ref = f"; greedy {_pct(g['greedy'].iloc[0], f)}" if "greedy" in g.columns else ""
        lines.append(f"- {m} on {b}, best of k={kmax}: {parts}{ref}.")
    return "\n".join(lines) or "- no curves"


def describe_lengths(lengths: pd.DataFrame) -> str:
    lines = []
    for r in lengths.itertuples():
        if r.decoding == "greedy":
            continue
        lines.append(
            f"- {r.model} on {r.benchmark} (T={r.temperature:g}): sampled outputs average {r.mean_tokens:.0f} tokens, "
            f"{r.ratio_to_greedy:.2f}x the greedy length."
        )
    return "\n".join(lines) or "- no sampled results"


def describe_protocol(protocol: str, benchmarks, mixeval_parser: str | None = None) -> str:
    """What the numbers were measured under, benchmark by benchmark, and whether they compare with the paper's
    tables like with like (the paper protocol) or across protocols (gbg's own prompts and answer rules).
    `mixeval_parser`: the judge model that parsed MixEval's answers (`P.mixeval_parser`), if any."""
    from ..tasks import get_task
    from ..tasks.judged.mixeval_parser import PAPER_PARSER
    from ..tasks.mixeval import GENERATION_DIFFERS

    lines = []
    for b in dict.fromkeys(benchmarks):
        t = get_task(b, protocol)
        spec = t.protocol_spec
        if mixeval_parser and b in ("mixeval", "mixeval_hard"):
            whose = "the paper's" if mixeval_parser == PAPER_PARSER else f"not the paper's {PAPER_PARSER}: an approximation"
            lines.append(
                f"- {b}: {spec.harness if spec else 'gbg prompts'}; answers parsed by MixEval's model parser with judge "
                f"`{mixeval_parser}` ({whose}); the rule parsers' scores of the same completions beside; still differs "
                f"from the paper's harness: {GENERATION_DIFFERS}"
            )
            continue
        if spec is None:
            lines.append(f"- {b}: gbg's own prompt and answer rule (scorer v{t.version})")
            continue
        differs = f"; still differs from the paper's harness: {spec.differs}" if protocol == "paper" and spec.differs else ""
        lines.append(f"- {b}: {spec.harness}; rule `{spec.rule}` (scorer v{t.version}){differs}")
    if protocol == "paper":
        head = (
            "Measured under the **paper** protocol: the prompts, stops and answer rules of the harness the paper ran, so "
            "the comparison with the paper's tables is like with like in protocol (not in model, items or N):"
        )
    else:
        head = (
            "Measured under **gbg's own protocol** (its own prompts and answer rules): the comparison with the paper's "
            "tables is **across protocols**, and a difference may be the protocol's rather than the model's "
            "(`protocol: paper` measures as the paper did):"
        )
    return head + "\n" + "\n".join(lines)


def describe_rules(rules: pd.DataFrame) -> str:
    """One line per (model, benchmark): the gap under the protocol's own rule and under the other one, same completions."""
    lines = []
    for (m, b), g in rules.groupby(["model", "benchmark"], sort=False):
        f = score_scale(b)[0]
        parts = [
            f"{r.rule}: greedy {_pct(r.greedy, f)}, sampling {_pct(r.mean, f)}, gap {f * r.gap:+.1f} "
            f"[{_pct(r.gap_ci_low, f)}, {_pct(r.gap_ci_high, f)}]"
            for r in g.itertuples()
        ]
        lines.append(f"- {m} on {b} (the same completions): " + "; ".join(parts))
    return "\n".join(lines) or "- no benchmark with a second answer rule in this run"


# --- the readings the notebooks print under their tables and figures -------------------------------------------
def describe_samples(df: pd.DataFrame) -> str:
    """What a notebook's table holds, and the engine behind it: `dtype: auto` is bfloat16 on CPUs with AVX512-BF16,
    float32 elsewhere, and the numbers differ between the two."""
    engines = sorted({f"{b}/{d}" for b, d in zip(df["backend"], df["dtype"])}) if {"backend", "dtype"} <= set(df) else []
    by = f", generated by {', '.join(engines)}" if engines else ""
    if df.empty:
        return "no scored completions: nothing matched the parameters"
    return (
        f"{len(df)} scored completions: {df['model'].nunique()} model(s) x {df['benchmark'].nunique()} benchmark(s) x "
        f"{df['config_key'].nunique()} decoding config(s){by}"
    )


def describe_runs(gap: pd.DataFrame) -> str:
    """Where greedy falls among the sampled runs of a stats.gap_table (run j = the j-th sample of every item, one
    whole evaluation)."""
    lines = []
    for r in gap.itertuples():
        f = _scale_of(r)
        if r.worst == r.best == r.greedy:
            where = "equal to every sampled run"
        elif r.greedy > r.best:
            where = "above every sampled run"
        elif r.greedy < r.worst:
            where = "below every sampled run"
        else:
            where = "inside their range: one sampled evaluation could have reported either side of it"
        lines.append(
            f"- {r.model} on {r.benchmark}: {r.n_runs} sampled runs over {r.n_items} items scored {f * r.worst:.1f} to "
            f"{f * r.best:.1f} (std {f * r.std:.1f}; one run's SE over items {f * r.single_run_se:.1f}); "
            f"greedy {f * r.greedy:.1f} is {where}."
        )
    return "\n".join(lines) or "- no sampled runs"


def describe_bands(sweep: pd.DataFrame, x: str) -> str:
    """How wide the 95% bands of a stats.sweep_table are: steps along `x` smaller than that are not resolved."""
    lines = []
    for (m, b), g in sweep.groupby(["model", "benchmark"]):
        half = score_scale(b)[0] * (g["ci_high"] - g["ci_low"]).max() / 2
        sampled = g[g["decoding"] != "greedy"] if "decoding" in g else g
        n_runs = int(sampled["n_runs"].max()) if len(sampled) else 0
        lines.append(
            f"- {m} on {b}: bands are 95% bootstrap CIs over {int(g['n_items'].max())} items (sampled points: the mean of "
            f"{n_runs} samples per item), up to ±{half:.1f} points; steps along {x.replace('_', ' ')} smaller than "
            "that are not resolved at this size."
        )
    return "\n".join(lines) or "- no points"


def describe_power(sizes: pd.DataFrame, independence: pd.DataFrame, delta: float = 3) -> str:
    """What this run can detect (stats.sample_size_table, in points), the items a `delta`-point gap needs, and
    whether each run-to-run std is what independent sampling allows (stats.independence_check)."""
    lines = []
    for (m, b), g in sizes.groupby(["model", "benchmark"]):
        r = g.iloc[0]
        need = g.loc[(g["delta"] == delta) & (g["k"].astype(float) == math.inf), "items_needed"].dropna()
        n = f"{int(need.iloc[0])}" if len(need) else "an unknown number of"
        lines.append(
            f"- {m} on {b}: with {int(r.n_items)} items and {int(r.n_runs)} samples each this run can detect a gap of "
            f"about {r.current_min_detectable_gap:.1f} points (observed gap {r.gap:+.1f}); a {delta:g}-point gap needs "
            f"{n} items even with unlimited samples."
        )
    for r in independence.itertuples():
        if r.flagged is True:
            verdict = f"larger than independent sampling allows (p = {r.p_value:.2g}): the runs share something beyond chance"
        elif pd.isna(r.flagged):
            verdict = "not testable at this size"
        else:
            verdict = "consistent with independent samples"
        lines.append(
            f"- {r.model} on {r.benchmark}: run std {100 * r.observed_std:.2f} points against "
            f"{100 * r.predicted_std:.2f} predicted: {verdict}."
        )
    return "\n".join(lines) or "- no sampled runs"


PAPER_ACCURACY = ("gsm8k", "humaneval", "mmlu_redux", "mixeval")  # Table 2's 0-1 benchmarks: the std bound needs them


def paper_independence() -> pd.DataFrame:
    """The independence check on the paper's own Table 2, from its printed figures (std with ddof=0, each benchmark
    in full): per-item rates are unknown there, so √(m(1−m)/n) bounds the std independent runs could show."""
    from .. import stats
    from ..findings import paper

    t2 = paper.table("table2")
    t2 = t2[t2["benchmark"].isin(PAPER_ACCURACY)]
    keep = ("bound_std", "max_std", "p_value", "flagged")
    rows = []
    for r in t2.itertuples():
        n = paper.benchmark_info(r.benchmark)["n_items"]
        check = stats.independence_check_summary(r.sample, r.std, n, int(r.n_runs), points=True, ddof=0)
        rows.append({"model": r.model, "benchmark": r.benchmark, "sample": r.sample, "std": r.std} | {k: check[k] for k in keep})
    return pd.DataFrame(rows)


def describe_paper_independence(check: pd.DataFrame) -> str:
    """How many of the paper's accuracy cells (`paper_independence`) have a std above what independent runs allow."""
    flagged = check[check["flagged"].fillna(False).astype(bool)]
    which = "; ".join(f"{r.model} on {r.benchmark} (std {r.std:.2f}, bound {r.bound_std:.2f})" for r in flagged.itertuples())
    return (
        f"{len(flagged)} of the paper's {len(check)} accuracy cells have a run-to-run std above what independent sampling "
        f"allows{': ' + which if which else ''}. Paper figures as printed (std with ddof=0, full benchmarks)."
    )


def describe_paper_comparison(gap: pd.DataFrame, protocol: str) -> str:
    """Where the paper's Table 2 beside yours (findings.paper.side_by_side) comes from, and what differs."""
    from ..findings import paper

    src = paper.source("table2")
    n_yours = int(gap["n_items"].min()) if len(gap) else 0
    across = (
        ""
        if protocol == "paper"
        else " **Across protocols**: yours were measured under gbg's own prompts and answer rules, the paper's under its harness."
    )
    return (
        f"Paper: {paper.cite('table2')} ({src['url']}), each benchmark in full (Table 1), sampled at T=1.0, top-p=1.0. "
        f"Yours: {n_yours} items per benchmark, {protocol} protocol; a run's spread shrinks with more items, so compare "
        f"std and delta with that in mind.{across}"
    )


def describe_methods(methods) -> str:
    """The alignment notebook's warning when every model is a stand-in, not an aligned family; else nothing."""
    if methods and all(str(m).startswith("stand-in") for m in methods):
        return "**These are stand-in models, not an aligned family: read nothing about alignment into them.**"
    return ""


def describe_best_of_k_cis(curves: pd.DataFrame) -> str:
    """Each selector's 95% CI at the largest k of a stats.best_of_k_table."""
    if "ci_low" not in curves:
        return ""
    at_max = curves[curves["k"] == curves.groupby(["model", "benchmark"])["k"].transform("max")]
    lines = []
    for (m, b), g in at_max.groupby(["model", "benchmark"]):
        f = score_scale(b)[0]
        cis = ", ".join(f"{r.selector} [{f * r.ci_low:.1f}, {f * r.ci_high:.1f}]" for r in g.itertuples())
        lines.append(
            f"- {m} on {b} ({int(g.n_items.iloc[0])} items, {int(g.n.iloc[0])} samples each), 95% CIs at k={int(g.k.iloc[0])}: {cis}"
        )
    return "\n".join(lines)


def describe_item_pass_rates(per_item: pd.DataFrame) -> str:
    """Of stats.per_item: the items never solved, always solved and in between (where best-of-N gains come from),
    and the items greedy gets right although most samples fail."""
    lines = []
    for (m, b), g in per_item.groupby(["model", "benchmark"]):
        never, always = int((g["p"] == 0).sum()), int((g["p"] == 1).sum())
        right = g["greedy_correct"].fillna(False).astype(bool)
        lines.append(
            f"- {m} on {b} ({len(g)} items, {int(g['n'].max())} samples each): {never} never solved, {always} always solved, "
            f"{len(g) - never - always} in between; greedy right on {int(right.sum())}, of which "
            f"{int((right & (g['p'] < 0.5)).sum())} where most samples fail."
        )
    return "\n".join(lines) or "- no items"


def describe_length_intervals(lengths: pd.DataFrame) -> str:
    """The error bars of report.plots.plot_lengths, in words: ±1.96 SE over items."""
    lines = [
        f"- {r.model} on {r.benchmark}, {r.decoding}: {r.mean_tokens:.0f} ± {1.96 * r.se:.0f} tokens (95% normal interval "
        f"over {r.n_items} items, {r.n_completions} outputs)"
        for r in lengths.itertuples()
    ]
    return "Error bars: ±1.96 SE over items.\n" + "\n".join(lines)


def describe_scaling(sweep: pd.DataFrame, x: str = "size_b") -> str:
    """Per benchmark, greedy and the sampling mean at each model size (a stats.sweep_table over `x`, in billions),
    with their 95% CIs and the std of the sampled runs."""
    lines = []
    for b, g in sweep.groupby("benchmark"):
        f = score_scale(b)[0]
        parts = [
            f"{getattr(r, x):g}B {r.decoding} {f * r.mean:.1f} [{f * r.ci_low:.1f}, {f * r.ci_high:.1f}]"
            + (f", std of {r.n_runs} runs {f * r.std:.1f}" if r.decoding != "greedy" else "")
            for r in g.itertuples()
        ]
        lines.append(f"- {b} ({int(g['n_items'].max())} items), mean [95% CI]: " + "; ".join(parts))
    return "\n".join(lines) or "- no sizes"
