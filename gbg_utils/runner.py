"""Greedy + N samples per item, into the store, resumably: the spine every notebook stands on.

    >>> store = SampleStore("outputs/store.sqlite")
    >>> summary = run_generation(store, "smollm2-135m", get_task("humaneval"), limit=5, n_samples=8, temperature=1.0)

Only what is missing is generated: a run whose samples are all stored never loads the model, a run killed
mid-way loses at most the chunk in flight, and asking for more samples later extends the set (sample j's
seed derives from the sample's identity, not from how many were asked for).
"""
from __future__ import annotations

import datetime as _dt
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from tqdm.auto import tqdm

from .decoding import DecodingConfig, greedy, item_seed
from .generation import Backend, Request, load_backend, prompt_hash
from .store import Sample, SampleStore

PROJ_ROOT = Path(__file__).resolve().parents[1]


@dataclass
class GenerationSummary:
    model: str
    benchmark: str
    generated: dict = field(default_factory=dict)  # config_key -> completions generated now
    reused: dict = field(default_factory=dict)  # config_key -> completions already stored
    run_id: str | None = None
    loaded_model: bool = False

    def __str__(self):
        gen, reuse = sum(self.generated.values()), sum(self.reused.values())
        return f"{self.model} on {self.benchmark}: {gen} completions generated, {reuse} reused from the store" + (
            f" (run {self.run_id})" if self.run_id else " (model not loaded)")


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(PROJ_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        if out.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(PROJ_ROOT), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, timeout=5).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def plan(store: SampleStore, model: str, benchmark: str, items, config: DecodingConfig, n: int) -> list[tuple]:
    """(item, start, count) for every contiguous run of missing sample indices below n."""
    have = store.existing(model, benchmark, config.key)
    todo = []
    for item in items:
        got = have.get(str(item.id), set())
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


def run_generation(store: SampleStore, model: str, task, items=None, *, n_samples: int = 8, include_greedy: bool = True,
                   temperature: float = 1.0, top_p: float = 1.0, top_k: int = -1, repetition_penalty: float = 1.0,
                   max_new_tokens: int | None = None, seed: int = 0, logprobs: bool = False, limit: int | None = None,
                   backend: Backend | str | Callable[[], Backend] = "vllm", dtype: str = "bfloat16", chunk_size: int = 32,
                   data_dir: str | None = None, progress: bool = True, backend_options: dict | None = None) -> GenerationSummary:
    """Generate the greedy output (if asked) and samples 0..n_samples-1 for each item that lacks them."""
    items = items if items is not None else task.load(data_dir=data_dir, limit=limit)
    max_new_tokens = max_new_tokens or task.default_max_new_tokens
    stop = tuple(getattr(task, "stop", ()) or ())
    sampled = DecodingConfig(temperature=temperature, top_p=top_p, top_k=top_k, repetition_penalty=repetition_penalty,
                             max_new_tokens=max_new_tokens, seed=seed, stop=stop, logprobs=logprobs)
    # Temperature 0 is greedy: its one output is the greedy config's, never N copies of it.
    configs = ([(greedy(sampled), 1)] if include_greedy or sampled.greedy else []) + (
        [(sampled, n_samples)] if n_samples > 0 and not sampled.greedy else [])
    summary = GenerationSummary(model=model, benchmark=task.name)
    state = {"backend": backend if isinstance(backend, Backend) else None}

    def get_backend() -> Backend:
        if state["backend"] is None:
            if callable(backend) and not isinstance(backend, str):
                state["backend"] = backend()
            else:
                state["backend"] = load_backend(backend, model, dtype=dtype, **(backend_options or {}))
            summary.loaded_model = True
        return state["backend"]

    for config, n in configs:
        store.add_config(config)
        todo = plan(store, model, task.name, items, config, n)
        total = len(items) * n
        missing = sum(c for _, _, c in todo)
        summary.reused[config.key] = total - missing
        summary.generated[config.key] = 0
        if not todo:
            continue
        be = get_backend()
        if summary.run_id is None:
            summary.run_id = store.new_run(provenance(be, task, model))
        label = "greedy" if config.greedy else f"T={config.temperature} x{n}"
        bar = tqdm(total=missing, desc=f"{task.name} {label}", unit="completion", disable=not progress)
        for start in range(0, len(todo), chunk_size):
            chunk = todo[start:start + chunk_size]
            reqs = []
            for item, j, count in chunk:
                seed = item_seed(model, task.name, str(item.id), config) + j
                reqs.append(Request(task.prompt(item), count, seed))
            outs = be.generate(reqs, config)
            rows = []
            for (item, j, count), req, comps in zip(chunk, reqs, outs):
                if len(comps) != count:
                    raise RuntimeError(f"backend returned {len(comps)} completions for {count} asked (item {item.id})")
                ph = prompt_hash(req.prompt)
                rows += [Sample(model, task.name, str(item.id), config.key, j + k, c.text, c.n_tokens, c.finish_reason,
                                c.mean_logprob, req.seed + k, ph) for k, c in enumerate(comps)]
            store.add_samples(rows, summary.run_id)  # one transaction per chunk: all of it or none
            summary.generated[config.key] += len(rows)
            bar.update(len(rows))
        bar.close()
    return summary


def provenance(backend: Backend, task, model: str) -> dict:
    from . import __version__

    return {
        "gbg_version": __version__, "git_commit": git_commit(), "model": model, "task": task.name,
        "task_version": getattr(task, "version", None), "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        **backend.provenance(),
    }
