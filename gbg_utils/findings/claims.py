"""The paper's findings as claims tested on the user's store: one function per claim, each returning a Verdict.

    >>> v = greedy_beats_sampling(stats.gap_table(df))      # claim C1
    >>> v.verdict, v.yours, v.reason
    >>> save_verdicts([v], P.output_path, "gap")              # <output folder>/verdicts.json, read by the report

Each function takes a table a notebook already computes (stats.gap_table, sweep_table, length_table,
best_of_k_table) and never the raw store. Verdicts:

* "supported" / "contradicted": the 95% CI of the deciding quantity lies entirely on one side of the
  claim's boundary (0 for a difference, 1 for a ratio of stds);
* "inconclusive": the CI includes the boundary, there is no CI, or a cell has fewer than MIN_ITEMS items
  or fewer than two sampled runs; the reason says which;
* "not testable": the store lacks what the claim needs (a benchmark, a second model size, an aligned model,
  T = 1.5 ...), or the models are stand-ins (models of different families for a scaling claim, "stand-in:"
  methods for the alignment claim): their numbers are still shown, labelled as stand-ins.

Intervals: differences of means use the tables' bootstrap CIs where they have them (the gap), else a normal
interval on the larger of the plain and clustered SEs, combined as if independent (the items are shared, so
this is conservative). A ratio of run stds uses the F interval (normal run scores, independent runs).
Scores are shown in percent (points for WildBench), as the paper prints them.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as sps

from ..paths import from_root
from . import paper

VERDICTS = ("supported", "contradicted", "inconclusive", "not testable")
MIN_ITEMS = 10  # below this a cell's bootstrap CI is not trusted: its claim is inconclusive whatever the CI says
Z = float(sps.norm.ppf(0.975))

CLAIMS = {
    "C1": "Greedy beats the sampling mean on most benchmarks (AlpacaEval the exception)",
    "C2": "Constrained answer spaces are stable: the best-worst spread on MMLU-Redux and MixEval is smaller than on GSM8K and HumanEval",
    "C3": "A larger model of the same family does not have a smaller sampling std",
    "C4": "Alignment (DPO, KTO, ...) lowers the sampling std",
    "C5": "Temperature 1.5 hurts GSM8K and HumanEval far more than open-ended tasks",
    "C6": "The default repetition penalty (1.0) is best or near-best, except on GSM8K where 0.9 can win",
    "C7": "Greedy outputs are shorter than sampled ones",
    "C8": "Best-of-N by oracle (and by a reward model) beats greedy, and a small model's oracle@N beats a stronger model's greedy",
}
NOTEBOOK_OF = {
    "C1": "gap",
    "C2": "gap",
    "C3": "scaling",
    "C4": "alignment",
    "C5": "temperature",
    "C6": "repetition",
    "C7": "length",
    "C8": "best_of_n",
}
CONSTRAINED, REASONING, OPEN_ENDED = ("mmlu_redux", "mixeval"), ("gsm8k", "humaneval"), ("alpaca_eval", "arena_hard")
VERDICT_FILE = "verdicts.json"


@dataclass(frozen=True)
class Verdict:
    """One claim tested on the user's store. value/ci_low/ci_high: the deciding number and its 95% CI (on the
    scale ``yours`` states), when one number decides; n_items/n_runs: the smallest cell's."""

    claim_id: str
    claim: str
    paper: str
    yours: str
    verdict: str
    reason: str
    value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    n_items: int | None = None
    n_runs: int | None = None
    stand_in: bool = False
    notebook: str | None = None

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {', '.join(VERDICTS)}, got {self.verdict!r}")
        for f in dataclasses.fields(self):  # plain Python values, NaN as None: what verdicts.json holds
            object.__setattr__(self, f.name, _plain(getattr(self, f.name)))

    def to_dict(self) -> dict:
        return {k: _plain(v) for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> Verdict:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"not fields of a Verdict: {sorted(unknown)}")
        return cls(**d)


def _plain(v):
    """JSON-safe: numpy scalars to Python, NaN (and pandas' NA) to None."""
    if isinstance(v, np.generic):
        v = v.item()
    if v is pd.NA or (isinstance(v, float) and not math.isfinite(v)):
        return None
    return v


# ------------------------------------------------------------------------------------------- helpers
def _f(benchmark: str) -> float:
    return paper.factor(benchmark)


def _num(x) -> float:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return math.nan
    return x


def _finite(*xs) -> bool:
    return all(math.isfinite(_num(x)) for x in xs)


def _se(r) -> float:
    """The larger of a row's plain and clustered SE (the clustered one only where it exists)."""
    ses = [_num(getattr(r, c, math.nan)) for c in ("se", "se_clustered")]
    ses = [s for s in ses if math.isfinite(s)]
    return max(ses) if ses else math.nan


def _diff_ci(d: float, *ses: float) -> tuple[float, float]:
    se = math.sqrt(sum(s * s for s in ses)) if _finite(*ses) else math.nan
    return (d - Z * se, d + Z * se) if math.isfinite(se) else (math.nan, math.nan)


def std_ratio_ci(std_num: float, n_num: int, std_den: float, n_den: int, ci: float = 0.95) -> tuple[float, float, float]:
    """Ratio of two run stds with its F interval: (ratio, low, high), NaN where a std is 0 or missing or a side
    has fewer than 2 runs (no spread, or a floor/ceiling: nothing to compare)."""
    s1, s2 = _num(std_num), _num(std_den)
    if not (_finite(s1, s2) and s1 > 0 and s2 > 0 and n_num >= 2 and n_den >= 2):
        return (math.nan, math.nan, math.nan)
    r2, a = (s1 / s2) ** 2, (1 - ci) / 2
    lo = r2 / sps.f.ppf(1 - a, n_num - 1, n_den - 1)
    hi = r2 / sps.f.ppf(a, n_num - 1, n_den - 1)
    return (math.sqrt(r2), math.sqrt(lo), math.sqrt(hi))


def _side(lo: float, hi: float, boundary: float) -> str:
    """'above' / 'below' when the CI lies entirely on one side of the boundary, else 'spans' ('no CI' if missing)."""
    if not _finite(lo, hi):
        return "no CI"
    return "above" if lo > boundary else "below" if hi < boundary else "spans"


def _state(side: str, want: str, boundary: str, small: str | None) -> str:
    """A cell's state: "too small", "no CI", "agree" (the CI on the claim's side of the boundary), "disagree"
    (on the other side) or "CI spans <boundary>"."""
    if small:
        return "too small"
    if side in ("no CI", "no bar"):
        return side
    if side == "spans":
        return f"CI spans {boundary}"
    return "agree" if side == want else "disagree"


def _small(n_items, n_runs=None) -> str | None:
    """Why a cell is too small to decide anything, or None."""
    if _num(n_items) < MIN_ITEMS:
        return f"{int(_num(n_items))} items (fewer than {MIN_ITEMS})"
    if n_runs is not None and _num(n_runs) < 2:
        return f"{int(_num(n_runs))} sampled run(s)"
    return None


def _min_int(values) -> int | None:
    vals = [int(v) for v in values if _finite(v)]
    return min(vals) if vals else None


def _need(df: pd.DataFrame, cols, what: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise KeyError(f"{what} needs columns {missing}; pass the table the notebook computes")


def _count(states: list[str], good: str, bad: str, n: int) -> tuple[str, str]:
    """Majority rule over cells: supported when more than half agree, contradicted when more than half disagree."""
    g, b = states.count(good), states.count(bad)
    if g * 2 > n and b == 0:
        return "supported", f"{g} of {n} cells agree with the claim at 95% and none disagrees"
    if b * 2 > n:
        return "contradicted", f"{b} of {n} cells disagree with the claim at 95%"
    return "inconclusive", f"{g} of {n} cells agree and {b} disagree at 95%; unresolved: {_why_unresolved(states)}"


def _every_cell(states: list[str], against: str, every: str, some: str) -> tuple[str, str]:
    """Contradicted when any cell is against the claim at 95%, supported when every cell is for it, else
    inconclusive. The reasons are templates: {bad} / {good} cells against / for, {n} cells, {rest} the unresolved."""
    f = dict(bad=states.count("disagree"), good=states.count("agree"), n=len(states), rest=_why_unresolved(states))
    if f["bad"]:
        return "contradicted", against.format(**f)
    if f["good"] == f["n"]:
        return "supported", every.format(**f)
    return "inconclusive", some.format(**f)


def _why_unresolved(states: list[str]) -> str:
    other = [s for s in states if s not in ("agree", "disagree")]
    kinds = sorted(set(other))
    return ", ".join(f"{other.count(k)} {k}" for k in kinds) or "none"


def _list(parts: list[str], limit: int = 4) -> str:
    return "; ".join(parts[:limit]) + (f"; and {len(parts) - limit} more" if len(parts) > limit else "")


def _verdict(cid: str, paper_text: str, yours: str, verdict: str, reason: str, **kw) -> Verdict:
    return Verdict(cid, CLAIMS[cid], paper_text, yours, verdict, reason, notebook=NOTEBOOK_OF[cid], **kw)


def _setting(df: pd.DataFrame) -> str:
    """A note when the sampled configs differ from the paper's (T = 1.0, top-p = 1.0)."""
    notes = []
    for col, want, name in (("temperature", 1.0, "T"), ("top_p", 1.0, "top-p")):
        if col in df.columns:
            vals = sorted({float(v) for v in df[col].dropna() if not math.isclose(float(v), want)})
            if vals:
                notes.append(f"{name}={', '.join(f'{v:g}' for v in vals)}")
    return f" Sampled at {' '.join(notes)}; the paper samples at T=1.0, top-p=1.0." if notes else ""


def _bench_of(benchmarks, table_name: str) -> list[str]:
    """The user's benchmarks (in order, once each) that a paper table has."""
    have = set(paper.table(table_name).benchmark)
    return [b for b in dict.fromkeys(benchmarks) if b in have]


# ------------------------------------------------------------------------------------------- the paper's side
def _paper_c1(benchmarks) -> str:
    t = paper.table("table2").assign(gap=lambda d: (d.greedy - d["sample"]).round(1))
    rest, alp = t[t.benchmark != "alpaca_eval"], t[t.benchmark == "alpaca_eval"]
    s = (
        f"{paper.cite('table2')}: greedy > sampling mean in {int((rest.gap > 0).sum())} of {len(rest)} model x benchmark cells "
        f"outside AlpacaEval; on AlpacaEval the sampling mean is higher for {int((alp.gap < 0).sum())} of {len(alp)} models"
    )
    for b in _bench_of(benchmarks, "table2"):
        g = t[t.benchmark == b]
        s += f"; {paper.benchmark_label(b)}: gap {g.gap.min():+.1f} to {g.gap.max():+.1f} over {len(g)} models"
    return s


def _paper_c2() -> str:
    t = paper.table("table2")
    parts = [
        f"{paper.benchmark_label(b)} {t[t.benchmark == b].delta.min():.1f}-{t[t.benchmark == b].delta.max():.1f}"
        for b in CONSTRAINED
    ]
    parts2 = [
        f"{paper.benchmark_label(b)} {t[t.benchmark == b].delta.min():.1f}-{t[t.benchmark == b].delta.max():.1f}"
        for b in REASONING
    ]
    return f"{paper.cite('table2')}, best-worst run over 7 models: {', '.join(parts)} vs {', '.join(parts2)} points"


def _paper_c3(benchmarks) -> str:
    t = paper.table("table4").sort_values("size_b")
    bs = _bench_of(benchmarks, "table4") or list(dict.fromkeys(t.benchmark))
    parts = [
        f"{paper.benchmark_label(b) if b != 'mmlu_redux' else 'MMLU'} "
        + " -> ".join(f"{s:.2f}" for s in t[t.benchmark == b]["std"])
        for b in bs
    ]
    sizes = "/".join(f"{s:g}B" for s in dict.fromkeys(t.size_b))
    return f"{paper.cite('table4')}, std of Qwen2-Instruct {sizes}: {'; '.join(parts)} (Sec. 4.1: larger models show no lower variance)"


def _paper_text(key: str) -> str:
    """A figure that prints no values: what the paper's text says of it (the data file's figures_without_numbers)."""
    label = {"figure1": "Figure 1", "figure2a": "Figure 2(a)", "figure2b": "Figure 2(b)"}[key]
    return f"arXiv:2407.10457v1, {label}: {paper.load()['figures_without_numbers'][key]}"


def _paper_c7(benchmarks) -> str:
    t = paper.table("table5")
    s = f"{paper.cite('table5')}: greedy shorter than the sampling mean in {int((t.len_greedy < t.len_sample).sum())} of {len(t)} model x benchmark cells"
    for b in _bench_of(benchmarks, "table5"):
        g = t[t.benchmark == b]
        s += f"; {paper.benchmark_label(b)}: {int((g.len_greedy < g.len_sample).sum())} of {len(g)}"
    bs = set(t.benchmark)
    lacking = [paper.benchmark_label(b) for b in dict.fromkeys(benchmarks) if b not in bs]
    return s + (f" (Table 5 has no {', '.join(lacking)})" if lacking else "")


def _paper_c8(benchmarks) -> str:
    f4, t2, ref = paper.table("figure4"), paper.table("table2"), paper.reference_lines()
    bs = _bench_of(benchmarks, "figure4") or list(dict.fromkeys(f4.benchmark))
    parts = []
    for b in bs:
        g = f4[f4.benchmark == b].set_index("selector")
        greedy = t2[(t2.model == "Llama-3-8B-Instruct") & (t2.benchmark == b)].greedy
        line = ref[ref.benchmark == b].value
        parts.append(
            f"{paper.benchmark_label(b)}: oracle@{int(g.n.iloc[0])} {g.value['oracle']:.1f}, ArmoRM {g.value['ArmoRM']:.1f}, FsfairX {g.value['FsfairX']:.1f}"
            + (f" vs greedy {greedy.iloc[0]:.1f} (Table 2)" if len(greedy) else "")
            + (f" and the GPT-4-Turbo line {line.iloc[0]:.1f}" if len(line) else "")
        )
    return f"{paper.cite('figure4')}, Llama-3-8B-Instruct: " + "; ".join(parts)


# ------------------------------------------------------------------------------------------- C1
def greedy_beats_sampling(gap: pd.DataFrame) -> Verdict:
    """C1 on a stats.gap_table: per (model, benchmark, config) cell, the gap's bootstrap CI against 0 in the
    direction the claim predicts (greedy higher; on AlpacaEval the sampling mean higher)."""
    _need(gap, ["model", "benchmark", "greedy", "mean", "gap", "n_items", "n_runs"], "greedy_beats_sampling")
    benches = list(gap["benchmark"]) if len(gap) else []
    ptxt = _paper_c1(benches)
    if gap.empty:
        return _verdict("C1", ptxt, "no sampled cell", "not testable", "the store has no greedy + sampled cell")
    has_ci = {"gap_ci_low", "gap_ci_high"} <= set(gap.columns)
    states, parts = [], []
    for r in gap.itertuples():
        f = _f(r.benchmark)
        lo, hi = (r.gap_ci_low, r.gap_ci_high) if has_ci else (math.nan, math.nan)
        side = _side(lo, hi, 0.0)
        small = _small(r.n_items, r.n_runs)
        want = "below" if r.benchmark == "alpaca_eval" else "above"
        states.append(_state(side, want, "0", small))
        ci = f" [{lo * f:+.1f}, {hi * f:+.1f}]" if _finite(lo, hi) else " (no CI)"
        parts.append(
            f"{r.model} on {paper.benchmark_label(r.benchmark)}: greedy - mean {r.gap * f:+.1f}{ci} ({r.n_items} items, {r.n_runs} runs)"
        )
    verdict, why = _count(states, "agree", "disagree", len(states))
    if gap.benchmark.nunique() < 2:  # "most benchmarks" is more than one benchmark can show, whatever its CI
        verdict, why = (
            "not testable",
            f"one benchmark ({gap.benchmark.iloc[0]}) in this run, and the claim is about most of them; there: {why}",
        )
    one = len(gap) == 1
    r0 = gap.iloc[0]
    return _verdict(
        "C1",
        ptxt,
        _list(parts),
        verdict,
        why + "." + _setting(gap),
        value=r0.gap * _f(r0.benchmark) if one else None,
        ci_low=r0.gap_ci_low * _f(r0.benchmark) if one and has_ci else None,
        ci_high=r0.gap_ci_high * _f(r0.benchmark) if one and has_ci else None,
        n_items=_min_int(gap.n_items),
        n_runs=_min_int(gap.n_runs),
    )


# ------------------------------------------------------------------------------------------- C2
def constrained_answers_are_stable(gap: pd.DataFrame) -> Verdict:
    """C2 on a stats.gap_table: for each model that ran both a constrained benchmark (MMLU-Redux, MixEval) and
    GSM8K or HumanEval, the ratio of their run stds (constrained / open) with its F interval, against 1. The
    best-worst spread itself has no interval from N runs; the std decides, the spread is shown."""
    _need(gap, ["model", "benchmark", "std", "best", "worst", "n_items", "n_runs"], "constrained_answers_are_stable")
    ptxt = _paper_c2()
    have = sorted(set(gap["benchmark"])) if len(gap) else []
    cons, opn = gap[gap.benchmark.isin(CONSTRAINED)], gap[gap.benchmark.isin(REASONING)]
    if cons.empty or opn.empty:
        return _verdict(
            "C2",
            ptxt,
            f"benchmarks in the store: {', '.join(have) or 'none'}",
            "not testable",
            "needs MMLU-Redux or MixEval and GSM8K or HumanEval in one run",
        )
    states, parts, vals = [], [], []
    for c in cons.itertuples():
        for o in opn[opn.model == c.model].itertuples():
            r, lo, hi = std_ratio_ci(c.std, int(c.n_runs), o.std, int(o.n_runs))
            small = _small(c.n_items, c.n_runs) or _small(o.n_items, o.n_runs)
            side = _side(lo, hi, 1.0)
            states.append(_state(side, "below", "1", small))
            fc, fo = _f(c.benchmark), _f(o.benchmark)
            vals.append((r, lo, hi))
            parts.append(
                f"{c.model}: best-worst {paper.benchmark_label(c.benchmark)} {(c.best - c.worst) * fc:.1f} vs {paper.benchmark_label(o.benchmark)} "
                f"{(o.best - o.worst) * fo:.1f} points; std ratio {r:.2f} [{lo:.2f}, {hi:.2f}] ({c.n_items} vs {o.n_items} items, {c.n_runs} vs {o.n_runs} runs)"
            )
    if not states:
        return _verdict(
            "C2",
            ptxt,
            "no model ran both kinds of benchmark",
            "not testable",
            "needs one model on both a constrained and an open benchmark",
        )
    verdict, why = _every_cell(
        states,
        "{bad} of {n} pairs: the constrained benchmark's run std is larger at 95%",
        "all {n} pairs: the constrained benchmark's run std is smaller at 95% (F interval on the std ratio)",
        "{good} of {n} pairs resolved below 1; the rest: {rest}",
    )
    why += "; a run's spread also shrinks with more items, so compare item counts"
    one = len(vals) == 1
    return _verdict(
        "C2",
        ptxt,
        _list(parts),
        verdict,
        why + ".",
        value=vals[0][0] if one else None,
        ci_low=vals[0][1] if one else None,
        ci_high=vals[0][2] if one else None,
        n_items=_min_int(pd.concat([cons.n_items, opn.n_items])),
        n_runs=_min_int(pd.concat([cons.n_runs, opn.n_runs])),
    )


# ------------------------------------------------------------------------------------------- C3
def larger_model_not_less_variable(gap: pd.DataFrame, size_col: str = "size_b", stand_in: bool | None = None) -> Verdict:
    """C3 on the scaling notebook's gap table (with ``size_col``): per benchmark, the largest size's run std over the
    smallest's, F interval against 1. Contradicted where the larger model's std is smaller at 95%; supported where it
    is larger at 95% somewhere and smaller nowhere. Models of different families (by name, or ``stand_in=True``)
    are stand-ins: their numbers are shown and the verdict is "not testable"."""
    _need(gap, ["model", "benchmark", "std", "n_items", "n_runs"], "larger_model_not_less_variable")
    ptxt = _paper_c3(list(gap["benchmark"]) if len(gap) else [])
    if size_col not in gap.columns or gap[size_col].nunique() < 2:
        return _verdict(
            "C3",
            ptxt,
            f"{gap[size_col].nunique() if size_col in gap.columns else 0} model size(s)",
            "not testable",
            "needs one family at two sizes or more",
        )
    families = sorted({paper.family(m) for m in gap.model})
    stand = len(families) > 1 if stand_in is None else stand_in
    states, parts, vals = [], [], []
    for b, g in gap.groupby("benchmark", sort=False):
        g = g.sort_values(size_col)
        small_m, large_m = g.iloc[0], g.iloc[-1]
        if small_m[size_col] == large_m[size_col]:
            continue
        r, lo, hi = std_ratio_ci(large_m["std"], int(large_m.n_runs), small_m["std"], int(small_m.n_runs))
        small = _small(small_m.n_items, small_m.n_runs) or _small(large_m.n_items, large_m.n_runs)
        side = _side(lo, hi, 1.0)
        states.append(_state(side, "above", "1", small))
        f = _f(b)
        vals.append((r, lo, hi))
        parts.append(
            f"{paper.benchmark_label(b)}: std {small_m['std'] * f:.2f} ({small_m.model}, {small_m[size_col]:g}B) -> {large_m['std'] * f:.2f} "
            f"({large_m.model}, {large_m[size_col]:g}B), ratio {r:.2f} [{lo:.2f}, {hi:.2f}] ({_min_int(g.n_items)} items, {_min_int(g.n_runs)} runs)"
        )
    yours = ("stand-in models of different families (" + ", ".join(families) + "): " if stand else "") + (
        _list(parts) or "no benchmark with two sizes"
    )
    kw = dict(
        value=vals[0][0] if len(vals) == 1 else None,
        ci_low=vals[0][1] if len(vals) == 1 else None,
        ci_high=vals[0][2] if len(vals) == 1 else None,
        n_items=_min_int(gap.n_items),
        n_runs=_min_int(gap.n_runs),
        stand_in=stand,
    )
    if stand:
        return _verdict(
            "C3",
            ptxt,
            yours,
            "not testable",
            "the models are stand-ins of different families; the claim needs one family at several sizes",
            **kw,
        )
    if not states:
        return _verdict("C3", ptxt, yours, "not testable", "no benchmark has two model sizes", **kw)
    if "disagree" in states:
        verdict, why = (
            "contradicted",
            f"on {states.count('disagree')} of {len(states)} benchmarks the larger model's run std is smaller at 95%",
        )
    elif "agree" in states:
        verdict, why = (
            "supported",
            f"on {states.count('agree')} of {len(states)} benchmarks the larger model's run std is larger at 95%, smaller on none",
        )
    else:
        verdict, why = "inconclusive", f"every std ratio's CI includes 1 or the cells are too small ({_why_unresolved(states)})"
    return _verdict("C3", ptxt, yours, verdict, why + " (F interval on the std ratio).", **kw)


# ------------------------------------------------------------------------------------------- C4
def alignment_lowers_std(gap: pd.DataFrame, method_col: str = "method", base: str | None = None) -> Verdict:
    """C4 on the alignment notebook's gap table (with ``method_col``): per benchmark, each aligned method's run std
    over the base model's (``base``: its method name; default the first row's), F interval against 1; supported
    when most (method, benchmark) pairs are lower at 95%. Methods named "stand-in..." make it "not testable"."""
    _need(gap, ["model", "benchmark", "std", "n_items", "n_runs"], "alignment_lowers_std")
    ptxt = _paper_text("figure1")
    if method_col not in gap.columns or gap.empty:
        return _verdict(
            "C4",
            ptxt,
            "no alignment methods in the table",
            "not testable",
            f"needs a {method_col!r} column naming each model's alignment",
        )
    methods = list(dict.fromkeys(gap[method_col]))
    base = methods[0] if base is None else base
    if base not in methods:
        raise ValueError(f"base method {base!r} is not in the table's {method_col!r}: {methods}")
    stand = any(str(m).lower().startswith("stand-in") for m in methods)
    states, parts, vals = [], [], []
    for b, g in gap.groupby("benchmark", sort=False):
        ref = g[g[method_col] == base]
        if ref.empty:
            continue
        ref = ref.iloc[0]
        for r in g[g[method_col] != base].itertuples():
            ratio, lo, hi = std_ratio_ci(r.std, int(r.n_runs), ref["std"], int(ref.n_runs))
            small = _small(r.n_items, r.n_runs) or _small(ref.n_items, ref.n_runs)
            side = _side(lo, hi, 1.0)
            states.append(_state(side, "below", "1", small))
            f = _f(b)
            vals.append((ratio, lo, hi))
            parts.append(
                f"{paper.benchmark_label(b)}: {getattr(r, method_col)} std {r.std * f:.2f} vs {base} {ref['std'] * f:.2f}, "
                f"ratio {ratio:.2f} [{lo:.2f}, {hi:.2f}] ({r.n_items} items, {r.n_runs} runs)"
            )
    yours = ("stand-in models, not an aligned family: " if stand else "") + (_list(parts) or "no aligned method beside the base")
    kw = dict(
        value=vals[0][0] if len(vals) == 1 else None,
        ci_low=vals[0][1] if len(vals) == 1 else None,
        ci_high=vals[0][2] if len(vals) == 1 else None,
        n_items=_min_int(gap.n_items),
        n_runs=_min_int(gap.n_runs),
        stand_in=stand,
    )
    if stand:
        return _verdict(
            "C4",
            ptxt,
            yours,
            "not testable",
            "the methods are stand-ins (params' `methods`): the store has no aligned model",
            **kw,
        )
    if not states:
        return _verdict(
            "C4", ptxt, yours, "not testable", "needs a base model and at least one aligned variant on the same benchmark", **kw
        )
    verdict, why = _count(states, "agree", "disagree", len(states))
    return _verdict(
        "C4", ptxt, yours, verdict, why.replace("cells", "(method, benchmark) pairs") + " (F interval on the std ratio).", **kw
    )


# ------------------------------------------------------------------------------------------- C5
def high_temperature_hurts_reasoning(sweep: pd.DataFrame, hot: float = 1.5) -> Verdict:
    """C5 on a temperature sweep_table: the drop from greedy to T = ``hot`` (points), GSM8K/HumanEval minus
    AlpacaEval/Arena-Hard for the same model, normal interval; supported when every pair's CI is above 0
    ("far more" is not quantified by the paper: tested as "more, at 95%")."""
    _need(sweep, ["model", "benchmark", "decoding", "temperature", "mean", "n_items"], "high_temperature_hurts_reasoning")
    ptxt = _paper_text("figure2a")
    drops = {}
    for (m, b), g in sweep.groupby(["model", "benchmark"], sort=False):
        gr = g[g.decoding == "greedy"]
        ht = g[(g.decoding != "greedy") & np.isclose(g.temperature.astype(float), hot)]
        if gr.empty or ht.empty:
            continue
        gr, ht = gr.iloc[0], ht.iloc[0]
        f = _f(b)
        drops[(m, b)] = ((gr["mean"] - ht["mean"]) * f, _se(gr) * f, _se(ht) * f, min(int(gr.n_items), int(ht.n_items)))
    shown = [
        f"{m} on {paper.benchmark_label(b)}: greedy - T={hot:g} {d:+.1f} points ({n} items)"
        for (m, b), (d, _, _, n) in drops.items()
    ]
    if not drops:
        return _verdict(
            "C5",
            ptxt,
            f"no greedy + T={hot:g} pair in the sweep",
            "not testable",
            f"needs T={hot:g} sampled beside greedy (T=0) in the sweep",
        )
    pairs = [(m, r, o) for (m, r) in drops if r in REASONING for (m2, o) in drops if m2 == m and o in OPEN_ENDED]
    if not pairs:
        have = sorted({b for _, b in drops})
        return _verdict(
            "C5",
            ptxt,
            _list(shown),
            "not testable",
            f"needs GSM8K or HumanEval and an open-ended benchmark (AlpacaEval, Arena-Hard) for one model; the sweep has {', '.join(have)}",
            n_items=_min_int(n for *_, n in drops.values()),
        )
    states, parts, vals = [], [], []
    for m, r, o in pairs:
        (dr, s1, s2, nr), (do, s3, s4, no) = drops[(m, r)], drops[(m, o)]
        d = dr - do
        lo, hi = _diff_ci(d, s1, s2, s3, s4)
        small = _small(nr) or _small(no)
        side = _side(lo, hi, 0.0)
        states.append(_state(side, "above", "0", small))
        vals.append((d, lo, hi))
        parts.append(
            f"{m}: drop on {paper.benchmark_label(r)} {dr:+.1f} vs {paper.benchmark_label(o)} {do:+.1f}, difference {d:+.1f} [{lo:+.1f}, {hi:+.1f}] points"
        )
    verdict, why = _every_cell(
        states,
        "{bad} of {n} pairs: the open-ended task drops more at 95%",
        "all {n} pairs: the reasoning task drops more at 95%",
        "{good} of {n} pairs resolved; the rest: {rest}",
    )
    one = len(vals) == 1
    return _verdict(
        "C5",
        ptxt,
        _list(parts),
        verdict,
        why + " (normal interval on the SEs).",
        value=vals[0][0] if one else None,
        ci_low=vals[0][1] if one else None,
        ci_high=vals[0][2] if one else None,
        n_items=_min_int(n for *_, n in drops.values()),
    )


# ------------------------------------------------------------------------------------------- C6
def default_repetition_penalty_is_near_best(sweep: pd.DataFrame, margin: float = 2.0, default: float = 1.0) -> Verdict:
    """C6 on a repetition_penalty sweep_table: per (model, benchmark, decoding), the default penalty's mean minus
    the best other penalty's (points; on GSM8K 0.9 is the allowed exception and not counted against the claim).
    Supported when every cell's CI lies above -``margin`` points (the default within ``margin`` of the best, a
    margin of ours: the paper gives none); contradicted when another penalty is better at 95% somewhere."""
    _need(
        sweep,
        ["model", "benchmark", "decoding", "repetition_penalty", "mean", "n_items"],
        "default_repetition_penalty_is_near_best",
    )
    ptxt = _paper_text("figure2b")
    states, parts, vals, notes, n_items = [], [], [], [], []
    for (m, b, dec), g in sweep.groupby(["model", "benchmark", "decoding"], sort=False):
        rp = g.repetition_penalty.astype(float)
        base = g[np.isclose(rp, default)]
        others = g[~np.isclose(rp, default)]
        if b == "gsm8k":
            nine = others[np.isclose(others.repetition_penalty.astype(float), 0.9)]
            if len(base) and len(nine):
                d9 = (nine.iloc[0]["mean"] - base.iloc[0]["mean"]) * _f(b)
                lo9, hi9 = _diff_ci(d9, _se(nine.iloc[0]) * _f(b), _se(base.iloc[0]) * _f(b))
                notes.append(f"GSM8K {dec}: 0.9 - 1.0 = {d9:+.1f} [{lo9:+.1f}, {hi9:+.1f}] points")
            others = others[~np.isclose(others.repetition_penalty.astype(float), 0.9)]
        if base.empty or others.empty:
            continue
        base, best = base.iloc[0], others.loc[others["mean"].idxmax()]
        f = _f(b)
        d = (base["mean"] - best["mean"]) * f
        lo, hi = _diff_ci(d, _se(base) * f, _se(best) * f)
        small = _small(min(base.n_items, best.n_items))
        n_items.append(min(base.n_items, best.n_items))
        if small:
            states.append("too small")
        elif _finite(lo, hi) and hi < 0:
            states.append("disagree")
        elif _finite(lo, hi) and lo > -margin:
            states.append("agree")
        else:
            states.append(f"CI reaches below -{margin:g} points" if _finite(lo, hi) else "no CI")
        vals.append((d, lo, hi))
        parts.append(
            f"{m} on {paper.benchmark_label(b)} ({dec}): {default:.1f} minus the best other ({best.repetition_penalty:.2f}) {d:+.1f} [{lo:+.1f}, {hi:+.1f}] points "
            f"({int(min(base.n_items, best.n_items))} items)"
        )
    yours = _list(parts) + (f"; {'; '.join(notes)}" if notes else "")
    if not states:
        return _verdict(
            "C6",
            ptxt,
            yours or "no penalty beside the default",
            "not testable",
            f"needs the default {default:.1f} and another penalty (besides GSM8K's 0.9) on one benchmark",
        )
    verdict, why = _every_cell(
        states,
        f"in {{bad}} of {{n}} cells another penalty beats {default:.1f} at 95%",
        f"in all {{n}} cells {default:.1f} is within {margin:g} points of the best penalty at 95%",
        f"{{good}} of {{n}} cells resolved within {margin:g} points of the best; the rest: {{rest}}",
    )
    one = len(vals) == 1
    return _verdict(
        "C6",
        ptxt,
        yours,
        verdict,
        why + f" (margin {margin:g} points is ours; normal interval on the SEs).",
        value=vals[0][0] if one else None,
        ci_low=vals[0][1] if one else None,
        ci_high=vals[0][2] if one else None,
        n_items=_min_int(n_items),
    )


# ------------------------------------------------------------------------------------------- C7
def greedy_is_shorter(lengths: pd.DataFrame) -> Verdict:
    """C7 on a stats.length_table: per sampled cell, its mean tokens minus its group's greedy mean tokens, normal
    interval; majority rule over cells. Tokens are the policy's own (the paper counts tiktoken cl100k tokens)."""
    _need(lengths, ["model", "benchmark", "decoding", "mean_tokens", "se", "n_items"], "greedy_is_shorter")
    ptxt = _paper_c7(list(lengths["benchmark"]) if len(lengths) else [])
    states, parts, vals, n_items = [], [], [], []
    for (m, b), g in lengths.groupby(["model", "benchmark"], sort=False):
        gr = g[g.decoding == "greedy"]
        if gr.empty:
            continue
        gr = gr.iloc[0]
        for s in g[g.decoding != "greedy"].itertuples():
            d = s.mean_tokens - gr.mean_tokens
            lo, hi = _diff_ci(d, s.se, gr.se)
            small = _small(min(s.n_items, gr.n_items))
            side = _side(lo, hi, 0.0)
            states.append(_state(side, "above", "0", small))
            vals.append((d, lo, hi))
            n_items.append(min(s.n_items, gr.n_items))
            parts.append(
                f"{m} on {paper.benchmark_label(b)}: sampled - greedy {d:+.0f} [{lo:+.0f}, {hi:+.0f}] tokens "
                f"({gr.mean_tokens:.0f} greedy, ratio {s.mean_tokens / gr.mean_tokens:.2f}; {int(min(s.n_items, gr.n_items))} items)"
            )
    if not states:
        return _verdict(
            "C7",
            ptxt,
            "no greedy + sampled lengths",
            "not testable",
            "needs greedy and sampled outputs of one model on one benchmark",
        )
    verdict, why = _count(states, "agree", "disagree", len(states))
    one = len(vals) == 1
    return _verdict(
        "C7",
        ptxt,
        _list(parts),
        verdict,
        why + " (normal interval on the SEs over items).",
        value=vals[0][0] if one else None,
        ci_low=vals[0][1] if one else None,
        ci_high=vals[0][2] if one else None,
        n_items=_min_int(n_items),
    )


# ------------------------------------------------------------------------------------------- C8
def best_of_n_beats_greedy(curves: pd.DataFrame, reference: float | None = None, reference_label: str = "reference") -> Verdict:
    """C8 on a best-of-k table (stats.best_of_k_table, selector column named "selector" or "method"), at each
    cell's largest k: (a) the oracle's CI above the greedy score, (b) each reward model's ("reward:*") likewise,
    (c) the oracle's CI above a stronger model's greedy: ``reference`` (0-1, e.g. params' reference_score) or,
    with several models on a benchmark, the best greedy among the others. Contradicted if any tested part's CI
    lies below its bar; supported when every tested part's CI lies above and (c) was tested; parts the run
    cannot test are named ((b) is optional; without (c) a verdict that would be "supported" is "not testable")."""
    sel = "method" if "method" in curves.columns else "selector"
    _need(curves, ["model", "benchmark", sel, "k", "value", "greedy", "n_items"], "best_of_n_beats_greedy")
    ptxt = _paper_c8(list(curves["benchmark"]) if len(curves) else [])
    oracle = curves[curves[sel] == "oracle"] if len(curves) else curves
    if oracle.empty:
        return _verdict("C8", ptxt, "no oracle curve", "not testable", "needs the oracle selector in the best-of-k table")
    has_ci = {"ci_low", "ci_high"} <= set(curves.columns)
    top = curves[curves.k == curves.groupby(["model", "benchmark"]).k.transform("max")]
    states, parts, untested = [], [], []

    def check(part: str, r, bar: float, bar_name: str):
        f = _f(r.benchmark)
        lo, hi = (r.ci_low, r.ci_high) if has_ci else (math.nan, math.nan)
        side = _side(lo, hi, bar) if _finite(bar) else "no bar"
        small = _small(r.n_items)
        states.append(_state(side, "above", "the bar", small))
        ci = f" [{lo * f:.1f}, {hi * f:.1f}]" if _finite(lo, hi) else " (no CI)"
        parts.append(
            f"({part}) {r.model} on {paper.benchmark_label(r.benchmark)}: {getattr(r, sel)}@{int(r.k)} {r.value * f:.1f}{ci} vs {bar_name} {bar * f:.1f}"
        )

    tops = top[top[sel] == "oracle"]
    for r in tops.itertuples():
        check("a", r, r.greedy, "greedy")
    rewards = top[top[sel].astype(str).str.startswith("reward:")]
    for r in rewards.itertuples():
        check("b", r, r.greedy, "greedy")
    if rewards.empty:
        untested.append("(b) no reward model in the run")
    stronger = 0
    for r in tops.itertuples():
        if reference is not None:
            check("c", r, float(reference), reference_label)
            stronger += 1
            continue
        others = tops[(tops.benchmark == r.benchmark) & (tops.model != r.model) & (tops.greedy > r.greedy)]
        if len(others):
            best = others.loc[others.greedy.idxmax()]
            check("c", r, best.greedy, f"{best.model}'s greedy")
            stronger += 1
    if not stronger:
        untested.append("(c) no stronger model in the store and no reference_score")
    verdict, why = _every_cell(
        states,
        "{bad} of {n} comparisons fall below their bar at 95%",
        "all {n} comparisons lie above their bar at 95%",
        "{good} of {n} comparisons resolved above their bar; the rest: {rest}",
    )
    if not stronger and verdict == "supported":  # the claim's second half is a conjunct, not a footnote
        verdict, why = (
            "not testable",
            f"(a) holds ({why}), but its second half needs a stronger model in the store or reference_score",
        )
    if untested:
        why += "; untested: " + ", ".join(untested)
    one = len(tops) == 1
    r0 = tops.iloc[0]
    f0 = _f(r0.benchmark)
    return _verdict(
        "C8",
        ptxt,
        _list(parts, limit=6),
        verdict,
        why + " (the oracle's bootstrap CI against the greedy score of the same items).",
        value=(r0.value - r0.greedy) * f0 if one else None,
        ci_low=(r0.ci_low - r0.greedy) * f0 if one and has_ci else None,
        ci_high=(r0.ci_high - r0.greedy) * f0 if one and has_ci else None,
        n_items=_min_int(top.n_items),
        n_runs=_min_int(top.k),
    )


# ------------------------------------------------------------------------------------------- files and display
def save_verdicts(verdicts: list[Verdict], out_dir: str | Path, notebook: str) -> Path:
    """Write ``verdicts.json`` into a notebook's output folder (relative: to the project root); returns its path."""
    out = from_root(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / VERDICT_FILE
    rows = [dataclasses.replace(v, notebook=notebook).to_dict() for v in verdicts]
    meta = paper.load()["paper"]
    path.write_text(json.dumps({"notebook": notebook, "paper": f"{meta['title']} ({meta['url']})", "verdicts": rows}, indent=2))
    return path


def load_verdicts(path: str | Path) -> list[Verdict]:
    """The verdicts of one verdicts.json (a file, or a folder holding one)."""
    p = from_root(path)
    p = p / VERDICT_FILE if p.is_dir() else p
    try:
        data = json.loads(p.read_text())
        return [Verdict.from_dict(d) for d in data["verdicts"]]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{p}: not a readable verdicts file ({e})") from None


def verdict_table(verdicts: list[Verdict]) -> pd.DataFrame:
    """Paper vs yours, one row per verdict, for display."""
    return pd.DataFrame(
        [
            {"claim": f"{v.claim_id}: {v.claim}", "paper": v.paper, "yours": v.yours, "verdict": v.verdict, "why": v.reason}
            for v in verdicts
        ]
    )
