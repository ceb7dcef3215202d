"""The paper's findings checked on the user's store: its published numbers (`paper`) and one test per claim (`claims`).

    >>> from gbg_utils import findings
    >>> findings.paper.table("table2")                                    # the paper's Table 2, with paper.source("table2")
    >>> v = findings.greedy_beats_sampling(stats.gap_table(df))           # a Verdict: supported / contradicted / ...
    >>> findings.save_verdicts([v], P.output_path, "gap")                 # verdicts.json, the report's scorecard reads it

A layer between report and score: it imports stats' tables' conventions and paths, nothing above it.
"""

from __future__ import annotations

from . import paper
from .claims import (
    CLAIMS,
    MIN_ITEMS,
    NOTEBOOK_OF,
    VERDICT_FILE,
    VERDICTS,
    Verdict,
    alignment_lowers_std,
    best_of_n_beats_greedy,
    constrained_answers_are_stable,
    default_repetition_penalty_is_near_best,
    greedy_beats_sampling,
    greedy_is_shorter,
    high_temperature_hurts_reasoning,
    larger_model_not_less_variable,
    load_verdicts,
    save_verdicts,
    std_ratio_ci,
    verdict_table,
)

__all__ = [
    "CLAIMS",
    "MIN_ITEMS",
    "NOTEBOOK_OF",
    "VERDICT_FILE",
    "VERDICTS",
    "Verdict",
    "alignment_lowers_std",
    "best_of_n_beats_greedy",
    "constrained_answers_are_stable",
    "default_repetition_penalty_is_near_best",
    "greedy_beats_sampling",
    "greedy_is_shorter",
    "high_temperature_hurts_reasoning",
    "larger_model_not_less_variable",
    "load_verdicts",
    "paper",
    "save_verdicts",
    "std_ratio_ci",
    "verdict_table",
]
