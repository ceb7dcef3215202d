"""The sentences of the scorecard: each claim's decision rule (`RULES`, shown beside its verdict) and what the
paper's own numbers say of each claim (`paper_c1` ...), computed from paper_numbers.json, never typed in.

Where each rule's scope and exceptions come from (arXiv:2407.10457v1; docs/scorecard.md has the long form):
C1 Sec. 3 and Table 2 ("greedy ... outperforms sampling ... except for AlpacaEval"); C2 Sec. 3 and Table 2
(MMLU, MixEval stable; GSM8K, HumanEval not); C3 Sec. 4.1, Tables 2 (Yi-1.5 6B/9B/34B) and 4 (Qwen2 0.5B-7B);
C4 Sec. 4.2 and Figure 1 ("In several tasks, including AlpacaEval, MMLU, GSM8K, and HumanEval"); C5 Sec. 4.3
and Figure 2(a); C6 Sec. 4.4 and Figure 2(b) (GSM8K best at 0.9, AlpacaEval marginally better at 1.2); C7
Table 5; C8 Sec. 5 and Figure 4 (its GPT-4-Turbo lines are GPT-4-Turbo's sampling means of Table 2).
"""

from __future__ import annotations

from . import paper

CONSTRAINED, REASONING, OPEN_ENDED = ("mmlu_redux", "mixeval"), ("gsm8k", "humaneval"), ("alpaca_eval", "arena_hard")
C1_EXCEPT = ("alpaca_eval",)  # Sec. 3 / Table 2: sampling is ahead on AlpacaEval
C3_MARGIN = 2 / 3  # the larger model "less variable" only when its per-item std is below 2/3 of the smaller's
C4_SCOPE = ("alpaca_eval", "mmlu_redux", "gsm8k", "humaneval")  # Sec. 4.2's list
C5_MARGIN = 10.0  # points: "far more"
C6_MARGIN = 2.0  # points: "near-best"
C6_EXCEPT = {"gsm8k": 0.9, "alpaca_eval": 1.2}  # Sec. 4.4: the penalties the paper names as better there
C8C_SCOPE = ("mmlu_redux", "gsm8k", "humaneval")  # Figure 4: oracle@N above GPT-4-Turbo's line; not AlpacaEval (41.2 < 50.1)

_ERR = "Error control: supported when more than half of the {u} in scope agree at 95%, contradicted when more than half disagree (all {u} counted, resolved or not), else inconclusive."
RULES = {
    "C1": "Unit: benchmark, AlpacaEval excluded (the paper's stated exception, Sec. 3 / Table 2), at least two. "
    "Per benchmark: greedy - sampling mean in points, averaged over models (normal interval from each cell's 95% CI). "
    "Effect: > 0 (the paper states no margin). " + _ERR.format(u="benchmarks"),
    "C2": "Unit: pair of a constrained (MMLU-Redux, MixEval) and an open benchmark (GSM8K, HumanEval) (Sec. 3 / Table 2). "
    "Per pair: the ratio of per-item stds (run std x sqrt(n_items): what independent sampling makes of the item count), "
    "geometric mean over the models that ran both; interval on the mean log ratio, Var(log s) = 1/(2(N-1)). "
    "A std of 0 is a ratio of 0 (evidence). Effect: ratio < 1. " + _ERR.format(u="pairs"),
    "C3": "Unit: benchmark. Per benchmark: largest over smallest model of one family, ratio of per-item stds, geometric "
    "mean over families; interval on the mean log ratio. Effect (non-inferiority, margin ours, the paper gives none): "
    f"agree when the ratio is above {C3_MARGIN:.2f} (the larger model's run variance not cut below 4/9), disagree when "
    "below it. Models of different families are stand-ins. " + _ERR.format(u="benchmarks"),
    "C4": "Unit: benchmark among AlpacaEval, MMLU-Redux, GSM8K, HumanEval (Sec. 4.2's list; others shown, not counted). "
    "Per benchmark: aligned over base per-item std ratio, geometric mean over the aligned methods, against an explicit "
    "base (refused without one). Effect: ratio < 1. " + _ERR.format(u="benchmarks"),
    "C5": "Unit: pair of GSM8K or HumanEval and AlpacaEval or Arena-Hard (Sec. 4.3 / Figure 2(a)). Per pair: "
    "(greedy - T=1.5) drop on the reasoning task minus the drop on the open-ended one, points, averaged over models. "
    f"Effect ('far more', margin ours): > {C5_MARGIN:g} points; the same bar on both sides. " + _ERR.format(u="pairs"),
    "C6": "Unit: benchmark. Per benchmark: the default penalty 1.0 minus each other penalty, points, averaged over models; "
    "not counted: 0.9 on GSM8K and 1.2 on AlpacaEval (Sec. 4.4 / Figure 2(b)). Effect ('near-best', margin ours): "
    f"agree when every rival's 95% interval lies above -{C6_MARGIN:g} points; disagree when some rival's interval, "
    f"Bonferroni-widened over the rivals, lies below -{C6_MARGIN:g}. " + _ERR.format(u="benchmarks"),
    "C7": "Unit: model x benchmark cell (Table 5's cells). Per cell: sampled - greedy mean tokens, 95% interval. "
    "Effect: > 0. " + _ERR.format(u="cells") + " From printed numbers (Table 5 prints no spread) each cell counts by its "
    "sign, and a sign test over the cells is reported beside.",
    "C8": "Three parts, unit: benchmark, models averaged, each the paired 95% interval of a difference over the same "
    "items: (a) oracle@N - greedy; (b) each reward model's RM@N - greedy; (c) oracle@N - a stronger model's sampling "
    "mean (Figure 4's GPT-4-Turbo line is its sampling mean), on MMLU-Redux, GSM8K, HumanEval only (Figure 4: not "
    "AlpacaEval, 41.2 < 50.1). Effect: > 0. Each part: majority of its benchmarks. C8: supported when (a) and (c) "
    "are and (b) is not contradicted; contradicted when any part is.",
}


def bench_of(benchmarks, table_name: str) -> list[str]:
    """The user's benchmarks (in order, once each) that a paper table has."""
    have = set(paper.table(table_name).benchmark)
    return [b for b in dict.fromkeys(benchmarks) if b in have]


def paper_c1(benchmarks) -> str:
    t = paper.table("table2").assign(gap=lambda d: (d.greedy - d["sample"]).round(1))
    rest, alp = t[t.benchmark != "alpaca_eval"], t[t.benchmark == "alpaca_eval"]
    s = (
        f"{paper.cite('table2')}: greedy > sampling mean in {int((rest.gap > 0).sum())} of {len(rest)} model x benchmark cells "
        f"outside AlpacaEval; on AlpacaEval the sampling mean is higher for {int((alp.gap < 0).sum())} of {len(alp)} models"
    )
    for b in bench_of(benchmarks, "table2"):
        g = t[t.benchmark == b]
        s += f"; {paper.benchmark_label(b)}: gap {g.gap.min():+.1f} to {g.gap.max():+.1f} over {len(g)} models"
    return s


def paper_c2() -> str:
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


def paper_c3(benchmarks) -> str:
    t = paper.table("table4").sort_values("size_b")
    bs = bench_of(benchmarks, "table4") or list(dict.fromkeys(t.benchmark))
    parts = [
        f"{paper.benchmark_label(b) if b != 'mmlu_redux' else 'MMLU'} "
        + " -> ".join(f"{s:.2f}" for s in t[t.benchmark == b]["std"])
        for b in bs
    ]
    sizes = "/".join(f"{s:g}B" for s in dict.fromkeys(t.size_b))
    return f"{paper.cite('table4')}, std of Qwen2-Instruct {sizes}: {'; '.join(parts)} (Sec. 4.1: larger models show no lower variance)"


def paper_text(key: str) -> str:
    """A figure that prints no values: what the paper's text says of it (the data file's figures_without_numbers)."""
    label = {"figure1": "Figure 1", "figure2a": "Figure 2(a)", "figure2b": "Figure 2(b)"}[key]
    return f"arXiv:2407.10457v1, {label}: {paper.load()['figures_without_numbers'][key]}"


def paper_c7(benchmarks) -> str:
    t = paper.table("table5")
    s = f"{paper.cite('table5')}: greedy shorter than the sampling mean in {int((t.len_greedy < t.len_sample).sum())} of {len(t)} model x benchmark cells"
    for b in bench_of(benchmarks, "table5"):
        g = t[t.benchmark == b]
        s += f"; {paper.benchmark_label(b)}: {int((g.len_greedy < g.len_sample).sum())} of {len(g)}"
    bs = set(t.benchmark)
    lacking = [paper.benchmark_label(b) for b in dict.fromkeys(benchmarks) if b not in bs]
    return s + (f" (Table 5 has no {', '.join(lacking)})" if lacking else "")


def paper_c8(benchmarks) -> str:
    f4, t2, ref = paper.table("figure4"), paper.table("table2"), paper.reference_lines()
    bs = bench_of(benchmarks, "figure4") or list(dict.fromkeys(f4.benchmark))
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
