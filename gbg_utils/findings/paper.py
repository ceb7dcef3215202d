"""The paper's published numbers (Song et al. 2024, arXiv:2407.10457v1) as tables, each with its source.

    >>> table("table2")                      # 7 models x 6 benchmarks: greedy, sample, std, delta (best - worst run)
    >>> source("table4")["where"]            # 'Table 4' (the Qwen2 scaling table)
    >>> side_by_side(stats.gap_table(df))    # the user's gap rows beside the paper's, same benchmarks, in percent

The numbers live in paper_numbers.json, transcribed from the paper's text and checked against the figures in its
repository (sources recorded per table). Nothing is estimated: what the paper prints no value for is absent,
and the file's "left_out" and "figures_without_numbers" entries say what. Scores are as printed (percent).
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(__file__).with_name("paper_numbers.json")
TABLES = ("table2", "table4", "table5", "figure4")
PAPER_LABEL = "paper (arXiv:2407.10457v1)"
# Benchmarks scored in points rather than 0-1 (WildBench's WB-Score); every other one is shown in percent.
# Kept here, not read from gbg_utils.tasks: findings imports only stats and paths (pyproject's import contracts).
POINT_BENCHMARKS = frozenset({"wildbench"})


@functools.cache
def load() -> dict:
    """The whole data file (cached)."""
    return json.loads(DATA.read_text(encoding="utf-8"))


def _entry(name: str) -> dict:
    tables = load()["tables"]
    if name not in tables:
        raise KeyError(f"no paper table {name!r}; the paper's tables here: {', '.join(tables)}")
    return tables[name]


def table(name: str) -> pd.DataFrame:
    """One table as a frame (columns as the data file lists them); a copy, safe to modify."""
    e = _entry(name)
    return pd.DataFrame(e["rows"], columns=e["columns"])


def source(name: str) -> dict:
    """Where a table's numbers come from: url, where (table/figure number), version, read_from, cross_checked."""
    return dict(_entry(name)["source"])


def reference_lines() -> pd.DataFrame:
    """Figure 4's reference lines (label, benchmark, value)."""
    return pd.DataFrame(_entry("figure4")["reference"])


def reference_bars(benchmarks) -> dict[str, float]:
    """Figure 4's GPT-4-Turbo lines (its Table 2 sampling means) as 0-1 bars, for the benchmarks that have one:
    C8's "a stronger model" when the store holds none. The paper's numbers, on the full benchmark."""
    ref = reference_lines()
    return {r.benchmark: r.value / 100 for r in ref.itertuples() if r.benchmark in set(benchmarks)}


def cite(name: str) -> str:
    """Short citation of a table, e.g. 'arXiv:2407.10457v1, Table 2'."""
    return f"arXiv:{load()['paper']['arxiv']}v1, {source(name)['where']}"


def benchmark_info(benchmark: str) -> dict:
    """Table 1's entry for one of this project's benchmarks (label, metric, n_items, n_samples); {} if the paper lacks it."""
    return dict(load()["benchmarks"].get(benchmark, {}))


def benchmark_label(benchmark: str) -> str:
    """The paper's name for one of this project's benchmarks (the name itself if the paper has none)."""
    return benchmark_info(benchmark).get("label", benchmark)


def factor(benchmark: str) -> float:
    """What puts a stored 0-1 score on the paper's scale: 100 (percent), or 1 for a benchmark scored in points."""
    return 1.0 if benchmark in POINT_BENCHMARKS else 100.0


def _norm(name: str) -> str:
    base = str(name).rstrip("/").split("/")[-1].lower()
    return base.removeprefix("meta-")  # the hub's Meta-Llama-3-8B-Instruct is the paper's Llama-3-8B-Instruct


@functools.cache
def _paper_models() -> dict[str, str]:
    names = {r["model"] for t in TABLES for r in _entry(t)["rows"]}
    out = {_norm(m): m for m in names}
    for m, aliases in load()["models"]["aliases"].items():
        out.update({_norm(a): m for a in aliases})
    return out


def match_model(name: str) -> str | None:
    """The paper's model a store's model name refers to ('Qwen/Qwen2-7B-Instruct' -> 'Qwen2-7B-Instruct'), or None."""
    return _paper_models().get(_norm(name))


_SIZE = re.compile(r"[-_]?\d+(?:\.\d+)?[bm](?=$|[-_.])", re.I)


def family(name: str) -> str:
    """A model's family, its name without the size: 'Qwen2-0.5B-Instruct' and 'Qwen/Qwen2-7B-Instruct' -> 'qwen2-instruct'.
    A heuristic on names: used only to warn that models of different families stand in for one family."""
    return _SIZE.sub("", _norm(name))


def side_by_side(gap: pd.DataFrame, ddof: int = 1) -> pd.DataFrame:
    """The user's gap_table rows beside Table 2's rows for the same benchmarks, in percent.

    One row per (source, model, benchmark, sampled config): source is "yours" or the paper's label; greedy,
    mean (the paper's "Sample"), std, delta (best - worst run), gap = greedy - mean, n_items, n_runs; for
    the user's rows also best, worst and gap_ci_low/gap_ci_high (the paper prints none of them). The paper's rows are those of
    the model(s) the user ran when the paper has them (paper_model), else all of the paper's models on that
    benchmark. A benchmark the paper's Table 2 lacks gets no paper rows.
    std is on the paper's footing on both sides: numpy's default ddof=0 (its analyse scripts); ``ddof`` is the
    one the gap table was computed with (stats.gap_table's default 1), converted by sqrt((n - ddof) / n).
    """
    for c in ("model", "benchmark", "greedy", "mean", "std", "best", "worst", "n_items", "n_runs"):
        if c not in gap.columns:
            raise KeyError(f"side_by_side needs a stats.gap_table; column {c!r} is missing")
    f = gap["benchmark"].map(factor)
    yours = pd.DataFrame(
        {
            "source": "yours",
            "model": gap["model"].astype(str),
            "benchmark": gap["benchmark"],
            "n_items": gap["n_items"],
            "n_runs": gap["n_runs"],
            "greedy": gap["greedy"] * f,
            "mean": gap["mean"] * f,
            "std": gap["std"] * f * np.sqrt((gap["n_runs"] - ddof).clip(lower=0) / gap["n_runs"]),
            "delta": (gap["best"] - gap["worst"]) * f,
            "gap": (gap["greedy"] - gap["mean"]) * f,
            "best": gap["best"] * f,  # the paper prints only best - worst: its rows leave these empty
            "worst": gap["worst"] * f,
        }
    )
    for c in ("gap_ci_low", "gap_ci_high"):
        if c in gap.columns:
            yours[c] = gap[c] * f
    if "temperature" in gap.columns:
        yours["temperature"] = gap["temperature"]
    yours["paper_model"] = gap["model"].map(match_model)
    t2 = table("table2")
    frames = [yours]
    for b in dict.fromkeys(gap["benchmark"]):
        p = t2[t2.benchmark == b]
        mine = set(yours.loc[yours.benchmark == b, "paper_model"].dropna())
        if mine:
            p = p[p.model.isin(mine)]
        if p.empty:
            continue
        frames.append(
            pd.DataFrame(
                {
                    "source": f"{PAPER_LABEL}, Table 2",
                    "model": p["model"],
                    "benchmark": b,
                    "n_items": benchmark_info(b).get("n_items"),  # the whole benchmark (Table 1)
                    "n_runs": p["n_runs"],
                    "greedy": p["greedy"],
                    "mean": p["sample"],
                    "std": p["std"],
                    "delta": p["delta"],
                    "gap": (p["greedy"] - p["sample"]).round(1),
                    "temperature": 1.0,  # the paper's sampling setting (Sec. 2: temperature 1.0, top-p 1.0)
                    "paper_model": p["model"],
                }
            )
        )
    out = pd.concat(frames, ignore_index=True)
    order = out["benchmark"].map({b: i for i, b in enumerate(dict.fromkeys(gap["benchmark"]))})
    return (
        out.assign(_o=order, _p=out["source"] != "yours")
        .sort_values(["_o", "_p"], kind="stable")
        .drop(columns=["_o", "_p"])
        .reset_index(drop=True)
    )
