"""Score the sample store: every stored completion of a task gets a score row next to it.

    >>> store = SampleStore("outputs/store.sqlite")
    >>> score_store(store, get_task("gsm8k"))           # -> number of samples newly scored
    >>> store.frame(scorer="gsm8k")                      # samples joined with their scores

Scores are keyed by (sample, scorer=task.name, scorer_version=task.version). A sample already scored
with this version is skipped, so a rerun (or a run that was killed: each batch is one transaction)
continues where it stopped; a new task version scores everything again and keeps the old rows;
completions are never regenerated. A sample whose item id is not among the benchmark's items is
skipped and counted in a warning. Bad model output scores 0 with a reason; an environment failure
(the sandbox can't start, data missing) raises and records nothing for the batch.

Programs (HumanEval) run in `gbg_utils.sandbox` with the store's folder hidden from them; a scoring call that
ran any records a run (store `runs` table, kind "score") naming the jail, so a score's jail is on record.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from .. import sandbox
from ..provenance import score_run
from ..store import KEY, SampleStore
from ..tasks import Item, Score, Task
from ..tasks.base import ENVIRONMENT_ERRORS


def score_store(
    store: SampleStore,
    task: Task,
    model: str | None = None,
    workers: int = 2,
    progress: bool = True,
    items: list[Item] | None = None,
    data_dir=None,
    batch_size: int = 256,
) -> int:
    """Score the samples of `task.name` (optionally one model's) not yet scored with this task version.

    items: score only the samples of these items (default: all of `task.load(data_dir)`, and samples whose
    item id is not among them are skipped with a warning); workers: parallel sandbox processes
    (HumanEval); batch_size: samples per committed batch. Returns how many samples were scored now.
    """
    if getattr(task, "judged", False):
        raise ValueError(f"{task.name} is scored by an LLM judge: use gbg_utils.score.judge.judge_store(store, task, Judge(...))")
    # Only what is left to score, found in SQL: at paper scale reading every text first costs seconds and GBs.
    scorer = getattr(task, "scorer", task.name)  # a rule variant ("gsm8k:gbg-rule") keeps its scores apart
    df = store.unscored(scorer, task.version, model=model, benchmark=task.name)
    if df.empty:
        return 0
    todo = list(range(len(df)))
    by_id = {str(it.id): it for it in (items if items is not None else task.load(data_dir=data_dir))}
    unknown = [i for i in todo if str(df.at[i, "item_id"]) not in by_id]
    if unknown and items is not None:  # the caller chose a subset (e.g. a run with limit=): score just those
        todo = [i for i in todo if str(df.at[i, "item_id"]) in by_id]
    elif unknown:
        ids = sorted({str(df.at[i, "item_id"]) for i in unknown})
        warnings.warn(
            f"{task.name}: {len(unknown)} stored samples have item ids that are not among the task's "
            f"{len(by_id)} items (e.g. {ids[:3]}); skipped",
            RuntimeWarning,
            stacklevel=2,
        )
        todo = [i for i in todo if str(df.at[i, "item_id"]) in by_id]

    bar = _progress(len(todo), f"scoring {scorer} v{task.version}", progress)
    done = [0]  # samples scored and committed so far (kept when a later batch raises)
    ran_before = sum(sandbox.runs_by_jail().values())
    try:
        with sandbox.hidden(Path(store.path).resolve().parent):  # programs can't read the store, or its neighbours
            _score_all(store, task, scorer, df, todo, by_id, workers, batch_size, bar, done)
    finally:
        if done[0] and sum(sandbox.runs_by_jail().values()) > ran_before:
            # the jail the programs behind these scores ran in, on record beside them in the store
            store.new_run(score_run(task, scorer, model, done[0], sandbox.isolation()))
    if bar is not None:
        bar.close()
    return done[0]


def _score_all(store, task, scorer, df, todo, by_id, workers, batch_size, bar, done: list[int]) -> None:
    for start in range(0, len(todo), batch_size):
        batch = todo[start : start + batch_size]
        pairs = [(by_id[str(df.at[i, "item_id"])], df.at[i, "text"] or "") for i in batch]
        scores = _score_batch(task, pairs, workers)
        rows = []
        for i, (item, _), s in zip(batch, pairs, scores):
            rows.append(
                {
                    **{k: df.at[i, k] for k in KEY},
                    "scorer": scorer,
                    "scorer_version": task.version,
                    "score": s.score,
                    "extracted": s.extracted,
                    "reason": s.reason,
                    "item_group": item.group,
                }
            )
        store.add_scores(rows)
        done[0] += len(rows)
        if bar is not None:
            bar.update(len(rows))


def _score_batch(task: Task, pairs: list[tuple[Item, str]], workers: int) -> list[Score]:
    try:
        try:
            scores = task.score_many(pairs, workers=workers)
        except TypeError:  # a task whose score_many takes no `workers`
            scores = task.score_many(pairs)
        if len(scores) == len(pairs):
            return scores
    except ENVIRONMENT_ERRORS:
        raise  # nothing is recorded; fix the environment and rerun (it resumes)
    except Exception:
        pass  # a scorer bug: fall back to one sample at a time, each failure costs only its sample
    return [task.safe_score(c, it) for it, c in pairs]


def _progress(total: int, desc: str, enabled: bool):
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, unit="sample")
