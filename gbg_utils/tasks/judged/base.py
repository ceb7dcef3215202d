"""What a judged benchmark provides (AlpacaEval 2, Arena-Hard, WildBench): the `JudgedTask` interface, its judge
prompt `Template` and one `Judgment`. The judge client and the runner that calls these are in score/judge.py;
this module needs neither (a judge is anything with `body`, `budget` and `chat`: `JudgeClient`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pandas as pd

from ..base import Item, Task
from ..base import Protocol as TaskProtocol
from ..data import DataSearch, TaskDataError


class JudgeClient(Protocol):
    """What a judged task asks of a judge (score.judge.Judge is one)."""

    model: str

    def budget(self, benchmark_max_tokens: int) -> int: ...

    def body(self, messages: list[dict], max_tokens: int, **extra) -> dict: ...

    def chat(self, body: dict) -> dict: ...


# --- what a judged task provides -------------------------------------------------------------------
@dataclass(frozen=True)
class Template:
    """The judge prompt files of a benchmark, as read, with their hash (part of every judgment's identity)."""

    files: dict  # relative name -> text
    source: str  # where they were read from
    sha256: str

    @classmethod
    def read(cls, paths: dict[str, Path], source: str) -> Template:
        files = {name: Path(p).read_text(encoding="utf-8") for name, p in paths.items()}
        h = hashlib.sha256()
        for name in sorted(files):
            h.update(name.encode() + b"\0" + files[name].encode() + b"\0")
        return cls(files, source, h.hexdigest())

    def text(self, name: str) -> str:
        return self.files[name]


@dataclass
class Judgment:
    """One judge answer for one game: the raw text, the parsed verdict and its value, or why there is none."""

    raw: str | None
    verdict: str | None = None
    value: float | None = None
    detail: dict | None = None  # e.g. the top log-probs, or every attempt of a multi-turn judgment
    error: str | None = None  # the request failed (no judge output)

    @property
    def parsed_ok(self) -> bool:
        return self.error is None and self.verdict is not None


class JudgedTask(Task):
    """A benchmark scored by an LLM judge. Same interface as the judge-free tasks (`load`, `prompt`, `version`,
    ...); instead of `score`, `judge_store(store, task, judge)` judges its stored samples."""

    judged = True
    paper_judge: str = "gpt-4-1106-preview"
    judge_max_tokens: int = 4096
    games: tuple[int, ...] = (0,)  # one judgment per sample, or (0, 1) for both orders
    # The paper generated these as each benchmark's own harness does (the instruction, or WildBench's conversation,
    # as chat turns with the model's template), and so does gbg: one protocol under two names, one identity.
    protocols = {
        "paper": TaskProtocol(
            "paper",
            None,
            "the benchmark's own generation (alpaca_eval / arena-hard-auto / WildBench): the instruction as chat turns",
            "the instruction (WildBench: the conversation) as chat turns, the model's own template",
            "the benchmark's judge prompt and metric (score/judge.py); the judge is the one configured",
            "a judge other than the paper's (gpt-4-1106-preview / gpt-4-turbo) is an approximation, labelled as such",
        )
    }

    def score(self, completion: str, item: Item):
        raise NotImplementedError(f"{self.name} is judged by an LLM: use gbg_utils.score.judge.judge_store(store, task, judge)")

    # each benchmark implements these
    def template(self, data_dir=None) -> Template:
        raise NotImplementedError

    def judge_body(self, judge: JudgeClient, item: Item, completion: str, game: int, template: Template) -> dict:
        """The request body (messages + parameters) that judges `completion` in this game."""
        raise NotImplementedError

    def parse(self, choice: dict, item: Item, game: int) -> Judgment:
        raise NotImplementedError

    def sample_score(self, item: Item, judgments: dict[int, dict]) -> tuple[float | None, str | None, str | None]:
        """(score, extracted, reason) of one sample from its judgments (rows by game)."""
        raise NotImplementedError

    def metrics(self, rows: pd.DataFrame, items: dict[str, Item], data_dir=None) -> dict:
        """Benchmark metrics of one sample set (one row per item: `item_id`, `text`, `games` {game: row})."""
        raise NotImplementedError

    # shared behaviour
    def shortcut(self, item: Item, completion: str, game: int) -> Judgment | None:
        """A judgment that needs no request (WildBench scores an empty output 1 without asking)."""
        return None

    def judge_one(self, judge: JudgeClient, body: dict, item: Item, game: int, prior: dict | None = None) -> Judgment:
        """One judgment; `prior`: the detail of a failed earlier attempt at the same request (a multi-turn judgment
        resumes from it; one request has nothing to resume)."""
        choice = judge.chat(body)
        try:
            return self.parse(choice, item, game)
        except Exception as e:  # an odd answer costs one judgment (kept, unparseable), not the run
            raw = (choice.get("message") or {}).get("content")
            return Judgment(
                raw if isinstance(raw, str) else json.dumps(choice)[:2000], None, None, {"parse_error": repr(e)[:300]}
            )

    def template_version(self, template: Template) -> str:
        return f"{self.version}.{template.sha256[:8]}"

    def _template_from(self, benchmark_dir: str, names: dict[str, str], data_dir=None, fallback: dict | None = None) -> Template:
        """Judge prompt files from the data dir (`benchmark_dir/<file>`), else from `fallback` {name: path}."""
        src = DataSearch(self.name, data_dir)
        rels = [f"{benchmark_dir}/{f}" for f in names.values()]
        d = src.local(*rels)
        if d is not None:
            return Template.read({n: d / benchmark_dir / f for n, f in names.items()}, f"{d / benchmark_dir}")
        if fallback and all(Path(p).exists() for p in fallback.values()):
            return Template.read(fallback, "installed package")
        raise TaskDataError(
            f"{self.name}: judge prompt not found (needs {', '.join(rels)}). Looked in:\n  - "
            + "\n  - ".join(src.looked or ["(nowhere)"])
        )


def data_error(src: DataSearch, layout: str) -> TaskDataError:
    """Like `DataSearch.error` but without the hub hint, for data that only comes from a data dir."""
    looked = "\n  - ".join(src.looked) or "(nowhere)"
    return TaskDataError(
        f"{src.benchmark}: benchmark data not found. Looked in:\n  - {looked}\nTo provide it: set GBG_DATA_DIR "
        f"(or pass data_dir=) to a folder holding {layout} (see shared/data/SOURCES.md in the gbg workspace)."
    )
