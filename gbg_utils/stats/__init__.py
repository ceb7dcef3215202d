"""Statistics over scored samples: the paper's numbers, exact and vectorised, with the uncertainty it left out.

Input is the tidy table, one row per scored completion (model, benchmark, item_id, group, config_key,
greedy, temperature, top_p, top_k, repetition_penalty, sample_idx, score, extracted, n_tokens, optional
selector columns such as ``reward``).

    >>> gap = gap_table(df)                                   # paper Table 2, plus SEs, CIs and a paired test
    >>> curves = best_of_k_curves(df, selectors=["reward"])   # oracle / random / majority / reward, k = 1..N

Conventions
-----------
* A *cell* is one ``by`` group (default model, benchmark) times one decoding config (``CONFIG_COLS``); the
  greedy rows of a ``by`` group are its greedy cell. Several greedy configs in one ``by`` group are an error:
  add the column that tells them apart (e.g. ``repetition_penalty``) to ``by``.
* Run j is the j-th sample (by ``sample_idx``) of every item; run scores are the column means of the
  items x N score matrix.
* Ragged cells (items with unequal sample counts) never pass silently: ``ragged="truncate"`` (default) keeps
  the first N_min samples of every item by ``sample_idx`` and warns, ``ragged="raise"`` raises. Duplicate
  (item_id, sample_idx) rows in a cell raise. Paired statistics use the items greedy and sampling share and
  warn when those differ.
* "Correct" (pass@k, McNemar) means ``score >= threshold`` (default 1).
* A missing extracted answer (None/NaN) is its own distinct answer: failures never vote together (maj@k), and
  they count as distinct answers in the spread (`answer_stats`, `per_item`: n_answers, entropy, agreement).
* A missing score (NaN: e.g. a judgment that failed or could not be parsed) is an unscored sample, not a 0:
  gap/config/run/rank tables average over the scored samples (an item over its scored samples, a run over its
  scored items), leave out items with none (or an unscored greedy) and report the count as ``n_unscored``.
* SE = sd(ddof=1)/sqrt(n_items). The std of the N run scores takes ``ddof`` (default 1, the sample std);
  the paper's analysis scripts used numpy's default ``np.std`` (ddof=0): pass ``ddof=0`` to reproduce them.
* With item groups (``group``: MMLU subject, MixEval source) SEs, CIs and p-values are clustered: an item
  without a group is its own cluster.

Modules: cells (the items x N matrices), uncertainty (SEs, CIs, tests), estimators (pass@k, best-of-k,
maj@k, answer spread), tables (gap/config/sweep/best-of-N tables), rankings, synthetic (test data).
"""

from __future__ import annotations

from .cells import BY, CONFIG_COLS, PARAM_COLS, Cell, cells, score_matrix
from .estimators import answer_stats, best_of_k, maj_at_k, pass_at_k, rank_weights
from .power import (
    independence_check,
    independence_check_summary,
    items_needed,
    min_detectable_gap,
    sample_size_table,
    variance_components,
)
from .rankings import TIE_TOL, rank_flips, rank_table
from .synthetic import synthetic_table
from .tables import (
    COLUMN_OF,
    METHODS,
    best_of_k_curves,
    best_of_k_table,
    config_table,
    default_selectors,
    gap_table,
    greedy_scores,
    length_table,
    per_item,
    run_scores,
    selector_column,
    sweep_table,
)
from .uncertainty import bootstrap_ci, clustered_se, mcnemar, n_clusters, paired_test

__all__ = [
    "BY",
    "CONFIG_COLS",
    "Cell",
    "PARAM_COLS",
    "cells",
    "score_matrix",
    "bootstrap_ci",
    "clustered_se",
    "mcnemar",
    "n_clusters",
    "paired_test",
    "answer_stats",
    "best_of_k",
    "maj_at_k",
    "pass_at_k",
    "rank_weights",
    "COLUMN_OF",
    "METHODS",
    "best_of_k_curves",
    "best_of_k_table",
    "config_table",
    "default_selectors",
    "gap_table",
    "greedy_scores",
    "length_table",
    "per_item",
    "run_scores",
    "selector_column",
    "sweep_table",
    "TIE_TOL",
    "rank_flips",
    "rank_table",
    "synthetic_table",
    "independence_check",
    "independence_check_summary",
    "items_needed",
    "min_detectable_gap",
    "sample_size_table",
    "variance_components",
]
