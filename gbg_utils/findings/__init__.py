"""The paper's findings checked on the user's store: its published numbers (`paper`) and one test per claim (`claims`,
`claim_best_of_n`), decided by `decide`'s rules (each claim's written rule: `sentences.RULES`); `printed` runs
the same rules on the paper's own printed numbers (`gbg findings --paper`).

    >>> from gbg_utils import findings
    >>> findings.paper.table("table2")                                    # the paper's Table 2, with paper.source("table2")
    >>> v = findings.greedy_beats_sampling(stats.gap_table(df))           # a Verdict: supported / contradicted / ...
    >>> findings.save_verdicts([v], P.output_path, "gap")                 # verdicts.json, the report's scorecard reads it

A layer between report and score: it imports stats' tables' conventions and paths, nothing above it.
"""

from __future__ import annotations

from . import paper
from .claim_best_of_n import best_of_n_beats_greedy
from .claims import (
    alignment_lowers_std,
    constrained_answers_are_stable,
    default_repetition_penalty_is_near_best,
    greedy_beats_sampling,
    greedy_is_shorter,
    high_temperature_hurts_reasoning,
    larger_model_not_less_variable,
)
from .decide import MIN_ITEMS, std_ratio_ci
from .printed import paper_scorecard
from .record import CLAIMS, NOTEBOOK_OF, VERDICT_FILE, VERDICTS, Verdict, load_verdicts, save_verdicts, verdict_table
from .sentences import RULES

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
    "paper_scorecard",
    "RULES",
    "save_verdicts",
    "std_ratio_ci",
    "verdict_table",
]
