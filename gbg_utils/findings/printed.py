"""The scorecard on the paper's own printed numbers (`gbg findings --paper`): the same claim functions, the same
rules, fed tables built from paper_numbers.json. It must reach the paper's own conclusions.

The paper prints no per-item data, so the uncertainty is what its numbers imply, and each verdict says how:

* a score m (0-1) over n items (Table 1's counts): an item-level SE of at most sqrt(m(1-m)/n), the largest any
  item scores in [0, 1] with mean m allow; a difference of two scores on the same items takes both SEs as
  independent (conservative: paired scores covary positively);
* a run std over N runs (Table 2's N; Table 4 prints none, so Table 1's N per benchmark): Var(log s) = 1/(2(N-1)),
  with the paper's numpy std (ddof 0) put on ddof 1;
* Table 5's lengths print no spread: each cell counts by its sign;
* Figures 1 and 2 print no values: C4, C5 and C6 are "not testable from printed numbers".
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
from scipy import stats as sps

from . import paper
from .claim_best_of_n import best_of_n_beats_greedy
from .claims import constrained_answers_are_stable, greedy_beats_sampling, greedy_is_shorter, larger_model_not_less_variable
from .decide import Z
from .record import CLAIMS, NOTEBOOK_OF, Verdict
from .sentences import RULES, paper_text

SCORE_SE = "item-level SE bound sqrt(m(1-m)/n) per printed score (Table 1's n), differences as independent"
STD_SE = "Var(log std) = 1/(2(N-1)) over the printed N runs"


def _n(b: str) -> int:
    return int(paper.benchmark_info(b)["n_items"])


def _bound_se(m, n) -> np.ndarray:
    m = np.clip(np.asarray(m, float), 0, 1)
    return np.sqrt(m * (1 - m) / n)


def gap_from_table2() -> pd.DataFrame:
    """Table 2 as a stats.gap_table (0-1 scores), with the intervals its printed numbers imply."""
    t = paper.table("table2")
    n = t.benchmark.map(_n)
    g, m = t.greedy / 100, t["sample"] / 100
    se = np.sqrt(_bound_se(g, n) ** 2 + _bound_se(m, n) ** 2)
    return pd.DataFrame(
        {
            "model": t.model,
            "benchmark": t.benchmark,
            "n_items": n,
            "n_runs": t.n_runs,
            "greedy": g,
            "mean": m,
            "gap": g - m,
            "gap_ci_low": g - m - Z * se,
            "gap_ci_high": g - m + Z * se,
            "std": t["std"] / 100 * np.sqrt(t.n_runs / (t.n_runs - 1)),
            "best": m + t.delta / 200,  # only best - worst is printed
            "worst": m - t.delta / 200,
            "temperature": 1.0,
        }
    )


def scaling_from_tables_2_and_4() -> pd.DataFrame:
    """Table 4's Qwen2 sizes and Table 2's Yi-1.5 sizes (6B/9B/34B, read from the names) as one gap table."""
    t4 = paper.table("table4")
    n_runs = t4.benchmark.map(lambda b: paper.benchmark_info(b)["n_samples"])  # not printed in Table 4: Table 1's
    q = pd.DataFrame(
        {"model": t4.model, "benchmark": t4.benchmark, "size_b": t4.size_b, "n_items": t4.benchmark.map(_n), "n_runs": n_runs}
    ).assign(std=t4["std"] / 100 * np.sqrt(n_runs / (n_runs - 1)))
    t2 = gap_from_table2()
    yi = t2[t2.model.str.startswith("Yi-1.5")].copy()
    yi["size_b"] = yi.model.str.extract(r"-(\d+)B-", expand=False).astype(float)
    return pd.concat([q, yi[q.columns]], ignore_index=True).assign(temperature=1.0)


def lengths_from_table5() -> pd.DataFrame:
    """Table 5 as a stats.length_table: no spread printed, so se 0 (each cell counts by its sign)."""
    t = paper.table("table5")
    rows = [
        (r.model, r.benchmark, dec, val, 0.0, _n(r.benchmark))
        for r in t.itertuples()
        for dec, val in (("greedy", r.len_greedy), ("sampled", r.len_sample))
    ]
    return pd.DataFrame(rows, columns=["model", "benchmark", "decoding", "mean_tokens", "se", "n_items"])


def curves_from_figure4() -> tuple[pd.DataFrame, dict]:
    """Figure 4's endpoints as a best_of_k_table (with paired gain intervals from the bound), and GPT-4-Turbo's
    sampling means (its reference lines) per benchmark."""
    f4, t2 = paper.table("figure4"), paper.table("table2")
    greedy = t2.set_index(["model", "benchmark"]).greedy / 100
    rows = []
    for r in f4.itertuples():
        n, v, g = _n(r.benchmark), r.value / 100, greedy[(r.model, r.benchmark)]
        se, se_gain = float(_bound_se(v, n)), float(np.sqrt(_bound_se(v, n) ** 2 + _bound_se(g, n) ** 2))
        name = "oracle" if r.selector == "oracle" else f"reward:{r.selector}"
        rows.append(
            (r.model, r.benchmark, name, int(r.n), v, v - Z * se, v + Z * se, g, v - g - Z * se_gain, v - g + Z * se_gain, n)
        )
    cols = [
        "model",
        "benchmark",
        "selector",
        "k",
        "value",
        "ci_low",
        "ci_high",
        "greedy",
        "gain_ci_low",
        "gain_ci_high",
        "n_items",
    ]
    ref = {r.benchmark: r.value / 100 for r in paper.reference_lines().itertuples()}
    return pd.DataFrame(rows, columns=cols), ref


def _sign_p(lengths: pd.DataFrame) -> str:
    w = lengths.pivot_table(index=["model", "benchmark"], columns="decoding", values="mean_tokens")
    g, b = int((w.sampled > w.greedy).sum()), int((w.sampled < w.greedy).sum())
    return f"two-sided sign test over the cells: {g} vs {b}, p = {sps.binomtest(g, g + b, 0.5).pvalue:.2g}"


def _how(v: Verdict, how: str) -> Verdict:
    return dataclasses.replace(v, notebook="paper", reason=f"{v.reason} From printed numbers: {how}.")


def paper_scorecard() -> list[Verdict]:
    """The eight claims on the paper's printed numbers, in claim order."""
    gap, lengths = gap_from_table2(), lengths_from_table5()
    curves, gpt4 = curves_from_figure4()
    out = [
        _how(greedy_beats_sampling(gap), f"Table 2, {SCORE_SE}"),
        _how(constrained_answers_are_stable(gap), f"Table 2, {STD_SE}"),
        _how(larger_model_not_less_variable(scaling_from_tables_2_and_4()), f"Tables 2 (Yi-1.5) and 4 (Qwen2), {STD_SE}"),
    ]
    for cid, fig, name in (("C4", "figure1", "Figure 1"), ("C5", "figure2a", "Figure 2(a)"), ("C6", "figure2b", "Figure 2(b)")):
        why = f"not testable from printed numbers: {name} prints no values"
        out.append(Verdict(cid, CLAIMS[cid], paper_text(fig), "-", "not testable", why, notebook="paper", rule=RULES[cid]))
    out.append(_how(greedy_is_shorter(lengths), f"Table 5 prints no spread, so each cell counts by its sign; {_sign_p(lengths)}"))
    c8 = best_of_n_beats_greedy(curves, reference=gpt4, reference_label="GPT-4-Turbo's sampling mean")
    out.append(_how(c8, f"Figure 4's endpoints and Table 2's greedy, {SCORE_SE}; GPT-4-Turbo's line taken as printed"))
    assert [v.claim_id for v in out] == list(NOTEBOOK_OF)
    return out


def render(verdicts: list[Verdict], as_json: bool = False) -> str:
    """The scorecard as text (claim, verdict, why, rule), or as JSON (a list of Verdict dicts)."""
    if as_json:
        return json.dumps([v.to_dict() for v in verdicts], indent=2)
    lines = [
        f"{paper.load()['paper']['title']} (arXiv:{paper.load()['paper']['arxiv']}v1): the claims on its own printed numbers",
        "",
    ]
    for v in verdicts:
        lines += [f"{v.claim_id} {v.verdict.upper()}: {v.claim}", f"   why:  {v.reason}", f"   rule: {v.rule}", ""]
    return "\n".join(lines)


__all__ = ["paper_scorecard", "render"]
