"""The benchmarks of Song et al. (2024), one small module each, behind one `Task` interface.

    >>> task = get_task("gsm8k")
    >>> items = task.load()                    # data: data_dir= / $GBG_DATA_DIR, package data, then the HF hub
    >>> pilot = task.load(limit=50)            # 50 of them: a seeded draw, stratified by Item.stratum (subsets.py)
    >>> messages = task.prompt(items[0])       # chat messages; the backend applies the model's template
    >>> task.score("... So the answer is 18.", items[0])
    Score(score=1.0, extracted='18', reason=None)
    >>> list_tasks()
    ['alpaca_eval', 'arena_hard', 'gsm8k', 'humaneval', 'mixeval', 'mixeval_hard', 'mmlu_redux', 'wildbench']

Judge-free tasks (gsm8k.py, humaneval.py, mmlu_redux.py, mixeval.py) score a completion by their own rule;
the judged ones (judged/) are scored by an LLM judge (score/judge.py). The registry is registry.py.
"""

from __future__ import annotations

from .base import Item, Score, Task
from .data import TaskDataError
from .registry import JUDGED_TASKS, REGISTRY, TASKS, get_judged_task, get_task, list_tasks

__all__ = [
    "Item",
    "Score",
    "Task",
    "TaskDataError",
    "TASKS",
    "JUDGED_TASKS",
    "REGISTRY",
    "get_task",
    "get_judged_task",
    "list_tasks",
]
