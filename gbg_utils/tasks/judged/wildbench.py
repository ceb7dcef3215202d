"""WildBench v2 (1024 real-user conversations): each response scored 1-10 by an LLM judge against the task's
checklist (WB-Score template); WB-Score = (mean score - 5) * 2, as WildBench's leaderboard `adjusted_score`.

The task data (conversations + checklists) is NOT in the offline data dir (see shared/data/SOURCES.md); only the
judge template `wildbench/eval_template.score.v2.md` is. Provide the data in one of these ways:

- a file in the data dir: `wildbench/wildbench_v2.jsonl` (one JSON object per line), `wildbench/wildbench_v2.json`
  (a list) or `wildbench/wildbench_v2.parquet` -- the rows of the HF dataset allenai/WildBench, config v2, split
  test, with at least `session_id`, `conversation_input` ([{role, content}, ...]) and `checklist` ([str]);
- `WildBench(file="path/to/wildbench_v2.jsonl")`;
- online: `pip install datasets`; the loader then reads allenai/WildBench (v2, test) from the hub.

Otherwise `load` raises a TaskDataError that says all of this.

    >>> task = WildBench(file="wildbench_v2.jsonl")
    >>> task.prompt(task.load()[0])          # the conversation so far; the model writes the next turn

Judge prompt, as WildBench's src/eval.py (score mode) builds it: the history as "USER: ..." / "ASSISTANT: ..."
turns joined by blank lines, the last user turn as the query, the checklist as "- item" lines; an empty output
scores 1 without asking the judge (WildBench's shortcut). Verdict: `SCORE_RULE`.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..base import Item
from ..data import DataSearch, TaskDataError, read_json, read_jsonl
from .base import JudgeClient, JudgedTask, Judgment, Template

TEMPLATE_FILES = {"eval_template.score.v2.md": "eval_template.score.v2.md"}
DATA_FILES = ("wildbench/wildbench_v2.jsonl", "wildbench/wildbench_v2.json", "wildbench/wildbench_v2.parquet")
HUB = ("allenai/WildBench", "v2", "test")
LAYOUT = (
    "wildbench/wildbench_v2.jsonl (rows of the HF dataset allenai/WildBench, config v2, split test: session_id, "
    "conversation_input, checklist, primary_tag); or pass WildBench(file=...)"
)

# The scorer's version (`Task.version`, part of every stored score's identity) and the single source of the
# version in the rule label below: bump it when SCORE_RULE changes.
VERSION = "1"
SCORE_RULE = f"wildbench-score/v{VERSION}"
"""The judge answers in JSON {"strengths", "weaknesses", "score"}. We read `score` from the whole answer parsed
as JSON (newlines flattened, as WildBench's parse_result), else from the last {...} block that parses, else from
the last `"score": "N"` in the text; a number in [1, 10] is the verdict, anything else is unparseable."""
_SCORE_RE = re.compile(r'"score"\s*:\s*"?\[?\s*(\d+(?:\.\d+)?)')


def parse_score(text: str) -> float | None:
    """'{"strengths": "..", "weaknesses": "..", "score": "7"}' -> 7.0; None when there is no score in 1..10."""
    cands = []
    for s in (text.strip().replace("\n", " "),) + tuple(m.group(0).replace("\n", " ") for m in re.finditer(r"\{[^{}]*\}", text)):
        try:
            obj = json.loads(s)
        except ValueError:
            continue
        if isinstance(obj, dict) and "score" in obj:
            cands.append(obj["score"])
    if not cands:
        cands = _SCORE_RE.findall(text)
    if not cands:
        return None
    try:
        v = float(str(cands[-1]).strip().strip("[]"))
    except ValueError:
        return None
    return v if 1 <= v <= 10 else None


class WildBench(JudgedTask):
    name = "wildbench"
    version = VERSION
    description = "WildBench v2: 1024 real-user tasks, checklist-guided 1-10 scores by an LLM judge, WB-Score"
    default_max_new_tokens = 4096
    paper_n_samples = 16
    score_range = (-8.0, 10.0)  # per-sample WB-Score, (1..10 - 5) * 2: shown in points, not percent
    # WildBench v2's WB-Score results were judged by gpt-4o-2024-05-13 (SOURCES.md); the paper does not name
    # a different one.
    paper_judge = "gpt-4o-2024-05-13"
    judge_max_tokens = 1024  # WildBench eval.py's default

    def __init__(self, file: str | Path | None = None):
        self.file = Path(file).expanduser() if file else None

    def load_all(self, data_dir=None) -> list[Item]:
        rows = self._rows(data_dir)
        items = []
        for r in rows:
            conv = [{"role": t["role"], "content": t["content"]} for t in r["conversation_input"]]
            items.append(
                Item(
                    str(r["session_id"]),
                    {"conversation": conv, "checklist": list(r.get("checklist") or []), "primary_tag": r.get("primary_tag")},
                    r.get("primary_tag"),
                )
            )
        return items

    def _rows(self, data_dir) -> list[dict]:
        if self.file is not None:
            if not self.file.exists():
                raise TaskDataError(f"wildbench: file {self.file} does not exist. Expected {LAYOUT}")
            return _read(self.file)
        src = DataSearch(self.name, data_dir)
        for rel in DATA_FILES:
            d = src.local(rel)
            if d is not None:
                return _read(d / rel)
        if _offline():
            src.note("Hugging Face hub allenai/WildBench (v2): skipped, HF_HUB_OFFLINE / HF_DATASETS_OFFLINE is set")
        else:
            rows = src.hub(*HUB)
            if rows is not None:
                return rows
        raise src.error(LAYOUT)

    def prompt(self, item: Item) -> list[dict]:
        return [dict(t) for t in item.data["conversation"]]

    # --- judging -----------------------------------------------------------------------------------
    def template(self, data_dir=None) -> Template:
        return self._template_from("wildbench", TEMPLATE_FILES, data_dir)

    def judge_body(self, judge: JudgeClient, item: Item, completion: str, game: int, template: Template) -> dict:
        conv = item.data["conversation"]
        history = "".join(
            ("USER: " if t["role"] == "user" else "ASSISTANT: ") + t["content"] + "\n\n"
            for t in conv[:-1]
            if t["role"] in ("user", "assistant")
        )
        checklist = "".join(f"- {c}\n" for c in item.data["checklist"])
        prompt = (
            template.text("eval_template.score.v2.md")
            .replace("{$history}", history)
            .replace("{$user_query}", conv[-1]["content"])
            .replace("{$model_output}", completion or "")
            .replace("{$checklist}", checklist)
        )
        return judge.body([{"role": "user", "content": prompt}], judge.budget(self.judge_max_tokens))

    def shortcut(self, item, completion, game):
        if not (completion or "").strip():
            raw = json.dumps({"strengths": "N/A", "weaknesses": "The model output is empty.", "score": "1"})
            return Judgment(raw, "1", 1.0, {"shortcut": "empty output"})
        return None

    def parse(self, choice: dict, item: Item, game: int) -> Judgment:
        text = (choice.get("message") or {}).get("content") or ""
        s = parse_score(text)
        return Judgment(text, None if s is None else f"{s:g}", s, None)

    def sample_score(self, item, judgments):
        j = judgments[0]
        if not j["parsed_ok"]:
            return None, None, "unparseable"
        return (float(j["value"]) - 5) * 2, j["verdict"], None

    def metrics(self, rows: pd.DataFrame, items: dict[str, Item], data_dir=None) -> dict:
        s = np.array([gs[0]["value"] for gs in rows["games"] if gs[0]["parsed_ok"]], dtype=float)
        if len(s) == 0:
            return {"score_mean": None, "wb_score": None, "wb_score_se": None}
        se = float(s.std(ddof=1) / math.sqrt(len(s)) * 2) if len(s) > 1 else None
        return {"score_mean": float(s.mean()), "wb_score": float((s.mean() - 5) * 2), "wb_score_se": se}


def _offline() -> bool:
    return any(
        os.environ.get(k, "").lower() in ("1", "true", "yes", "on")
        for k in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "GBG_OFFLINE")
    )


def _read(path: Path) -> list[dict]:
    if path.suffix == ".parquet":
        return pd.read_parquet(path).to_dict("records")
    return read_json(path) if path.suffix == ".json" else read_jsonl(path)
