"""C8, best-of-N, the one claim with parts: (a) oracle@N beats greedy, (b) a reward model's RM@N beats greedy,
(c) a small model's oracle@N beats a stronger model's sampling mean (Figure 4's GPT-4-Turbo line is GPT-4-Turbo's
sampling mean of Table 2, not its greedy score), on MMLU-Redux, GSM8K and HumanEval only."""

from __future__ import annotations

import math

import pandas as pd

from . import decide as D
from . import sentences as S
from .claims import _verdict
from .record import Verdict


def _bar_of(reference, benchmarks) -> tuple[dict, str | None]:
    """{benchmark: bar (0-1)} from ``reference``: a dict per benchmark, or one number for a one-benchmark table."""
    if reference is None:
        return {}, None
    if isinstance(reference, dict):
        return {b: float(v) for b, v in reference.items()}, None
    if len(benchmarks) > 1:
        return {}, f"(c) one reference number for {len(benchmarks)} benchmarks: pass {{benchmark: score}}"
    return {benchmarks[0]: float(reference)}, None


def combine_parts(verdicts: dict) -> tuple[str, str]:
    """C8 from its parts' verdicts {"a": ..., "b": ..., "c": ...} (a missing part: untested)."""
    a, b, c = (verdicts.get(p) for p in "abc")
    if "contradicted" in (a, b, c):
        return "contradicted", "a part is contradicted"
    if a == "supported" and c == "supported" and b != "contradicted":
        return "supported", "(a) and (c) supported, (b) " + (b or "untested")
    if a == "supported" and c is None:  # the claim's second half is a conjunct, not a footnote
        return "not testable", "(a) holds, but its second half needs a stronger model in the store or a reference per benchmark"
    return "inconclusive", "(a) and (c) are not both supported"


def best_of_n_beats_greedy(curves: pd.DataFrame, reference=None, reference_label: str = "reference") -> Verdict:
    """C8 on a best-of-k table (stats.best_of_k_table), at each cell's
    largest k. (a) and (b) use the paired interval of value - greedy over the same items (gain_ci_low/high);
    (c) compares the oracle with ``reference`` ({benchmark: a stronger model's sampling mean, 0-1}; one number
    for a one-benchmark table) or, without one, with the sampling mean (k = 1) of the model in the store with
    the best greedy score on that benchmark. Each part: majority of its benchmarks (models averaged)."""
    sel = "selector"
    D.need(curves, ["model", "benchmark", sel, "k", "value", "greedy", "n_items"], "best_of_n_beats_greedy")
    ptxt = S.paper_c8(list(curves["benchmark"]) if len(curves) else [])
    if curves.empty or not (curves[sel] == "oracle").any():
        return _verdict("C8", ptxt, "no oracle curve", "not testable", "needs the oracle selector in the best-of-k table")
    if mixed := D.mixed_settings(curves):
        return _verdict("C8", ptxt, "several sampling settings", "not testable", mixed)
    top = curves[curves.k == curves.groupby(["model", "benchmark"]).k.transform("max")]
    first = curves[curves.k == 1].drop_duplicates(["model", "benchmark"])
    paired = {"gain_ci_low", "gain_ci_high"} <= set(curves.columns)
    bars, bar_note = _bar_of(reference, list(dict.fromkeys(curves.benchmark)))
    cells, shown = {}, []  # (part, name) -> [(v, lo, hi)]

    def add(part, name, b, v, lo, hi, text):
        cells.setdefault((part, name), []).append((v, lo, hi))
        shown.append(f"({part}) {text}: {v:+.1f}" + (f" [{lo:+.1f}, {hi:+.1f}]" if D.finite(lo, hi) else " (no paired CI)"))

    for r in top.itertuples():
        name, b, f = getattr(r, sel), r.benchmark, D.factor(r.benchmark)
        if D.small(r.n_items):
            continue
        part = "a" if name == "oracle" else "b" if str(name).startswith("reward:") else None
        if part:
            lo, hi = (r.gain_ci_low * f, r.gain_ci_high * f) if paired else (math.nan, math.nan)
            unit = D.label(b) if part == "a" else f"{name} on {D.label(b)}"
            add(part, unit, b, (r.value - r.greedy) * f, lo, hi, f"{r.model} on {D.label(b)}: {name}@{int(r.k)} - greedy")
        if name != "oracle" or b not in S.C8C_SCOPE:
            continue
        se = D.se_of(r, "ci_low", "ci_high") * f
        if b in bars:
            v = (r.value - bars[b]) * f
            add(
                "c",
                D.label(b),
                b,
                v,
                v - D.Z * se,
                v + D.Z * se,
                f"{r.model} on {D.label(b)}: oracle@{int(r.k)} - {reference_label}",
            )
            continue
        if reference is not None:
            continue
        strong = first[(first.benchmark == b) & (first.model != r.model) & (first.greedy > r.greedy)]
        if len(strong):
            s = strong.loc[strong.greedy.idxmax()]
            v, lo, hi = D.diff_cell((r.value - s.value) * f, se, D.se_of(s, "ci_low", "ci_high") * f)
            add("c", D.label(b), b, v, lo, hi, f"{r.model} on {D.label(b)}: oracle@{int(r.k)} - {s.model}'s sampling mean")
    parts, reasons = {}, []
    for p in "abc":
        units = []
        for (q, name), cs in cells.items():
            if q == p:
                v, lo, hi = D.pool(cs)
                units.append(D.Unit(name, v, lo, hi, D.state(lo, hi, 0.0, "above", "0"), ""))
        if units:
            parts[p], why = D.majority(units, "benchmarks")
            reasons.append(f"({p}) {parts[p]}: {why}")
        else:
            reasons.append(f"({p}) untested" + (": no reward model in the run" if p == "b" else ""))
    if "c" not in parts and bar_note:
        reasons.append(bar_note)
    verdict, why = combine_parts(parts)
    a_units = [c for (q, _), c in cells.items() if q == "a"]
    kw = {"n_items": D.min_int(top.n_items), "n_runs": D.min_int(top.k)}
    if len(a_units) == 1 and len(a_units[0]) == 1:
        kw.update(zip(("value", "ci_low", "ci_high"), a_units[0][0]))
    return _verdict("C8", ptxt, D.listing(shown, 6), verdict, f"{why}; " + "; ".join(reasons) + ".", **kw)
