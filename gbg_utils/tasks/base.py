"""The task interface every benchmark module implements.

A task loads its items, turns one into chat messages (the generation backend applies the model's chat
template), extracts the answer from a completion and scores it:

    >>> task = get_task("gsm8k")
    >>> item = task.load()[0]
    >>> task.score("... so she makes 9 * 2 = 18 dollars. So the answer is 18.", item)
    Score(score=1.0, extracted='18', reason=None)

`version` names the prompt *and* the scoring rule: bump it when either changes, and the store keeps
the old scores next to the new ones (scoring.score_store re-scores, it never regenerates).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..sandbox import SandboxError
from .data import TaskDataError
from .subsets import check_limit, draw

ENVIRONMENT_ERRORS = (SandboxError, TaskDataError)


@dataclass(frozen=True)
class Item:
    id: str  # stable and unique within the benchmark: "HumanEval/0", "17" (GSM8K line), "anatomy/17"
    data: dict = field(compare=False)  # whatever the prompt and the scorer need
    group: str | None = None  # cluster for clustered standard errors (MMLU subject, MixEval source benchmark)
    # what a `limit` draw stratifies by (tasks/subsets.py); None: the group. MixEval: "<format>/<source benchmark>"
    stratum: str | None = field(default=None, compare=False)

    def __post_init__(self):
        if self.stratum is None and self.group is not None:
            object.__setattr__(self, "stratum", self.group)


@dataclass(frozen=True)
class Score:
    score: float  # 0.0 or 1.0 for these benchmarks
    extracted: str | None  # the extracted answer, normalised; None if nothing could be parsed
    reason: str | None = None  # why it scored 0 without a wrong answer: "no number found", "timeout", "AssertionError"


class Task:
    name: str = ""
    version: str = "1"
    description: str = ""
    default_max_new_tokens: int = 512
    paper_n_samples: int = 16  # samples per item in Song et al. 2024 (their README's table)
    # range of a per-sample score: within 0..1 it is shown in percent, otherwise in its own points
    score_range: tuple[float, float] = (0.0, 1.0)
    stop: tuple[str, ...] = ()

    def load(self, data_dir: str | Path | None = None, limit: int | None = None, subset_seed: int = 0) -> list[Item]:
        """The items in the benchmark's fixed order; `limit`: a seeded draw of that many, stratified by
        `Item.stratum` and still in that order (tasks/subsets.py; `subset_seed` picks the draw). None: all."""
        check_limit(limit)
        return draw(self.load_all(data_dir), limit, subset_seed)

    def load_all(self, data_dir: str | Path | None = None) -> list[Item]:
        """Every item, in the benchmark's fixed order (what each benchmark implements; callers use `load`)."""
        raise NotImplementedError

    def prompt(self, item: Item) -> list[dict]:
        """Chat messages, e.g. [{"role": "user", "content": ...}]."""
        raise NotImplementedError

    def extract(self, completion: str, item: Item) -> str | None:
        raise NotImplementedError

    def score(self, completion: str, item: Item) -> Score:
        raise NotImplementedError

    def score_many(self, pairs: list[tuple[Item, str]], workers: int = 1) -> list[Score]:
        """Score (item, completion) pairs in order; nothing a model writes may raise here."""
        return [self.safe_score(c, it) for it, c in pairs]

    def safe_score(self, completion: str, item: Item) -> Score:
        """`score`, but a scorer bug costs one sample (score 0 with the reason), not the run.
        Environment failures (the sandbox can't run, data missing) still raise: they are no one's score."""
        try:
            return self.score(completion if isinstance(completion, str) else "", item)
        except ENVIRONMENT_ERRORS:
            raise
        except Exception as e:
            return Score(0.0, None, f"scorer error: {type(e).__name__}: {e}"[:300])

    def __repr__(self) -> str:
        return f"<Task {self.name} v{self.version}: {self.description}>"


def chat(content: str) -> list[dict]:
    return [{"role": "user", "content": content}]
