"""A verdict as a record: the `Verdict` dataclass, the claims' names, and verdicts.json (written by the notebooks,
read by the report's scorecard)."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..paths import from_root
from . import paper

VERDICTS = ("supported", "contradicted", "inconclusive", "not testable")
VERDICT_FILE = "verdicts.json"

CLAIMS = {
    "C1": "Greedy beats the sampling mean on most benchmarks (AlpacaEval the exception)",
    "C2": "Constrained answer spaces are stable: the best-worst spread on MMLU-Redux and MixEval is smaller than on GSM8K and HumanEval",
    "C3": "A larger model of the same family does not have a smaller sampling std",
    "C4": "Alignment (DPO, KTO, ...) lowers the sampling std",
    "C5": "Temperature 1.5 hurts GSM8K and HumanEval far more than open-ended tasks",
    "C6": "The default repetition penalty (1.0) is best or near-best, except on GSM8K where 0.9 can win (and AlpacaEval, 1.2)",
    "C7": "Greedy outputs are shorter than sampled ones",
    "C8": "Best-of-N by oracle (and by a reward model) beats greedy, and a small model's oracle@N beats a stronger model's sampling mean",
}
NOTEBOOK_OF = {
    "C1": "gap",
    "C2": "gap",
    "C3": "scaling",
    "C4": "alignment",
    "C5": "temperature",
    "C6": "repetition",
    "C7": "length",
    "C8": "best_of_n",
}


@dataclass(frozen=True)
class Verdict:
    """One claim tested on the user's store. value/ci_low/ci_high: the deciding number and its 95% CI (on the
    scale ``yours`` states), when one number decides; n_items/n_runs: the smallest cell's; rule: the decision
    rule that gave the verdict (None in files written before rules were recorded)."""

    claim_id: str
    claim: str
    paper: str
    yours: str
    verdict: str
    reason: str
    value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    n_items: int | None = None
    n_runs: int | None = None
    stand_in: bool = False
    notebook: str | None = None
    rule: str | None = None

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {', '.join(VERDICTS)}, got {self.verdict!r}")
        for f in dataclasses.fields(self):  # plain Python values, NaN as None: what verdicts.json holds
            object.__setattr__(self, f.name, _plain(getattr(self, f.name)))

    def to_dict(self) -> dict:
        return {k: _plain(v) for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> Verdict:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"not fields of a Verdict: {sorted(unknown)}")
        return cls(**d)


def _plain(v):
    """JSON-safe: numpy scalars to Python, NaN (and pandas' NA) to None."""
    if isinstance(v, np.generic):
        v = v.item()
    if v is pd.NA or (isinstance(v, float) and not math.isfinite(v)):
        return None
    return v


def save_verdicts(verdicts: list[Verdict], out_dir: str | Path, notebook: str) -> Path:
    """Write ``verdicts.json`` into a notebook's output folder (relative: to the project root); returns its path."""
    out = from_root(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / VERDICT_FILE
    rows = [dataclasses.replace(v, notebook=notebook).to_dict() for v in verdicts]
    meta = paper.load()["paper"]
    path.write_text(json.dumps({"notebook": notebook, "paper": f"{meta['title']} ({meta['url']})", "verdicts": rows}, indent=2))
    return path


def load_verdicts(path: str | Path) -> list[Verdict]:
    """The verdicts of one verdicts.json (a file, or a folder holding one)."""
    p = from_root(path)
    p = p / VERDICT_FILE if p.is_dir() else p
    try:
        data = json.loads(p.read_text())
        return [Verdict.from_dict(d) for d in data["verdicts"]]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{p}: not a readable verdicts file ({e})") from None


def verdict_table(verdicts: list[Verdict]) -> pd.DataFrame:
    """Paper vs yours, one row per verdict, for display, with the decision rule beside the verdict."""
    return pd.DataFrame(
        [
            {
                "claim": f"{v.claim_id}: {v.claim}",
                "paper": v.paper,
                "yours": v.yours,
                "verdict": v.verdict,
                "why": v.reason,
                "rule": v.rule or "",
            }
            for v in verdicts
        ]
    )
