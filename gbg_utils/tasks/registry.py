"""Every benchmark gbg knows, by name: one line per task. Adding a benchmark is one new module plus its line here."""

from __future__ import annotations

from .base import Task
from .gsm8k import GSM8K
from .humaneval import HumanEval
from .judged.alpaca_eval import AlpacaEval
from .judged.arena_hard import ArenaHard
from .judged.base import JudgedTask
from .judged.wildbench import WildBench
from .mixeval import MixEval, MixEvalHard
from .mmlu_redux import MMLURedux

# Judge-free: scored by their own rule (`Task.score`).
TASKS: dict[str, type[Task]] = {t.name: t for t in (GSM8K, HumanEval, MMLURedux, MixEval, MixEvalHard)}
# LLM-judged: scored by score.judge.judge_store.
JUDGED_TASKS: dict[str, type[JudgedTask]] = {t.name: t for t in (AlpacaEval, ArenaHard, WildBench)}
REGISTRY: dict[str, type[Task]] = {**TASKS, **JUDGED_TASKS}


def list_tasks() -> list[str]:
    return sorted(REGISTRY)


def get_task(name: str, protocol: str = "gbg") -> Task:
    """A fresh instance of the task called `name` under `protocol` ("gbg" or "paper"); ValueError, listing the
    known names, if either is unknown."""
    try:
        task = REGISTRY[name]()
    except KeyError:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(list_tasks())}") from None
    return task.use_protocol(protocol)


def get_judged_task(name: str, **kw) -> JudgedTask:
    """A fresh instance of the judged task called `name` (kw: e.g. WildBench's `file=`)."""
    try:
        return JUDGED_TASKS[name](**kw)
    except KeyError:
        raise ValueError(f"unknown judged task {name!r}; known: {', '.join(sorted(JUDGED_TASKS))}") from None
