"""The task interface every benchmark module implements.

A task loads its items, turns one into chat messages (the generation backend applies the model's chat
template), extracts the answer from a completion and scores it:

    >>> task = get_task("gsm8k")
    >>> item = task.load()[0]
    >>> task.score("... so she makes 9 * 2 = 18 dollars. So the answer is 18.", item)
    Score(score=1.0, extracted='18', reason=None)

`version` names the prompt *and* the scoring rule: bump it when either changes, and the store keeps
the old scores next to the new ones (scoring.score_store re-scores, it never regenerates).

Protocols: a task measures under a named protocol (`get_task("gsm8k", protocol="paper")`). ``gbg`` is gbg's
own prompt and answer rule; ``paper`` follows the harness Song et al. (2024) ran, as far as its published code
allows (`Protocol.harness` cites repo, file and commit). A protocol sets the prompt, the stop strings, the
length limit and the answer rule, and its own scorer version (``paper-1``), so the two never mix in a store.
Where only the answer rule differs, `rule_variants()` scores the other rule on the same completions.
"""

from __future__ import annotations

import copy
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


PROTOCOLS = ("gbg", "paper")


@dataclass(frozen=True)
class Protocol:
    """How a task prompts and scores under one protocol; None keeps the task's class default."""

    name: str
    version: str | None  # the scorer version under this protocol (part of every stored score's identity); None: the task's own
    harness: str  # whose harness it follows: repo, file and commit, or "gbg"
    prompt: str  # one line: what the model receives
    rule: str  # one line: how an answer is read and scored
    differs: str = ""  # what still differs from the paper's harness, or "" where nothing known does
    stop: tuple[str, ...] | None = None
    max_new_tokens: int | None = None


@dataclass(frozen=True)
class PrefilledChat:
    """Chat messages whose assistant turn already starts with `prefill`: open-instruct's GSM8K prompt
    (``prompt = template(messages) + " Answer:"``, eval/gsm/run_eval.py). The backend renders the messages with
    the model's chat template (assistant header included), appends `prefill` after a space unless the rendered
    text ends in whitespace (open-instruct's rule), and tokenises the text the way the paper's harness did:
    vLLM's `LLM.generate(str)` with the tokenizer's own special tokens. An empty `prefill` appends nothing: the
    rendered template tokenised with special tokens, as ZeroEval (vLLM) and MixEval (HF `tokenizer(str)`) did."""

    messages: tuple[tuple[str, str], ...]  # (role, content) pairs: hashable and JSON-able
    prefill: str

    @classmethod
    def of(cls, messages: list[dict], prefill: str) -> PrefilledChat:
        return cls(tuple((m["role"], m["content"]) for m in messages), prefill)

    def message_list(self) -> list[dict]:
        return [{"role": r, "content": c} for r, c in self.messages]

    def as_sent(self) -> dict:
        """What an HTTP backend sends and hashes: JSON."""
        return {"messages": self.message_list(), "prefill": self.prefill}


class Task:
    name: str = ""
    version: str = "1"
    description: str = ""
    default_max_new_tokens: int = 512
    paper_n_samples: int = 16  # samples per item in Song et al. 2024 (their README's table)
    # range of a per-sample score: within 0..1 it is shown in percent, otherwise in its own points
    score_range: tuple[float, float] = (0.0, 1.0)
    stop: tuple[str, ...] = ()
    protocol: str = "gbg"
    # The protocols this task offers, by name (PROTOCOLS); "gbg" is the class defaults.
    protocols: dict[str, Protocol] = {}
    scorer_suffix: str = ""  # a rule variant's suffix: its scores are stored as scorer "<name>:<suffix>"

    @property
    def scorer(self) -> str:
        """The scorer name its scores are stored under: the task's name, or "<name>:<rule>" for a rule variant."""
        return f"{self.name}:{self.scorer_suffix}" if self.scorer_suffix else self.name

    def use_protocol(self, protocol: str) -> Task:
        """Switch this instance to `protocol` (its prompt, stops, length limit, answer rule and scorer version)."""
        if protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {protocol!r}: choose one of {', '.join(PROTOCOLS)}")
        if protocol != "gbg" and protocol not in self.protocols:
            have = ", ".join(dict.fromkeys(["gbg", *self.protocols]))
            raise ValueError(f"{self.name} has no {protocol!r} protocol (it has: {have}); see docs/benchmarks.md")
        for attr in ("version", "stop", "default_max_new_tokens", "protocol"):
            self.__dict__.pop(attr, None)  # back to the class defaults: gbg's own protocol
        spec = self.protocols.get(protocol)
        if spec is not None:
            self.protocol = protocol
            if spec.version is not None:
                self.version = spec.version
            if spec.stop is not None:
                self.stop = spec.stop
            if spec.max_new_tokens is not None:
                self.default_max_new_tokens = spec.max_new_tokens
        return self

    @property
    def protocol_spec(self) -> Protocol | None:
        return self.protocols.get(self.protocol)

    def rule_variants(self) -> list[Task]:
        """The same task scored by another answer rule on the same completions (e.g. the paper protocol's
        completions under gbg's rule), each stored under its own scorer name: shown side by side, never instead."""
        return []

    def _rule(self) -> str:
        """Which answer rule scores here, "paper" or "gbg": the protocol's own, or a rule variant's."""
        own = "paper" if self.protocol == "paper" else "gbg"
        return {"gbg-rule": "gbg", "paper-rule": "paper"}.get(self.scorer_suffix, own)

    def _other_rule(self, gbg_version: str, paper_version: str) -> list[Task]:
        """`rule_variants` for a task whose two rules can each read the other protocol's completions."""
        other = "gbg-rule" if self._rule() == "paper" else "paper-rule"
        return [self._variant(other, gbg_version if other == "gbg-rule" else paper_version)]

    def _variant(self, suffix: str, version: str) -> Task:
        v = copy.copy(self)
        v.scorer_suffix, v.version = suffix, version
        return v

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
