"""The greedy-stability grid (notebooks/stability.ipynb): does the greedy output move with the engine -- backend,
dtype, batch size, vLLM's batch-invariant mode? Every point is its own engine, generated greedy-only into the
shared store, scored, and compared with the reference point (stats.agreement).

    >>> outputs, table = stability_grid.run(P)     # P = params.validate("stability", globals())
    >>> stability_grid.points(P)[0].label          # the reference point first
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
from dataclasses import dataclass

import pandas as pd

from .generate.backends import LazyBackend
from .generate.errors import BackendError
from .generate.runner import run_generation
from .identity import Engine
from .identity import batch_invariant as batch_invariant_env
from .params import grid_label
from .paths import PROJ_ROOT
from .store import SampleStore
from .study import with_inputs
from .tasks import get_task


@dataclass(frozen=True)
class GridPoint:
    """One engine setting of the stability grid: what generates the greedy output, everything else fixed."""

    backend: str
    dtype: str
    batch_size: int  # the most sequences decoded together: vLLM's max_num_seqs, the transformers backend's batch_size
    batch_invariant: bool = False  # vLLM's VLLM_BATCH_INVARIANT=1

    @property
    def label(self) -> str:
        return grid_label(self.backend, self.dtype, self.batch_size, self.batch_invariant)

    def options(self) -> dict:
        if self.backend == "vllm":
            return {"max_num_seqs": self.batch_size, **({"batch_invariant": True} if self.batch_invariant else {})}
        return {"batch_size": self.batch_size}

    def engine(self, model: str) -> Engine:
        return Engine(self.backend, model, self.dtype, self.options())


FACTORS = ["backend", "dtype", "batch_size", "batch_invariant"]


def points(P) -> list[GridPoint]:
    """The reference first, then backend x dtype x batch size in the parameters' order, then (P.batch_invariant)
    vLLM's batch-invariant mode at each dtype x batch size; less the points P.exclude names."""
    ref = GridPoint(P.reference_backend, P.reference_dtype, P.reference_batch_size)
    grid = [GridPoint(b, d, n) for b in P.backends for d in P.dtypes for n in P.batch_sizes]
    if P.batch_invariant:
        grid += [GridPoint("vllm", d, n, True) for d in P.dtypes for n in P.batch_sizes]
    return [ref] + [g for g in grid if g != ref and g.label not in P.exclude]


def run(P, progress: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Greedy outputs of every model x benchmark under every grid point (`points`), scored, and their
    agreement with the reference point (stats.agreement.agreement_table).

    Returns (outputs, table): `outputs` one row per (model, benchmark, grid point, item) with the grid factors,
    text, token_ids, extracted answer and score; `table` one row per (model, benchmark, grid point), a point that
    could not run here kept with its reason in `note` and no numbers.

    Each grid point is its own engine (backend, dtype, batch size, batch-invariant mode are all in the sample's
    identity), generated through `run_generation` (greedy only, resumable, shared with the other notebooks' store)
    and closed before the next one starts. Batch-invariant points run first, each in a fresh Python process: vLLM
    reads VLLM_BATCH_INVARIANT when it is imported and caches its environment once an engine has started, so the
    mode cannot be switched inside a process that has run vLLM (and would stay on for every later engine). On a CPU
    they are not run at all: a row with the reason in `note`.

    Token ids are NOT the ids the engine generated (the store keeps the text, not the ids): they are the stored
    text re-tokenised with the model's tokenizer (without special tokens). Identical texts give identical ids, so
    `exact_match` is exact-text agreement, and the first divergent position is counted in re-tokenised tokens;
    the text is the decoded output after stop-string truncation, on every backend alike."""
    from .generate.engine_settings import batch_invariance_unavailable
    from .generate.tokenization import load_tokenizer
    from .score.scoring import score_store
    from .stats.agreement import agreement_table

    store = SampleStore(P.store_path)
    grid = points(P)
    ref = grid[0]
    if batch_invariant_env() and any(g.backend == "vllm" and not g.batch_invariant for g in grid):
        raise RuntimeError(
            "VLLM_BATCH_INVARIANT is set in this environment: every vLLM point would run batch-invariant; unset it "
            "(the grid's batch-invariant points set it themselves, each in its own process)"
        )
    unavailable = batch_invariance_unavailable() if any(g.batch_invariant for g in grid) else None
    # Batch-invariant points (each in a fresh process) first, then vLLM, then transformers: on a GPU, an engine that
    # came before holds memory (torch's cache, an in-process vLLM core) that vLLM's start-up check would count as taken.
    order = sorted(grid, key=lambda g: (not g.batch_invariant, g.backend != "vllm"))
    frames, tables, runs = [], [], []
    for model in P.models:
        tok = load_tokenizer(model, ref.dtype)
        for bench in P.benchmarks:
            task = get_task(bench, P.protocol)
            items = task.load(data_dir=P.data_path, limit=P.limit, subset_seed=P.subset_seed)
            done, notes = {}, {}
            for g in order:
                if g.batch_invariant and unavailable:
                    notes[g] = unavailable
                    continue
                t0 = time.time()
                try:
                    summary = run_point(P, store, model, task, items, g, progress)
                except PointFailed as e:
                    notes[g] = str(e)
                    continue
                done[g] = (summary, time.time() - t0)
            score_store(store, task, items=items, progress=False)
            df = store.frame(model=model, benchmark=task.name, scorer_version=task.version, text=True)
            parts = []
            for g in grid:
                if g not in done:
                    continue
                summary, seconds = done[g]
                sel = summary.select(df)
                sel = sel.assign(point=g.label, **{f: getattr(g, f) for f in FACTORS})
                sel["token_ids"] = [tok(t or "", add_special_tokens=False).input_ids for t in sel["text"]]
                parts.append(sel)
                runs.append(
                    {
                        "model": model,
                        "benchmark": bench,
                        "point": g.label,
                        "engine": summary.engine,
                        "configs": summary.wanted,
                        "generated": sum(summary.generated.values()),
                        "seconds": round(seconds, 1),
                        "prompt_hashes": summary.prompt_hashes,
                    }
                )
            cols = [
                "model",
                "benchmark",
                "point",
                *FACTORS,
                "item_id",
                "group",
                "text",
                "token_ids",
                "extracted",
                "score",
                "n_tokens",
                "finish_reason",
                "config_key",
                "run_id",
                "scorer_version",
            ]
            out = pd.concat(parts, ignore_index=True)[cols] if parts else pd.DataFrame(columns=cols)
            frames.append(out)
            if ref not in done:
                raise RuntimeError(f"{model} on {bench}: the reference {ref.label} did not run: {notes.get(ref)}")
            table = agreement_table(out, ref.label, factors=FACTORS, n_boot=P.n_boot, seed=P.seed)
            secs = {r["point"]: r for r in runs if r["model"] == model and r["benchmark"] == bench}
            table["generated"] = table["point"].map(lambda p: secs[p]["generated"])
            table["seconds"] = table["point"].map(lambda p: secs[p]["seconds"])
            table["note"] = ""
            skipped = pd.DataFrame(
                [
                    {"point": g.label, **{f: getattr(g, f) for f in FACTORS}, "reference": False, "note": notes[g]}
                    for g in grid
                    if g in notes
                ]
            )
            table = pd.concat([table, skipped], ignore_index=True) if not skipped.empty else table
            table.insert(0, "benchmark", bench)
            table.insert(0, "model", model)
            tables.append(table)
    outputs = with_inputs(pd.concat(frames, ignore_index=True), runs)
    return outputs, pd.concat(tables, ignore_index=True)


class PointFailed(RuntimeError):
    """A grid point that could not run here (its reason is the table's note)."""


def run_point(P, store: SampleStore, model: str, task, items, g: GridPoint, progress: bool, isolated: bool | None = None):
    """Generate one grid point's greedy outputs, in-process or (`isolated`, default: batch-invariant points) in a
    fresh process, and return the run's summary (isolated: planned again here, where nothing is left to load)."""
    kw = dict(
        n_samples=0,
        include_greedy=True,
        repetition_penalty=P.repetition_penalty,
        max_new_tokens=P.max_new_tokens,
        seed=P.seed,
        chunk_size=max(32, g.batch_size),
    )  # a chunk holds a whole batch: the batch size is real
    if not (g.batch_invariant if isolated is None else isolated):
        be = LazyBackend(g.engine(model))
        try:
            return run_generation(store, model, task, items, backend=be, progress=progress, **kw)
        except BackendError as e:  # e.g. a dtype this backend cannot run here: a note in the table, not the end of the grid
            raise PointFailed(str(e)) from e
        finally:
            be.close()  # before the next grid point's engine starts
    spec = {
        "store": str(store.path),
        "model": model,
        "benchmark": task.name,
        "protocol": task.protocol,
        "data_dir": P.data_dir and str(P.data_path),
        "limit": P.limit,
        "subset_seed": P.subset_seed,
        "point": dataclasses.asdict(g),
        "kw": kw,
    }
    proc = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(spec)], capture_output=True, text=True, cwd=PROJ_ROOT)
    if proc.returncode != 0:
        lines = [x for x in proc.stderr.strip().splitlines() if x.strip()]
        raise PointFailed(f"failed in its own process: {lines[-1] if lines else f'exit {proc.returncode}'}")

    def refuse():
        raise RuntimeError(f"{g.label}: generated in a separate process, yet not all of it is stored")

    return run_generation(store, model, task, items, backend=LazyBackend(g.engine(model), loader=refuse), progress=False, **kw)


# What a batch-invariant grid point runs in its own process (run_point).
_CHILD = "import json, sys; from gbg_utils.stability_grid import generate_point; generate_point(json.loads(sys.argv[1]))"


def generate_point(spec: dict) -> None:
    g = GridPoint(**spec["point"])
    task = get_task(spec["benchmark"], spec["protocol"])
    items = task.load(data_dir=spec["data_dir"], limit=spec["limit"], subset_seed=spec["subset_seed"])
    be = LazyBackend(g.engine(spec["model"]))
    try:
        run_generation(SampleStore(spec["store"]), spec["model"], task, items, backend=be, progress=False, **spec["kw"])
    finally:
        be.close()
