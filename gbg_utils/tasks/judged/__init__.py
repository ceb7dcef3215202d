"""The judged benchmarks of Song et al. (2024): AlpacaEval 2, Arena-Hard v0.1, WildBench v2.

Same `Task` interface as the judge-free ones (load / prompt / version / default_max_new_tokens / ...), so the
runner generates their samples like any other; scoring goes through an LLM judge instead of `score`:

    >>> from gbg_utils.score.judge import Judge, judge_store, judged_frame
    >>> task = get_judged_task("alpaca_eval")
    >>> run_generation(store, "smollm2-135m", task, n_samples=16, temperature=1.0)
    >>> print(judge_store(store, task, Judge("gpt-4-1106-preview")))
    >>> judged_frame(store, "alpaca_eval", "gpt-4-1106-preview")     # the tidy table, this judge only
"""
from __future__ import annotations

from ...score.judge import JudgedTask
from .alpaca_eval import AlpacaEval
from .arena_hard import ArenaHard
from .wildbench import WildBench

JUDGED_TASKS: dict[str, type[JudgedTask]] = {t.name: t for t in (AlpacaEval, ArenaHard, WildBench)}


def get_judged_task(name: str, **kw) -> JudgedTask:
    """A fresh instance of the judged task called `name` (kw: e.g. WildBench's `file=`)."""
    try:
        return JUDGED_TASKS[name](**kw)
    except KeyError:
        raise ValueError(f"unknown judged task {name!r}; known: {', '.join(sorted(JUDGED_TASKS))}") from None


__all__ = ["JUDGED_TASKS", "AlpacaEval", "ArenaHard", "WildBench", "get_judged_task"]
