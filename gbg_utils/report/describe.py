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
