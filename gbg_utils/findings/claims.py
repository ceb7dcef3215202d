"""The paper's eight findings as claims tested on the user's tables: one function per claim, each a Verdict.

    >>> v = greedy_beats_sampling(stats.gap_table(df))      # claim C1
    >>> v.verdict, v.yours, v.reason, v.rule

Each function takes a table a notebook already computes (stats.gap_table, sweep_table, length_table,
best_of_k_table), never the raw store. Each claim's decision rule (unit, effect and margin, scope, error control)
is `sentences.RULES[claim]`, carried on the Verdict; the machinery is `decide` (states, `majority`). Verdicts:
"supported" / "contradicted" / "inconclusive" by the rule; "not testable" when the table lacks what the claim
needs, mixes decoding settings, names no base, or runs stand-in models (their numbers are still shown).
Scores are shown in percent (points for WildBench), as the paper prints them.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats as sps

from . import decide as D
from . import paper
from . import sentences as S
from .record import CLAIMS, NOTEBOOK_OF, Verdict


def _verdict(cid: str, ptxt: str, yours: str, verdict: str, reason: str, **kw) -> Verdict:
    return Verdict(cid, CLAIMS[cid], ptxt, yours, verdict, reason, notebook=NOTEBOOK_OF[cid], rule=S.RULES[cid], **kw)


def _ratio_units(cells: dict, bar: float, want: str, bar_text: str, sizes: dict) -> list[D.Unit]:
    """Units from std-ratio cells {unit name: [(s_num, N_num, s_den, N_den), ...]} (per-item stds)."""
    units = []
    for name, pairs in cells.items():
        if not pairs:  # every cell of the unit too small: counted, unresolved
            units.append(D.Unit(name, math.nan, math.nan, math.nan, "too small", "", sizes.get(name)))
            continue
        r, lo, hi = D.ratio_ci(pairs)
        units.append(D.Unit(name, r, lo, hi, D.state(lo, hi, bar, want, bar_text), "", sizes.get(name)))
    return units


# ------------------------------------------------------------------------------------------- C1
def greedy_beats_sampling(gap: pd.DataFrame) -> Verdict:
    """C1 on a stats.gap_table: per benchmark (AlpacaEval shown, not counted), greedy - sampling mean averaged
    over models, against 0; majority of benchmarks."""
    D.need(gap, ["model", "benchmark", "greedy", "mean", "gap", "n_items", "n_runs"], "greedy_beats_sampling")
    ptxt = S.paper_c1(list(gap["benchmark"]) if len(gap) else [])
    if gap.empty:
        return _verdict("C1", ptxt, "no sampled cell", "not testable", "the store has no greedy + sampled cell")
    if mixed := D.mixed_settings(gap):
        return _verdict("C1", ptxt, "several sampling settings", "not testable", mixed)
    units, parts, shown = [], [], []
    for b, g in gap.groupby("benchmark", sort=False):
        f, cells = D.factor(b), []
        for r in g.itertuples():
            se = D.se_of(r, "gap_ci_low", "gap_ci_high", ("gap_se", "gap_se_clustered"))
            if not D.small(r.n_items, r.n_runs):
                cells.append((r.gap * f, r.gap * f - D.Z * se * f, r.gap * f + D.Z * se * f))
                if D.finite(getattr(r, "gap_ci_low", math.nan), getattr(r, "gap_ci_high", math.nan)):
                    cells[-1] = (r.gap * f, r.gap_ci_low * f, r.gap_ci_high * f)
        v, lo, hi = D.pool(cells)
        too = None if cells else "every cell too small"
        ci = f" [{lo:+.1f}, {hi:+.1f}]" if D.finite(lo, hi) else " (no CI)"
        line = f"{D.label(b)}: greedy - mean {v:+.1f}{ci} points over {len(g)} model(s) ({D.min_int(g.n_items)} items, {D.min_int(g.n_runs)} runs)"
        if b in S.C1_EXCEPT:
            shown.append(line + ", the paper's exception: not counted")
            continue
        units.append(D.Unit(D.label(b), v, lo, hi, D.state(lo, hi, 0.0, "above", "0", too), line, D.min_int(g.n_items)))
        parts.append(line)
    yours = D.listing(parts + shown)
    kw = dict(n_items=D.min_int(gap.n_items), n_runs=D.min_int(gap.n_runs))
    if len(units) < 2:  # "most benchmarks" is more than one benchmark can show, whatever its CI
        only = ", ".join(dict.fromkeys(gap.benchmark))
        kw.update({k: v for k, v in D.one_value(units).items() if k != "n_items"})
        return _verdict(
            "C1",
            ptxt,
            yours,
            "not testable",
            f"one benchmark ({only}) in scope in this run, and the claim is about most of them",
            **kw,
        )
    verdict, why = D.majority(units, "benchmarks")
    return _verdict("C1", ptxt, yours, verdict, why + ".", **kw)


# ------------------------------------------------------------------------------------------- C2
def constrained_answers_are_stable(gap: pd.DataFrame) -> Verdict:
    """C2 on a stats.gap_table: per (constrained, open) benchmark pair, the ratio of per-item stds (run std x
    sqrt(n_items)), geometric mean over models that ran both, against 1; majority of pairs."""
    D.need(gap, ["model", "benchmark", "std", "best", "worst", "n_items", "n_runs"], "constrained_answers_are_stable")
    ptxt = S.paper_c2()
    have = sorted(set(gap["benchmark"])) if len(gap) else []
    cons, opn = gap[gap.benchmark.isin(S.CONSTRAINED)], gap[gap.benchmark.isin(S.REASONING)]
    if cons.empty or opn.empty:
        return _verdict(
            "C2",
            ptxt,
            f"benchmarks in the store: {', '.join(have) or 'none'}",
            "not testable",
            "needs MMLU-Redux or MixEval and GSM8K or HumanEval in one run",
        )
    if mixed := D.mixed_settings(gap):
        return _verdict("C2", ptxt, "several sampling settings", "not testable", mixed)
    cells, sizes, parts = {}, {}, []
    for c in cons.itertuples():
        for o in opn[opn.model == c.model].itertuples():
            name = f"{D.label(c.benchmark)} / {D.label(o.benchmark)}"
            if D.small(c.n_items, c.n_runs) or D.small(o.n_items, o.n_runs):
                cells.setdefault(name, [])
                continue
            sc, so = D.per_item_std(c.std, c.n_items), D.per_item_std(o.std, o.n_items)
            cells.setdefault(name, []).append((sc, c.n_runs, so, o.n_runs))
            sizes[name] = D.min_int([sizes.get(name), c.n_items, o.n_items])
            fc, fo = D.factor(c.benchmark), D.factor(o.benchmark)
            parts.append(
                f"{c.model}: best-worst {D.label(c.benchmark)} {(c.best - c.worst) * fc:.1f} vs {D.label(o.benchmark)} "
                f"{(o.best - o.worst) * fo:.1f} points; per-item std {sc * fc:.1f} vs {so * fo:.1f} ({c.n_items} vs {o.n_items} items)"
            )
    if not cells:
        return _verdict(
            "C2",
            ptxt,
            D.listing(parts) or "no model ran both kinds of benchmark",
            "not testable",
            "needs one model on both a constrained and an open benchmark, each with 10 items and 2 runs or more",
        )
    units = _ratio_units(cells, 1.0, "below", "1", sizes)
    parts += [f"{u.name}: per-item std ratio {u.value:.2f} [{u.lo:.2f}, {u.hi:.2f}]" for u in units]
    verdict, why = D.majority(units, "benchmark pairs")
    kw = D.one_value(units) | {"n_runs": D.min_int(pd.concat([cons.n_runs, opn.n_runs]))}
    return _verdict("C2", ptxt, D.listing(parts[::-1], 6), verdict, why + ".", **kw)


# ------------------------------------------------------------------------------------------- C3
def larger_model_not_less_variable(gap: pd.DataFrame, size_col: str = "size_b", stand_in: bool | None = None) -> Verdict:
    """C3 on the scaling notebook's gap table (with ``size_col``): per benchmark, largest over smallest model of one
    family, per-item std ratio, geometric mean over families, against the margin 2/3; majority of benchmarks.
    Models of different families (no family at two sizes, or ``stand_in=True``) are stand-ins: their ratio is
    shown and the verdict is "not testable"."""
    D.need(gap, ["model", "benchmark", "std", "n_items", "n_runs"], "larger_model_not_less_variable")
    ptxt = S.paper_c3(list(gap["benchmark"]) if len(gap) else [])
    if size_col not in gap.columns or gap[size_col].nunique() < 2:
        n = gap[size_col].nunique() if size_col in gap.columns else 0
        return _verdict("C3", ptxt, f"{n} model size(s)", "not testable", "needs one family at two sizes or more")
    if mixed := D.mixed_settings(gap):
        return _verdict("C3", ptxt, "several sampling settings", "not testable", mixed)
    fam = gap.model.map(paper.family)
    two = fam[gap.groupby(fam)[size_col].transform("nunique") > 1]
    stand = two.empty if stand_in is None else stand_in
    fam = pd.Series("all models", index=gap.index) if stand else fam
    cells, sizes, parts = {}, {}, []
    for (b, _), g in gap[fam.isin(set(fam)) if stand else fam.isin(set(two))].groupby(["benchmark", fam], sort=False):
        g = g.sort_values(size_col)
        lo_m, hi_m = g.iloc[0], g.iloc[-1]
        if lo_m[size_col] == hi_m[size_col]:
            continue
        if D.small(lo_m.n_items, lo_m.n_runs) or D.small(hi_m.n_items, hi_m.n_runs):
            cells.setdefault(D.label(b), [])
            continue
        s_hi, s_lo = D.per_item_std(hi_m["std"], hi_m.n_items), D.per_item_std(lo_m["std"], lo_m.n_items)
        cells.setdefault(D.label(b), []).append((s_hi, hi_m.n_runs, s_lo, lo_m.n_runs))
        sizes[D.label(b)] = D.min_int(g.n_items)
        f = D.factor(b)
        parts.append(
            f"{D.label(b)}: std {lo_m['std'] * f:.2f} ({lo_m.model}, {lo_m[size_col]:g}B) -> {hi_m['std'] * f:.2f} "
            f"({hi_m.model}, {hi_m[size_col]:g}B) ({D.min_int(g.n_items)} items, {D.min_int(g.n_runs)} runs)"
        )
    units = _ratio_units(cells, S.C3_MARGIN, "above", "2/3", sizes)
    parts += [f"{u.name}: per-item std ratio larger/smaller {u.value:.2f} [{u.lo:.2f}, {u.hi:.2f}]" for u in units]
    families = sorted(set(gap.model.map(paper.family)))
    yours = ("stand-in models of different families (" + ", ".join(families) + "): " if stand else "") + (
        D.listing(parts[::-1], 6) or "no benchmark with two sizes"
    )
    kw = D.one_value(units) | {"n_runs": D.min_int(gap.n_runs), "stand_in": stand, "n_items": D.min_int(gap.n_items)}
    if stand:
        why = "the models are stand-ins of different families; the claim needs one family at several sizes"
        return _verdict("C3", ptxt, yours, "not testable", why, **kw)
    if not units:
        return _verdict("C3", ptxt, yours, "not testable", "no benchmark has two sizes of one family", **kw)
    verdict, why = D.majority(units, "benchmarks")
    return _verdict("C3", ptxt, yours, verdict, why + ".", **kw)


# ------------------------------------------------------------------------------------------- C4
def alignment_lowers_std(gap: pd.DataFrame, method_col: str = "method", base: str | None = None) -> Verdict:
    """C4 on the alignment notebook's gap table (with ``method_col``): per benchmark of Sec. 4.2's four, each
    aligned method's per-item std over the ``base`` method's (named explicitly), geometric mean over methods,
    against 1; majority of benchmarks. Methods named "stand-in..." make it "not testable"."""
    D.need(gap, ["model", "benchmark", "std", "n_items", "n_runs"], "alignment_lowers_std")
    ptxt = S.paper_text("figure1")
    if method_col not in gap.columns or gap.empty:
        why = f"needs a {method_col!r} column naming each model's alignment"
        return _verdict("C4", ptxt, "no alignment methods in the table", "not testable", why)
    methods = list(dict.fromkeys(gap[method_col]))
    if base is None:
        return _verdict("C4", ptxt, f"methods {methods}", "not testable", "no base method named: pass base=<its method name>")
    if base not in methods:
        raise ValueError(f"base method {base!r} is not in the table's {method_col!r}: {methods}")
    if mixed := D.mixed_settings(gap):
        return _verdict("C4", ptxt, "several sampling settings", "not testable", mixed)
    stand = any(str(m).lower().startswith("stand-in") for m in methods)
    cells, sizes, parts = {}, {}, []
    for b, g in gap.groupby("benchmark", sort=False):
        ref = g[g[method_col] == base]
        if ref.empty:
            continue
        ref, f = ref.iloc[0], D.factor(b)
        for r in g[g[method_col] != base].itertuples():
            parts.append(
                f"{D.label(b)}: {getattr(r, method_col)} std {r.std * f:.2f} vs {base} {ref['std'] * f:.2f} ({r.n_items} items)"
            )
            if b in S.C4_SCOPE:
                cells.setdefault(D.label(b), [])
            if b in S.C4_SCOPE and not (D.small(r.n_items, r.n_runs) or D.small(ref.n_items, ref.n_runs)):
                pair = (D.per_item_std(r.std, r.n_items), r.n_runs, D.per_item_std(ref["std"], ref.n_items), ref.n_runs)
                cells.setdefault(D.label(b), []).append(pair)
                sizes[D.label(b)] = D.min_int(g.n_items)
    units = _ratio_units(cells, 1.0, "below", "1", sizes)
    parts += [f"{u.name}: per-item std ratio aligned/base {u.value:.2f} [{u.lo:.2f}, {u.hi:.2f}]" for u in units]
    yours = ("stand-in models, not an aligned family: " if stand else "") + (
        D.listing(parts[::-1], 6) or "no aligned method beside the base"
    )
    kw = D.one_value(units) | {"n_runs": D.min_int(gap.n_runs), "stand_in": stand, "n_items": D.min_int(gap.n_items)}
    if stand:
        why = "the methods are stand-ins (params' `methods`): the store has no aligned model"
        return _verdict("C4", ptxt, yours, "not testable", why, **kw)
    if not units:
        why = "needs the base and an aligned variant on AlpacaEval, MMLU-Redux, GSM8K or HumanEval (Sec. 4.2's benchmarks)"
        return _verdict("C4", ptxt, yours, "not testable", why, **kw)
    verdict, why = D.majority(units, "benchmarks")
    return _verdict("C4", ptxt, yours, verdict, why + ".", **kw)


# ------------------------------------------------------------------------------------------- C5
def _se_row(r) -> float:
    return D.se_of(r, "ci_low", "ci_high", ("se", "se_clustered"))


def high_temperature_hurts_reasoning(sweep: pd.DataFrame, hot: float = 1.5) -> Verdict:
    """C5 on a temperature sweep_table: per (reasoning, open-ended) benchmark pair, the drop from greedy to
    T = ``hot`` on the reasoning task minus that on the open-ended one (points, averaged over models), against
    the 'far more' margin of 10 points; majority of pairs."""
    D.need(sweep, ["model", "benchmark", "decoding", "temperature", "mean", "n_items"], "high_temperature_hurts_reasoning")
    ptxt = S.paper_text("figure2a")
    if mixed := D.mixed_settings(sweep, skip=("temperature",)):
        return _verdict("C5", ptxt, "several sampling settings", "not testable", mixed)
    drops = {}
    for (m, b), g in sweep.groupby(["model", "benchmark"], sort=False):
        gr = g[g.decoding == "greedy"]
        ht = g[(g.decoding != "greedy") & np.isclose(g.temperature.astype(float), hot)]
        if gr.empty or ht.empty:
            continue
        gr, ht, f = next(gr.itertuples()), next(ht.itertuples()), D.factor(b)
        n = min(int(gr.n_items), int(ht.n_items))
        drops[(m, b)] = ((gr.mean - ht.mean) * f, _se_row(gr) * f, _se_row(ht) * f, n)
    shown = [f"{m} on {D.label(b)}: greedy - T={hot:g} {d:+.1f} points ({n} items)" for (m, b), (d, _, _, n) in drops.items()]
    if not drops:
        why = f"needs T={hot:g} sampled beside greedy (T=0) in the sweep"
        return _verdict("C5", ptxt, f"no greedy + T={hot:g} pair in the sweep", "not testable", why)
    units = []
    for r in S.REASONING:
        for o in S.OPEN_ENDED:
            cells = [
                D.diff_cell(drops[(m, r)][0] - drops[(m, o)][0], *drops[(m, r)][1:3], *drops[(m, o)][1:3])
                for (m, b) in drops
                if b == r and (m, o) in drops and not (D.small(drops[(m, r)][3]) or D.small(drops[(m, o)][3]))
            ]
            if any(b == r for _, b in drops) and any(b == o for _, b in drops):
                v, lo, hi = D.pool(cells)
                st = D.state(lo, hi, S.C5_MARGIN, "above", f"+{S.C5_MARGIN:g} points", None if cells else "too small")
                n = D.min_int(drops[k][3] for k in drops if k[1] in (r, o))
                units.append(D.Unit(f"{D.label(r)} vs {D.label(o)}", v, lo, hi, st, "", n))
    if not units:
        have = ", ".join(sorted({b for _, b in drops}))
        why = f"needs GSM8K or HumanEval and an open-ended benchmark (AlpacaEval, Arena-Hard) for one model; the sweep has {have}"
        return _verdict("C5", ptxt, D.listing(shown), "not testable", why, n_items=D.min_int(n for *_, n in drops.values()))
    parts = [f"{u.name}: drop difference {u.value:+.1f} [{u.lo:+.1f}, {u.hi:+.1f}] points" for u in units]
    verdict, why = D.majority(units, "benchmark pairs")
    return _verdict("C5", ptxt, D.listing(parts + shown, 6), verdict, why + ".", **D.one_value(units))


# ------------------------------------------------------------------------------------------- C6
def default_repetition_penalty_is_near_best(sweep: pd.DataFrame, margin: float = S.C6_MARGIN, default: float = 1.0) -> Verdict:
    """C6 on a repetition_penalty sweep_table: per benchmark, the default penalty minus each other penalty
    (points, averaged over models and decodings; GSM8K's 0.9 and AlpacaEval's 1.2 not counted), against
    -``margin`` on both sides; majority of benchmarks."""
    D.need(
        sweep,
        ["model", "benchmark", "decoding", "repetition_penalty", "mean", "n_items"],
        "default_repetition_penalty_is_near_best",
    )
    ptxt = S.paper_text("figure2b")
    if mixed := D.mixed_settings(sweep, skip=("repetition_penalty",)):
        return _verdict("C6", ptxt, "several sampling settings", "not testable", mixed)
    per_b, notes, parts = {}, [], []
    for (_m, b, dec), g in sweep.groupby(["model", "benchmark", "decoding"], sort=False):
        rp, f = g.repetition_penalty.astype(float), D.factor(b)
        base = g[np.isclose(rp, default)]
        if base.empty:
            continue
        base = next(base.itertuples())
        for r in g[~np.isclose(rp, default)].itertuples():
            d = D.diff_cell((base.mean - r.mean) * f, _se_row(base) * f, _se_row(r) * f)
            if b in S.C6_EXCEPT and math.isclose(r.repetition_penalty, S.C6_EXCEPT[b]):
                notes.append(
                    f"{D.label(b)} {dec}: {r.repetition_penalty:g} - {default:.1f} = {-d[0]:+.1f} points (the paper's exception)"
                )
                continue
            if not D.small(min(base.n_items, r.n_items)):
                per_b.setdefault(b, {}).setdefault(float(r.repetition_penalty), []).append(d)
    units = []
    for b, rivals in per_b.items():
        pooled = {p: D.pool(c) for p, c in rivals.items()}
        zb = float(sps.norm.ppf(1 - 0.025 / len(pooled)))  # Bonferroni over the rivals, for "some rival beats it"
        wide = {p: (v, v - (v - lo) * zb / D.Z, v + (hi - v) * zb / D.Z) for p, (v, lo, hi) in pooled.items()}
        worst = min(pooled, key=lambda p: pooled[p][0])
        v, lo, hi = pooled[worst]
        if all(D.finite(x[1]) and x[1] > -margin for x in pooled.values()):
            st = "agree"
        elif any(D.finite(x[2]) and x[2] < -margin for x in wide.values()):
            st = "disagree"
        else:
            st = f"CI reaches -{margin:g} points" if D.finite(lo, hi) else "no CI"
        units.append(D.Unit(D.label(b), v, lo, hi, st, "", D.min_int(sweep[sweep.benchmark == b].n_items)))
        parts.append(
            f"{D.label(b)}: {default:.1f} minus the closest rival ({worst:g}) {v:+.1f} [{lo:+.1f}, {hi:+.1f}] points over {len(pooled)} rival(s)"
        )
    yours = D.listing(parts) + (f"; {'; '.join(notes)}" if notes else "")
    if not units:
        why = f"needs the default {default:.1f} and another penalty (besides the paper's exceptions) on one benchmark"
        return _verdict("C6", ptxt, yours or "no penalty beside the default", "not testable", why)
    verdict, why = D.majority(units, "benchmarks")
    return _verdict("C6", ptxt, yours, verdict, why + f" (margin {margin:g} points, ours).", **D.one_value(units))


# ------------------------------------------------------------------------------------------- C7
def greedy_is_shorter(lengths: pd.DataFrame) -> Verdict:
    """C7 on a stats.length_table: per sampled cell, its mean tokens minus its group's greedy mean tokens, normal
    interval, against 0; majority of cells. Tokens are the policy's own (the paper counts tiktoken cl100k tokens)."""
    D.need(lengths, ["model", "benchmark", "decoding", "mean_tokens", "se", "n_items"], "greedy_is_shorter")
    ptxt = S.paper_c7(list(lengths["benchmark"]) if len(lengths) else [])
    units = []
    for (m, b), g in lengths.groupby(["model", "benchmark"], sort=False):
        gr = g[g.decoding == "greedy"]
        if gr.empty:
            continue
        gr = next(gr.itertuples())
        for s in g[g.decoding != "greedy"].itertuples():
            v, lo, hi = D.diff_cell(s.mean_tokens - gr.mean_tokens, s.se, gr.se)
            n = min(s.n_items, gr.n_items)
            text = f"{m} on {D.label(b)}: sampled - greedy {v:+.0f} [{lo:+.0f}, {hi:+.0f}] tokens ({gr.mean_tokens:.0f} greedy; {int(n)} items)"
            units.append(D.Unit(f"{m} {b}", v, lo, hi, D.state(lo, hi, 0.0, "above", "0", D.small(n)), text, int(n)))
    if not units:
        why = "needs greedy and sampled outputs of one model on one benchmark"
        return _verdict("C7", ptxt, "no greedy + sampled lengths", "not testable", why)
    verdict, why = D.majority(units, "cells")
    return _verdict("C7", ptxt, D.listing([u.text for u in units]), verdict, why + ".", **D.one_value(units))
