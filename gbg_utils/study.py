"""What a research notebook calls: generate what is missing, score it, and hand back the tidy table.

    >>> P = validate("temperature", globals())
    >>> df = generate_and_score(P, temperatures=P.temperatures)   # every (model, benchmark, temperature), greedy included
    >>> save(P.output_path, P, "temperature", tables={...}, frame=df)   # provenance from df.attrs, items.html from df

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
from .tasks.subsets import RULE as SUBSET_RULE


def generate_and_score(
    P,
    temperatures: list[float] | None = None,
    repetition_penalties: list[float] | None = None,
    logprobs: bool = False,
    progress: bool = True,
) -> pd.DataFrame:
    """Greedy + `P.n_samples` samples for every model x benchmark x (temperature, repetition penalty), scored.

    What it may do, each only where the store lacks it: load each model (once; on a CPU or for a large model this
    can take an hour) and generate the missing samples; score by rule, running HumanEval's code in the sandbox;
    call the LLM judge (`P.judge_model`, a paid API where it names one) for judged benchmarks, MixEval's model
    parser (`P.mixeval_parser`) and, through `add_rewards`, the reward models the parameters name. What is stored
    is reused, so a rerun only reads.

    The table holds exactly what the parameters name: their models, benchmarks and configs on their engine
    (backend, dtype), each item's current prompt, the first `P.samples_for(benchmark)` samples of every item,
    and scores of the task's current scorer version -- whatever else the shared store holds. Temperature 0 in
    a sweep is the greedy output. What it was built from (per model x benchmark: engine, task version, protocol,
    prompt hashes, configs) rides with it in `df.attrs[INPUTS]`, which `save` and `provenance` read."""
    store = SampleStore(P.store_path)
    temperatures = temperatures or [P.temperature]
    penalties = repetition_penalties or [P.repetition_penalty]
    frames, runs = [], []
    for model in P.models:
        opts = {"base_url": P.base_url} if P.backend == "openai" else {}
        be = LazyBackend(Engine(P.backend, model, resolve_dtype(P.dtype), opts))
        try:
            for bench in P.benchmarks:
                task = get_task(bench, P.protocol)
                items = task.load(data_dir=P.data_path, limit=P.limit, subset_seed=P.subset_seed)
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
                wanted = {}
                for s in summaries:
                    wanted.update(s.wanted)
                df = score(store, task, items, P, model, scope=(wanted, summaries[0].prompt_hashes))
                merged = summaries[0]
                merged.wanted = wanted
                frames.append(merged.select(df))
                runs.append(
                    {
                        "model": model,
                        "benchmark": bench,
                        "engine": merged.engine,
                        "task_version": task.version,
                        "protocol": task.protocol,
                        "n_items": len(items),
                        "prompt_hashes": merged.prompt_hashes,
                        "configs": wanted,
                    }
                )
        finally:
            be.close()  # free the model before the next one loads
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    store.checkpoint()  # store.sqlite alone then holds this run: a copy of it misses nothing (at most 5 s)
    return with_inputs(out, runs)


INPUTS = "gbg_inputs"  # the frame's attrs key: what generate_and_score / stability built it from


class Inputs(tuple):
    """What a table was built from (one dict per model x benchmark, or grid point), read-only once made. pandas
    deep-copies a frame's attrs on every operation that derives a frame; this record is shared instead (its copy is
    itself), so filtering a paper-scale table does not copy thousands of prompt hashes each time."""

    def __deepcopy__(self, memo):
        return self


def with_inputs(df: pd.DataFrame, runs: list[dict]) -> pd.DataFrame:
    df.attrs[INPUTS] = Inputs(runs)
    return df


def score(store: SampleStore, task, items, P, model: str, scope: tuple | None = None) -> pd.DataFrame:
    """Score what is stored for this task and return the model's tidy table: judge-free tasks score
    themselves (the task's current scorer version only); judged ones go through P.judge_model (cached,
    resumable) and only its verdicts are read. `scope`: ({config_key: n}, {item_id: prompt hash}) of the
    samples the caller selected; the judge sends requests for those only."""
    if getattr(task, "judged", False):
        from .score.judge import judged_frame

        judge = _judge_selected(store, task, P.judge_model, items, P, model, scope)
        return judged_frame(store, task.name, judge, data_dir=P.data_path, model=model)
    from .score.scoring import score_store

    variants = task.rule_variants()
    parser = getattr(P, "mixeval_parser", None) if task.name in MIXEVAL_PARSED else None
    if parser:  # the paper's answer parser: the rules' scores of the same completions go beside it, the own one too
        variants = [task._variant(f"{task._rule()}-rule", task.version), *variants]
    else:
        score_store(store, task, items=items, progress=False)
    for v in variants:  # the other answer rule on the same completions: a column beside, never instead
        score_store(store, v, items=items, progress=False)
    extra = [v.scorer for v in variants]
    if parser:
        return _model_parsed(store, task, items, P, model, parser, extra, scope)
    return store.frame(model=model, benchmark=task.name, scorer_version=task.version, extra_scorers=extra)


MIXEVAL_PARSED = ("mixeval", "mixeval_hard")  # the benchmarks `P.mixeval_parser` scores


def _model_parsed(store: SampleStore, task, items, P, model: str, parser: str, extra: list[str], scope=None) -> pd.DataFrame:
    """MixEval scored by its model parser (the paper's: gpt-3.5-turbo-0125) served at P.judge_base_url."""
    from .score.judge import scorer_version
    from .tasks.judged.mixeval_parser import MixEvalModelParser

    mp = MixEvalModelParser(task)
    judge = _judge_selected(store, mp, parser, items, P, model, scope, progress=False)
    sv = scorer_version(mp, judge, mp.template())
    return store.frame(model=model, benchmark=task.name, scorer=mp.scorer, scorer_version=sv, extra_scorers=extra)


def _judge_selected(store: SampleStore, task, judge_model: str, items, P, model: str, scope, progress: bool = True) -> str:
    """Judge `task`'s samples of `model` that the notebook selected (`scope`: a paid judge judges no others) with
    `judge_model` at P.judge_base_url, cached and resumable; print the summary, return the judge's name."""
    from .score.judge import Judge, judge_store

    judge = Judge(judge_model, base_url=P.judge_base_url)
    configs, hashes = scope or (None, None)
    try:
        summary = judge_store(
            store,
            task,
            judge,
            model=model,
            items=items,
            data_dir=P.data_path,
            configs=configs,
            prompt_hashes=hashes,
            progress=progress,
        )
    finally:
        judge.close()
    print(summary)
    return judge.model


def rule_comparison(df: pd.DataFrame, gap: pd.DataFrame, n_boot: int = 1000) -> pd.DataFrame:
    """`gap` (the stats.gap_table of `df`, under each benchmark's own rule) beside the gap table under the other rule
    scored on the same completions (the "<benchmark>:<rule>" columns `generate_and_score` adds): column `rule` names which."""
    from .stats import gap_table

    cols = [c for c in df.columns if isinstance(c, str) and c.count(":") == 1 and c.endswith("-rule")]
    parts = []
    for c in cols:
        bench, rule = c.split(":")
        rows = df[(df["benchmark"] == bench) & df[c].notna()]
        if rows.empty:
            continue
        parts.append(gap[gap["benchmark"] == bench].assign(rule="the protocol's own"))
        parts.append(gap_table(rows.assign(score=rows[c]), n_boot=n_boot).assign(rule=rule))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def provenance(P, notebook: str, frame: pd.DataFrame | None = None) -> dict:
    """Parameters, versions, and what the results were computed from: the generation runs, engines, task
    and scorer versions and prompt hashes of the rows of `frame` (a table of `generate_and_score` or `stability`,
    whose inputs ride in its attrs). Without a frame: parameters, versions and the item draw only."""
    runs = SampleStore(P.store_path).runs()
    subset = {"limit": P.limit, "subset_seed": P.subset_seed, "rule": SUBSET_RULE}  # the items: tasks/subsets.py
    inputs = frame.attrs.get(INPUTS) if frame is not None else None
    if inputs is not None:
        return notebook_run(P, notebook, runs, frame, inputs=list(inputs), subset=subset)
    return notebook_run(P, notebook, runs, frame, subset=subset)


def save(
    out_dir: str | Path,
    P,
    notebook: str,
    tables: dict[str, pd.DataFrame] | None = None,
    figures: dict | None = None,
    frame: pd.DataFrame | None = None,
) -> Path:
    """Write tables (CSV), figures (PNG) and provenance.json into `out_dir` (relative: to the project root, not
    the kernel's cwd; pass `P.output_path`); returns the folder. Every table names the protocol its numbers were
    measured under (a `protocol` column), so no CSV leaves the run without it. `frame`: the notebook's sample
    table (what `generate_and_score` returned): provenance records what it was built from, and its telling items go
    to items.html (report/items.py: the report links it)."""
    from .paths import from_root

    out = from_root(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, df in (tables or {}).items():
        if "protocol" not in df.columns and getattr(P, "protocol", None):
            df = df.assign(protocol=P.protocol)
        df.to_csv(out / f"{name}.csv", index=False)
    for name, fig in (figures or {}).items():
        fig.savefig(out / f"{name}.png", dpi=110, bbox_inches="tight")
    if frame is not None and not frame.empty and {"greedy", "sample_idx"} <= set(frame.columns):
        from .report.items import write_items_page

        store = SampleStore(P.store_path)
        write_items_page(
            store, frame, out / "items.html", P.protocol, P.data_path, title=f"{notebook}: items, greedy and sampled"
        )
    (out / "provenance.json").write_text(json.dumps(provenance(P, notebook, frame), indent=2, default=str))
    return out


def add_rewards(df: pd.DataFrame, P) -> list[str]:
    """Score the store's samples with each of `P.reward_models` (resumably) and add a `reward:<name>` column
    per model to `df` in place; returns the column names, for `stats.best_of_k_table`."""
    if not P.reward_models:
        return []
    from .score import reward, reward_models

    store = SampleStore(P.store_path)
    key = list(KEY)
    cols = []
    for name in P.reward_models:
        rm = reward_models.load_reward_model(name)
        for bench in P.benchmarks:
            task = get_task(bench, P.protocol)
            reward.score_rewards(
                store,
                task,
                rm,
                items=task.load(data_dir=P.data_path, limit=P.limit, subset_seed=P.subset_seed),
                only=df[df["benchmark"] == bench],
            )
        col = rm.scorer
        # The current reward version only: a store can hold older versions' scores of the same samples.
        sc = store.scores(scorer=col, scorer_version=reward_models.REWARD_VERSION)[key + ["score"]].rename(columns={"score": col})
        df[col] = df[key].merge(sc, on=key, how="left")[col].to_numpy()
        rm.close()
        cols.append(col)
    return cols
