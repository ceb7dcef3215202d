"""What a research notebook calls: generate what is missing, score it, and hand back the tidy table.

    >>> P = validate("temperature", globals())
    >>> df = collect(P, temperatures=P.temperatures)   # every (model, benchmark, temperature), greedy included

All notebooks share one store, so a sample generated for one is reused by another: the gap notebook's
samples at T=1.0 are the temperature notebook's T=1.0 point.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from .generate.backends import LazyBackend
from .generate.runner import run_generation
from .identity import Engine
from .models import resolve_dtype
from .provenance import notebook_run
from .store import KEY, SampleStore
from .tasks import get_task


def collect(
    P,
    temperatures: list[float] | None = None,
    repetition_penalties: list[float] | None = None,
    logprobs: bool = False,
    progress: bool = True,
) -> pd.DataFrame:
    """Greedy + `P.n_samples` samples for every model x benchmark x (temperature, repetition penalty), scored.

    The table holds exactly what the parameters name: their models, benchmarks and configs on their engine
    (backend, dtype), each item's current prompt, the first `P.samples_for(benchmark)` samples of every item,
    and scores of the task's current scorer version -- whatever else the shared store holds. Temperature 0 in
    a sweep is the greedy output. Each model is loaded at most once, and only if something is missing."""
    store = SampleStore(P.store_path)
    temperatures = temperatures or [P.temperature]
    penalties = repetition_penalties or [P.repetition_penalty]
    frames, runs = [], []
    for model in P.models:
        opts = {"base_url": P.base_url} if P.backend == "openai" else {}
        be = LazyBackend(Engine(P.backend, model, resolve_dtype(P.dtype), opts))
        try:
            for bench in P.benchmarks:
                task = get_task(bench)
                items = task.load(data_dir=P.data_path, limit=P.limit)
                summaries = []
                for t in temperatures:
                    for r in penalties:
                        summaries.append(
                            run_generation(
                                store,
                                model,
                                task,
                                items,
                                n_samples=P.samples_for(bench),
                                temperature=t,
                                top_p=P.top_p,
                                top_k=P.top_k,
                                repetition_penalty=r,
                                max_new_tokens=P.max_new_tokens,
                                seed=P.seed,
                                logprobs=logprobs,
                                backend=be,
                                progress=progress,
                            )
                        )
                df = score(store, task, items, P, model)
                wanted = {}
                for s in summaries:
                    wanted.update(s.wanted)
                merged = summaries[0]
                merged.wanted = wanted
                frames.append(merged.select(df))
                runs.append(
                    {
                        "model": model,
                        "benchmark": bench,
                        "engine": merged.engine,
                        "task_version": task.version,
                        "prompt_hashes": merged.prompt_hashes,
                        "configs": wanted,
                    }
                )
        finally:
            be.close()  # free the model before the next one loads
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    _COLLECTED[id(P)] = (out, runs)
    return out


_COLLECTED: dict[int, tuple] = {}  # id(params) -> (the last table collect returned, what it was built from)


def score(store: SampleStore, task, items, P, model: str) -> pd.DataFrame:
    """Score what is stored for this task and return the model's tidy table: judge-free tasks score
    themselves (the task's current scorer version only); judged ones go through P.judge_model (cached,
    resumable) and only its verdicts are read."""
    if getattr(task, "judged", False):
        from .score.judge import Judge, judge_store, judged_frame

        judge = Judge(P.judge_model, base_url=P.judge_base_url)
        print(judge_store(store, task, judge, model=model, items=items, data_dir=P.data_path))
        return judged_frame(store, task.name, judge, data_dir=P.data_path, model=model)
    from .score.scoring import score_store

    score_store(store, task, items=items, progress=False)
    return store.frame(model=model, benchmark=task.name, scorer_version=task.version)


def provenance(P, notebook: str, frame: pd.DataFrame | None = None) -> dict:
    """Parameters, versions, and what the results were computed from: the generation runs, engines, task
    and scorer versions and prompt hashes of the rows of `frame` (default: the last `collect(P)`)."""
    store = SampleStore(P.store_path)
    collected = _COLLECTED.get(id(P))
    if frame is None and collected is not None:
        frame = collected[0]
    runs = store.runs()
    if collected is not None:
        return notebook_run(P, notebook, runs, frame, inputs=collected[1])
    return notebook_run(P, notebook, runs, frame)


def save(
    out_dir: str | Path, P, notebook: str, tables: dict[str, pd.DataFrame] | None = None, figures: dict | None = None
) -> Path:
    """Write tables (CSV), figures (PNG) and provenance.json into `out_dir` (relative: to the project root, not
    the kernel's cwd; pass `P.output_path`); returns the folder."""
    from .paths import from_root

    out = from_root(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, df in (tables or {}).items():
        df.to_csv(out / f"{name}.csv", index=False)
    for name, fig in (figures or {}).items():
        fig.savefig(out / f"{name}.png", dpi=110, bbox_inches="tight")
    (out / "provenance.json").write_text(json.dumps(provenance(P, notebook), indent=2, default=str))
    return out


def add_rewards(df: pd.DataFrame, P) -> list[str]:
    """Score the store's samples with each of `P.reward_models` (resumably) and add a `reward:<name>` column
    per model to `df` in place; returns the column names, for `stats.best_of_k_table`."""
    if not P.reward_models:
        return []
    from .score import reward

    store = SampleStore(P.store_path)
    key = list(KEY)
    cols = []
    for name in P.reward_models:
        rm = reward.load_reward_model(name)
        for bench in P.benchmarks:
            task = get_task(bench)
            reward.score_rewards(
                store, task, rm, items=task.load(data_dir=P.data_path, limit=P.limit), only=df[df["benchmark"] == bench]
            )
        col = rm.scorer
        sc = store.scores(scorer=col)[key + ["score"]].rename(columns={"score": col})
        df[col] = df[key].merge(sc, on=key, how="left")[col].to_numpy()
        rm.close()
        cols.append(col)
    return cols
