"""Reward scores for stored completions (best-of-N): the store pass over the reward models of reward_models.py.

    >>> rm = load_reward_model("armorm")                          # score/reward_models.py
    >>> summary = score_rewards(store, get_task("gsm8k"), rm, model="llama3-8b", only=df)
    >>> store.frame(extra_scorers=[rm.scorer])                    # adds a `reward:ArmoRM-Llama3-8B-v0.1` column

What is scored: the samples of `only` (a notebook's selection), or every stored sample of the model; texts are
read only for samples still to score. The conversation is the task's prompt plus the completion (`conversation`).

Resuming: each chunk of scores is one `store.add_scores` transaction, and a rerun skips the keys already
scored under (`reward:<name>`, REWARD_VERSION). A killed run loses at most the chunk it was working on.
Provenance (model path, dtype, device, versions, revision, selection) goes into the store's `runs` table as a run
of kind "reward". The scores table has no run id, so the link is the scorer name and version.
"""

import json
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..provenance import reward_run
from ..tasks.base import PrefilledChat
from .reward_models import REWARD_VERSION, RewardModel


@dataclass
class RewardSummary:
    scorer: str
    scorer_version: str
    scored: int = 0  # samples scored now
    reused: int = 0  # samples already scored in the store
    too_long: int = 0  # scored now as NULL: longer than the reward model's max_length
    run_id: str | None = None

    def __str__(self):
        return (
            f"{self.scorer} v{self.scorer_version}: {self.scored} samples scored, {self.reused} reused"
            + (f", {self.too_long} too long (NULL)" if self.too_long else "")
            + (f" (run {self.run_id})" if self.run_id else "")
        )


def conversation(task, item, completion: str) -> list[dict]:
    """The chat the reward model scores: the task's prompt messages plus the completion as the assistant turn. A
    raw-text prompt (HumanEval nochat) is the user turn, as the paper's reward scripts had it; a prefilled assistant
    turn (GSM8K's "Answer:") leads the reply."""
    prompt = task.prompt(item)
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}, {"role": "assistant", "content": completion}]
    if isinstance(prompt, PrefilledChat):
        return prompt.message_list() + [{"role": "assistant", "content": prompt.prefill + completion}]
    return list(prompt) + [{"role": "assistant", "content": completion}]


def score_rewards(
    store,
    task,
    reward_model: RewardModel,
    model: str | None = None,
    batch_size: int = 8,
    items=None,
    progress: bool = True,
    config_key: str | None = None,
    chunk_size: int | None = None,
    data_dir=None,
    only=None,
) -> RewardSummary:
    """Score every stored completion of `task` (optionally one policy `model` / `config_key`) not yet scored.

    `items` restricts scoring to those items (default: all of `task.load(data_dir)`); `only`, a frame with the
    store's KEY columns (e.g. what `study.generate_and_score` returned), to exactly those samples. The work is sorted by
    length and written every `chunk_size` samples (default 4 batches) in one transaction each.
    >>> print(score_rewards(store, get_task("humaneval"), rm, model="smollm2-135m"))
    reward:ArmoRM-Llama3-8B-v0.1 v1: 2640 samples scored, 0 reused (run 20250101-...)
    """
    from tqdm.auto import tqdm

    from ..store import KEY

    summary = RewardSummary(reward_model.scorer, REWARD_VERSION)
    # Keys first (no texts), from the selection's own (model, config) groups only; texts later, of the work left.
    if only is not None:
        sel = only[only["benchmark"] == task.name] if "benchmark" in only.columns else only
        groups = sorted(set(zip(sel["model"], sel["config_key"])))
        groups = [(m, ck) for m, ck in groups if model in (None, m) and config_key in (None, ck)]
        parts = [store.samples(model=m, benchmark=task.name, config_key=ck, text=False) for m, ck in groups]
        df = pd.concat(parts, ignore_index=True) if parts else store.samples(benchmark=task.name, text=False).iloc[:0]
        df = df.merge(sel[list(KEY)].drop_duplicates(), on=list(KEY), how="inner")
    else:
        df = store.samples(model=model, benchmark=task.name, config_key=config_key, text=False)
    if items is not None:
        df = df[df["item_id"].isin({str(it.id) for it in items})]
    df = df.reset_index(drop=True)
    done = store.scored_keys(summary.scorer, REWARD_VERSION, benchmark=task.name)
    keys = list(zip(*(df[k].astype(int) if k == "sample_idx" else df[k].astype(str) for k in KEY)))
    todo = [i for i, k in enumerate(keys) if k not in done]
    summary.reused = len(keys) - len(todo)
    if not todo:
        return summary
    by_id = {str(it.id): it for it in (items if items is not None else task.load(data_dir=data_dir))}
    missing = sorted({df["item_id"].iat[i] for i in todo} - set(by_id))
    if missing:
        raise ValueError(
            f"{len(missing)} stored item ids are not in task {task.name!r} (e.g. {missing[:3]}); "
            "the prompt cannot be rebuilt: load the same data the samples came from"
        )
    bad = sorted(_stale_prompts(store, task, df.iloc[todo], by_id))
    if bad:
        raise ValueError(
            f"task {task.name!r} v{getattr(task, 'version', '?')} builds a different prompt than the one the "
            f"samples of {len(bad)} items were generated with (e.g. {bad[:3]}); the reward model would judge "
            "a prompt the policy never saw"
        )

    text = _texts(store, task.name, df, todo)
    # int32 arrays: a benchmark's worth of encoded samples (MMLU x 16) stays in memory at a tenth of list size
    ids = {
        i: np.asarray(reward_model.encode(conversation(task, by_id[df["item_id"].iat[i]], text[i])), np.int32)
        for i in tqdm(todo, desc="tokenising", unit="sample", disable=not progress)
    }
    todo.sort(key=lambda i: -len(ids[i]))  # global length order: the least padding
    summary.run_id = store.new_run(_provenance(reward_model, task, model, df.iloc[todo]))
    chunk_size = chunk_size or 4 * batch_size
    bar = tqdm(total=len(todo), desc=f"{task.name} {summary.scorer}", unit="sample", disable=not progress)
    for start in range(0, len(todo), chunk_size):
        chunk = todo[start : start + chunk_size]
        rewards = reward_model.score_ids([ids[i] for i in chunk], batch_size)
        rows = []
        for i, r in zip(chunk, rewards):
            ok = not math.isnan(r)
            long = reward_model.max_length is not None and len(ids[i]) > reward_model.max_length
            summary.too_long += long
            reason = (
                f"too long: {len(ids[i])} tokens > max_length {reward_model.max_length}"
                if long
                else None
                if ok
                else "the reward model returned NaN"
            )
            rows.append(
                dict(
                    zip(KEY, keys[i]),
                    scorer=summary.scorer,
                    scorer_version=REWARD_VERSION,
                    score=r if ok else None,
                    reason=reason,
                )
            )
        store.add_scores(rows)  # one transaction: a kill loses this chunk at most
        summary.scored += len(rows)
        bar.update(len(rows))
    bar.close()
    return summary


def _stale_prompts(store, task, df, by_id) -> set[str]:
    """Items whose stored prompt hash is not what the policy's engine receives for the task's prompt now."""
    from ..generate.backends import LazyBackend
    from ..identity import Engine, prompt_hash

    cfg = store.configs().set_index("config_key")
    expected: dict[tuple, str] = {}  # (engine, item) -> hash: a greedy and a sampled config share one engine
    encoders: dict[Engine, LazyBackend] = {}  # one tokenizer per engine, not per config
    bad = set()
    for (model, ck), grp in df.groupby(["model", "config_key"]):
        eng = json.loads(cfg.at[ck, "engine"]) if ck in cfg.index and isinstance(cfg.at[ck, "engine"], str) else {}
        engine = Engine(eng.get("backend", "vllm"), model, eng.get("dtype") or "bfloat16")
        be = encoders.setdefault(engine, LazyBackend(engine))
        for item_id, ph in set(zip(grp["item_id"], grp["prompt_hash"])):
            if (engine, item_id) not in expected:
                expected[engine, item_id] = prompt_hash(be.encode(task.prompt(by_id[item_id])))
            if expected[engine, item_id] != ph:
                bad.add(item_id)
    return bad


def _texts(store, benchmark: str, df, todo: list[int]) -> dict[int, str]:
    """The completions of rows `todo` of `df`, read per (model, config) group that has work left."""
    from ..store import KEY

    out = {}
    work = df.iloc[todo].assign(_row=todo)
    for (m, ck), grp in work.groupby(["model", "config_key"]):
        texts = store.samples(model=m, benchmark=benchmark, config_key=ck)[list(KEY) + ["text"]]
        got = grp.merge(texts, on=list(KEY), how="left")
        out.update(zip(got["_row"], got["text"]))
    return out


def _provenance(rm: RewardModel, task, model: str | None, scored) -> dict:
    """The reward run's record, with what it scored: the policies, configs, items and number of samples."""
    return {
        **reward_run(rm, task, model, REWARD_VERSION),
        "selection": {
            "models": sorted(set(scored["model"])),
            "config_keys": sorted(set(scored["config_key"])),
            "items": int(scored["item_id"].nunique()),
            "samples": len(scored),
        },
    }
