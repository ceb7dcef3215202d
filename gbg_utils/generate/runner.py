"""Greedy + N samples per item, into the store, resumably: the spine every notebook stands on.

    >>> store = SampleStore("outputs/store.sqlite")
    >>> summary = run_generation(store, "smollm2-135m", get_task("humaneval"), limit=5, n_samples=8, temperature=1.0)

Only what is missing is generated: a run whose samples are all stored never loads the model, a run killed
mid-way loses at most the `chunk_size` requests finished since the last commit (and those in flight), and
asking for more samples later extends the set (sample j's seed derives from the sample's identity, not from
how many were asked for). All missing requests of all configs stream through the backend together
(`Backend.stream`: vLLM keeps its engine full and hands each request back as it finishes).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tqdm.auto import tqdm

from ..decoding import DecodingConfig, greedy, item_seed
from ..identity import Engine, prompt_hash
from ..models import resolve_dtype
from ..provenance import generation_run
from ..store import Sample, SampleStore
from .backends import LazyBackend
from .base import BACKENDS, Backend, Request
from .errors import BackendError, Refused


@dataclass
class GenerationSummary:
    model: str
    benchmark: str
    generated: dict = field(default_factory=dict)  # config_key -> completions generated now
    reused: dict = field(default_factory=dict)  # config_key -> completions already stored
    wanted: dict = field(default_factory=dict)  # config_key -> samples per item this run asked for (greedy: 1)
    prompt_hashes: dict = field(default_factory=dict)  # item id -> hash of the prompt the model received
    engine: dict = field(default_factory=dict)  # the engine's identity (identity.Engine.identity())
    run_id: str | None = None
    loaded_model: bool = False
    # Requests the server refused (HTTP 400/413/422): {"item_id", "config_key", "first", "count", "error"} each.
    # Nothing is stored for them (a rerun asks again); the store's runs table records them (kind "refused").
    refused: list = field(default_factory=list)

    def __str__(self):
        gen, reuse = sum(self.generated.values()), sum(self.reused.values())
        out = f"{self.model} on {self.benchmark}: {gen} completions generated, {reuse} reused from the store" + (
            f" (run {self.run_id})" if self.run_id else " (model not loaded)"
        )
        if self.refused:
            out += f"; REFUSED by the server: {self._refused_text()} (asked again on the next run)"
        return out

    def _refused_text(self) -> str:
        return (
            ", ".join(f"item {r['item_id']} ({r['count']} completions)" for r in self.refused[:5])
            + (f" and {len(self.refused) - 5} more" if len(self.refused) > 5 else "")
            + f"; first error: {self.refused[0]['error']}"
        )

    def select(self, df):
        """Exactly the rows this run asked for: its items with their current prompts, its configs, and the
        first `wanted` sample indices of each. Raises if any is missing (nothing is silently short)."""
        import pandas as pd

        if df.empty:
            raise RuntimeError(f"{self.model} on {self.benchmark}: nothing stored")
        want = pd.DataFrame({"item_id": list(self.prompt_hashes), "prompt_hash": list(self.prompt_hashes.values())})
        out = df.merge(want, on=["item_id", "prompt_hash"], how="inner")
        n = out["config_key"].map(self.wanted)
        out = out[n.notna() & (out["sample_idx"] < n.fillna(0))]
        expected = len(self.prompt_hashes) * sum(self.wanted.values())
        if len(out) != expected:
            why = f"; the server refused {self._refused_text()}" if self.refused else ""
            raise RuntimeError(
                f"{self.model} on {self.benchmark}: {len(out)} stored samples match this run, {expected} expected{why}"
            )
        return out.reset_index(drop=True)


def missing_samples(
    store: SampleStore,
    model: str,
    benchmark: str,
    items,
    config_key: str,
    n: int,
    hashes: dict[str, str],
    logprobs: bool = False,
) -> list[tuple]:
    """(item, start, count) for every contiguous run of sample indices below n that is not stored with the
    item's current prompt hash and this config_key (decoding config + engine) -- and, if `logprobs`, with its
    mean log-prob: a sample stored without one is generated again (same seed) and its row filled in."""
    have = store.existing(model, benchmark, config_key, logprobs=logprobs)
    todo = []
    for item in items:
        got = have.get((str(item.id), hashes[str(item.id)]), set())
        j = 0
        while j < n:
            if j in got:
                j += 1
                continue
            k = j
            while k < n and k not in got:
                k += 1
            todo.append((item, j, k - j))
            j = k
    return todo


def as_backend(backend: Backend | Engine | str, model: str, dtype: str = "auto", options: dict | None = None) -> Backend:
    """A Backend for the run: a loaded one as it is; a name or an Engine as a LazyBackend (loads on first use)."""
    if isinstance(backend, Backend):
        return backend
    if isinstance(backend, str):
        if backend not in BACKENDS:  # before any tokenizer or model is touched
            raise BackendError(f"unknown backend {backend!r}: choose one of {', '.join(BACKENDS)}")
        backend = Engine(backend, model, resolve_dtype(dtype), options or {})
    return LazyBackend(backend)


def run_generation(
    store: SampleStore,
    model: str,
    task,
    items=None,
    *,
    n_samples: int = 8,
    include_greedy: bool = True,
    temperature: float = 1.0,
    top_p: float = 1.0,
    top_k: int = -1,
    repetition_penalty: float = 1.0,
    max_new_tokens: int | None = None,
    seed: int = 0,
    logprobs: bool = False,
    limit: int | None = None,
    subset_seed: int = 0,
    backend: Backend | Engine | str = "vllm",
    dtype: str = "auto",
    chunk_size: int = 32,
    data_dir: str | None = None,
    progress: bool = True,
    backend_options: dict | None = None,
) -> GenerationSummary:
    """Generate the greedy output (if asked) and samples 0..n_samples-1 for each item that lacks them.

    `items`: default `task.load(data_dir, limit, subset_seed)` (a limit draws a stratified seeded subset).
    `backend`: a name (loaded only if something is missing, and closed afterwards), an `Engine`, or a Backend
    (e.g. a `LazyBackend` shared by several runs; the caller closes it)."""
    items = items if items is not None else task.load(data_dir=data_dir, limit=limit, subset_seed=subset_seed)
    max_new_tokens = max_new_tokens or task.default_max_new_tokens
    stop = tuple(getattr(task, "stop", ()) or ())
    sampled = DecodingConfig(
        temperature=temperature,
        top_p=top_p,
        top_k=top_k,
        repetition_penalty=repetition_penalty,
        max_new_tokens=max_new_tokens,
        seed=seed,
        stop=stop,
        logprobs=logprobs,
    )
    # Temperature 0 is greedy: its one output is the greedy config's, never N copies of it.
    configs = ([(greedy(sampled), 1)] if include_greedy or sampled.greedy else []) + (
        [(sampled, n_samples)] if n_samples > 0 and not sampled.greedy else []
    )
    owned = not isinstance(backend, Backend)
    be = as_backend(backend, model, dtype, backend_options)
    engine = be.engine.identity()
    summary = GenerationSummary(model=model, benchmark=task.name, engine=engine)
    # The exact prompt each item's model receives: encoded once (tokenizer only), hashed into its identity.
    sent = {str(it.id): be.encode(task.prompt(it)) for it in items}
    summary.prompt_hashes = {i: prompt_hash(p) for i, p in sent.items()}
    try:
        # Everything missing, over all configs, goes to the backend as one stream (greedy and sampled together):
        # the engine stays full and no config waits for another's slowest sequence.
        jobs = []  # (config_key, config, item, first sample index, count)
        for config, n in configs:
            key = store.add_config(config, engine)
            summary.wanted[key] = n
            todo = missing_samples(store, model, task.name, items, key, n, summary.prompt_hashes, logprobs=config.logprobs)
            missing = sum(c for _, _, c in todo)
            summary.reused[key] = len(items) * n - missing
            summary.generated[key] = 0
            jobs += [(key, config, item, j, count) for item, j, count in todo]
        if not jobs:
            return summary
        summary.loaded_model = True
        run_configs = {key: config for key, config, *_ in jobs}
        summary.run_id = store.new_run(
            generation_run(be, task, model, sampling={k: be.sampling_settings(c) for k, c in run_configs.items()})
        )
        labels = ["greedy" if c.greedy else f"T={c.temperature:g} x{n}" for c, n in configs]
        bar = tqdm(
            total=sum(j[4] for j in jobs), desc=f"{task.name} {' + '.join(labels)}", unit="completion", disable=not progress
        )

        def requests():
            for _key, config, item, j, count in jobs:
                ids = sent[str(item.id)]
                seed = item_seed(model, task.name, str(item.id), config) + j
                ids = ids if isinstance(ids, list) and ids and isinstance(ids[0], int) else None
                yield Request(task.prompt(item), count, seed, ids), config

        rows, done = [], 0

        def commit():
            nonlocal rows
            if rows:
                store.add_samples(rows, summary.run_id)  # one transaction: all of these or none
                for r in rows:
                    summary.generated[r.config_key] += 1
                bar.update(len(rows))
                rows = []

        try:
            for idx, req, comps in be.stream(requests(), chunk_size=chunk_size):
                key, config, item, j, count = jobs[idx]
                if isinstance(comps, Refused):  # this request only: recorded, and the stream goes on
                    summary.refused.append(
                        {"item_id": str(item.id), "config_key": key, "first": j, "count": count, "error": str(comps)[:300]}
                    )
                    continue
                if len(comps) != count:
                    raise RuntimeError(f"backend returned {len(comps)} completions for {count} asked (item {item.id})")
                ph = summary.prompt_hashes[str(item.id)]
                rows += [
                    Sample(
                        model,
                        task.name,
                        str(item.id),
                        ph,
                        key,
                        j + k,
                        c.text,
                        c.n_tokens,
                        c.finish_reason,
                        c.mean_logprob,
                        req.seed + k,
                    )
                    for k, c in enumerate(comps)
                ]
                done += 1
                if done % chunk_size == 0:
                    commit()
        finally:
            commit()  # what finished is kept, even when the run stops on an error
            bar.close()
            if summary.refused:  # in the store (schema unchanged): a runs row beside the generation run's
                store.new_run({"kind": "refused", "generation_run": summary.run_id, "refused": summary.refused})
    finally:
        if owned:
            be.close()
    return summary
