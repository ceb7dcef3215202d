"""The judge-free benchmarks of Song et al. (2024), one small module each, behind one `Task` interface.

    >>> task = get_task("gsm8k")
    >>> items = task.load(limit=5)             # data: data_dir= / $GBG_DATA_DIR, package data, then the HF hub
    >>> messages = task.prompt(items[0])       # chat messages; the backend applies the model's template
    >>> task.score("... So the answer is 18.", items[0])
    Score(score=1.0, extracted='18', reason=None)
    >>> list_tasks()
    ['gsm8k', 'humaneval', 'mixeval', 'mixeval_hard', 'mmlu_redux']
"""
from __future__ import annotations

from .base import Item, Score, Task
from .data import TaskDataError
from .gsm8k import GSM8K
from .humaneval import HumanEval
from .mixeval import MixEval, MixEvalHard
from .mmlu_redux import MMLURedux

TASKS: dict[str, type[Task]] = {t.name: t for t in (GSM8K, HumanEval, MMLURedux, MixEval, MixEvalHard)}


def _registry() -> dict[str, type[Task]]:
    """The judge-free tasks plus the LLM-judged ones (gbg_utils.tasks.judged; imported late: it builds on this package)."""
    from .judged import JUDGED_TASKS

    return {**TASKS, **JUDGED_TASKS}


def list_tasks() -> list[str]:
    return sorted(_registry())


def get_task(name: str) -> Task:
    """A fresh instance of the task called `name` (ValueError, listing the known names, if unknown)."""
    try:
        return _registry()[name]()
    except KeyError:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(list_tasks())}") from None


__all__ = ["Item", "Score", "Task", "TaskDataError", "TASKS", "get_task", "list_tasks"]
