"""The sample store at the paper's scale: 7 models x 6 benchmarks, greedy + 16-128 samples per item (~3.3 M rows).

Builds a synthetic store through the public API (`add_config`, `new_run`, `add_samples`, `add_scores`: one score
row per sample) with texts of drawn lengths (300-2000 characters, uniform), then measures, in one run:

* the insert rate (samples/s inside `add_samples`, scores/s inside `add_scores`, batches of `--batch`);
* one notebook's frame, `frame(model=, benchmark="gsm8k", scorer_version=)` -- GSM8K x 129 samples (greedy + 128)
  x 1,319 items = 170,151 rows -- without text (the default) and with `text=True`;
* the same benchmark for all 7 models (1.19 M rows, no text), and the resume look-ups the runner and the
  scorer make (`existing`, `scored_keys`; `samples(benchmark=)` with text, what `score_store` reads today, against
  `unscored`, which finds what is left to score in SQL);
* `gbg_utils.stats.gap_table` (1000 bootstrap resamples) over that one-model frame.

Times are the median of `--repeat` calls on a store just written (the OS page cache is warm; a cold disk reads
slower), wall clock and this process's CPU time (on a shared machine the wall clock includes waiting for a core).
Memory is `peak RSS +`: how far one call raises the peak resident set (VmHWM, reset through /proc/self/clear_refs)
above the resident set before it, in a fresh process (an RSS delta, not tracemalloc: pandas' string columns live in
Arrow buffers, which tracemalloc does not see).

    nice -n 19 python scripts/speed/bench_store.py                    # full scale (~3.3 M samples, ~6 GiB on disk)
    nice -n 19 python scripts/speed/bench_store.py --samples 200000   # quick: the GSM8K block of one model + a bit
    python scripts/speed/bench_store.py --path /big/disk/s.sqlite --keep   # build there and keep it; a rerun on a
                                                                           # complete store only measures
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from gbg_utils.decoding import DecodingConfig  # noqa: E402
from gbg_utils.identity import digest  # noqa: E402
from gbg_utils.stats import gap_table  # noqa: E402
from gbg_utils.store import Sample, SampleStore  # noqa: E402

MODELS = (
    "qwen2.5-coder-0.5b",
    "qwen2.5-coder-1.5b",
    "smollm2-135m",
    "smollm2-360m",
    "llama-3.1-8b-instruct",
    "mistral-7b-instruct-v0.3",
    "gemma-2-9b-it",
)
# (benchmark, items, sampled completions per item): greedy + these per item and model.
BENCHMARKS = (
    ("gsm8k", 1319, 128),
    ("mmlu_redux", 3000, 64),
    ("humaneval", 164, 128),
    ("mixeval", 2000, 16),
    ("mixeval_hard", 1000, 32),
    ("alpaca_eval", 805, 16),
)
FULL = len(MODELS) * sum(n_items * (1 + n) for _, n_items, n in BENCHMARKS)
SCORER_VERSION = "2"
WORDS = "the of and to a in is that answer so we have then total each step number therefore = + - * / 12 7 42 ####".split()


def _engine(model: str) -> dict:
    return {"backend": "vllm", "dtype": "bfloat16", "weights": {"kind": "hub", "repo": f"org/{model}", "revision": "0" * 40}}


def build(store: SampleStore, n_total: int, batch: int, seed: int = 0) -> dict:
    """Fill `store` with up to `n_total` samples (blocks of model x benchmark, the measured GSM8K block first)."""
    rng = np.random.default_rng(seed)
    pool = " ".join(rng.choice(WORDS, size=4_000_000))  # texts are slices of it at random offsets
    t_samples = t_scores = 0.0
    n_done = 0
    t0 = time.perf_counter()
    for model in MODELS:
        engine = _engine(model)
        run = store.new_run({"kind": "generation", "model": model, "synthetic": True})
        for bench, n_items, n in BENCHMARKS:
            keys = [(store.add_config(DecodingConfig(max_new_tokens=1024), engine), 1)]
            keys.append((store.add_config(DecodingConfig(temperature=1.0, n=n, max_new_tokens=1024), engine), n))
            rows: list[Sample] = []

            def flush():
                nonlocal t_samples, t_scores, n_done
                scores = [
                    {
                        "model": s.model,
                        "benchmark": s.benchmark,
                        "item_id": s.item_id,
                        "prompt_hash": s.prompt_hash,
                        "config_key": s.config_key,
                        "sample_idx": s.sample_idx,
                        "scorer": s.benchmark,
                        "scorer_version": SCORER_VERSION,
                        "score": float(len(s.text) % 3 == 0),
                        "extracted": s.text[-6:],
                        "reason": None,
                        "item_group": None,
                    }
                    for s in rows
                ]
                a = time.perf_counter()
                store.add_samples(rows, run)
                b = time.perf_counter()
                store.add_scores(scores)
                t_samples, t_scores = t_samples + b - a, t_scores + time.perf_counter() - b
                n_done += len(rows)
                rows.clear()

            for i in range(n_items):
                ph = digest({"sent": [model, bench, i]})
                for key, count in keys:
                    if n_done + len(rows) >= n_total:
                        break
                    lens = rng.integers(300, 2001, size=count)
                    offs = rng.integers(0, len(pool) - 2001, size=count)
                    for j in range(min(count, n_total - n_done - len(rows))):
                        text = pool[offs[j] : offs[j] + lens[j]]
                        rows.append(Sample(model, bench, str(i), ph, key, j, text, int(lens[j]) // 4, "stop", -0.5, j))
                if len(rows) >= batch:
                    flush()
            if rows:
                flush()
            if n_done >= n_total:
                return dict(n=n_done, wall=time.perf_counter() - t0, t_samples=t_samples, t_scores=t_scores)
    return dict(n=n_done, wall=time.perf_counter() - t0, t_samples=t_samples, t_scores=t_scores)


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _jobs(store: SampleStore) -> dict:
    """name -> (label, what to compute first, the measured call taking it)."""
    model, bench = MODELS[0], BENCHMARKS[0][0]

    def frame(text=False, **kw):
        return store.frame(benchmark=bench, scorer_version=SCORER_VERSION, text=text, **kw)

    def sampled_key():
        return next(k for k, t in store.configs().set_index("config_key")["temperature"].items() if t > 0)

    return {
        "frame": (f"frame {model} x {bench}, no text", None, lambda _: frame(model=model)),
        "frame_text": (f"frame {model} x {bench}, text=True", None, lambda _: frame(True, model=model)),
        "frame_all": (f"frame all models x {bench}, no text", None, lambda _: frame()),
        "existing": ("existing(model, gsm8k, sampled key)", sampled_key, lambda k: store.existing(model, bench, k)),
        "scored_keys": ("scored_keys(gsm8k, version, gsm8k)", None, lambda _: store.scored_keys(bench, SCORER_VERSION, bench)),
        # what score_store reads before it knows what is left to score: every model's samples, with text
        "samples_all": (f"samples(benchmark={bench}), text", None, lambda _: store.samples(benchmark=bench)),
        # what is left, found in SQL: nothing, here (every sample is scored)
        "unscored": (
            f"unscored({bench}, version, benchmark={bench})",
            None,
            lambda _: store.unscored(bench, SCORER_VERSION, benchmark=bench),
        ),
        "gap": ("gap_table(that frame, n_boot=1000)", lambda: frame(model=model), lambda df: gap_table(df, n_boot=1000)),
    }


def _peak_rss(path: str, name: str) -> int | None:
    """In a fresh process: how far one call raises the peak resident set (VmHWM) above the RSS before it."""
    store = SampleStore(path)
    _, prep, fn = _jobs(store)[name]
    arg = prep() if prep else None
    gc.collect()
    try:
        Path("/proc/self/clear_refs").write_text("5")  # Linux: resets VmHWM to the current RSS
    except OSError:
        return None
    before = _status_kb("VmRSS")
    fn(arg)
    return (_status_kb("VmHWM") - before) * 1024


def measure(store: SampleStore, name: str, repeat: int) -> dict:
    """Median wall and CPU seconds over `repeat` calls here, and the peak RSS rise of one call in a fresh process."""
    _, prep, fn = _jobs(store)[name]
    arg = prep() if prep else None
    times, cpu = [], []
    for _ in range(repeat):
        gc.collect()
        t, c = time.perf_counter(), time.process_time()
        out = fn(arg)
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    # a fresh interpreter for the memory figure: in this one, freed memory would be reused and hide the peak
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        rss = pool.submit(_peak_rss, str(store.path), name).result()
    return dict(s=statistics.median(times), cpu=statistics.median(cpu), rss=rss, out=out)


def _mb(b) -> str:
    return "-" if b is None else f"{b / 2**20:,.0f} MB"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=FULL, help=f"samples in the store (default {FULL:,}: the paper's scale)")
    ap.add_argument("--path", default=None, help="store file (default: a temporary folder, removed afterwards)")
    ap.add_argument("--keep", action="store_true", help="keep the store at --path")
    ap.add_argument("--batch", type=int, default=4096, help="samples per add_samples call (the runner writes ~32 items' worth)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    if args.samples < 1:
        ap.error("--samples must be >= 1")
    tmp = None
    if args.path is None:
        tmp = tempfile.TemporaryDirectory(prefix="gbg-bench-store-")
        path = Path(tmp.name) / "store.sqlite"
    else:
        path = Path(args.path)
    store = SampleStore(path)
    have = store.counts()["samples"]
    if have and have != args.samples:
        print(f"bench_store: {path} holds {have:,} samples, not {args.samples:,}: pass another --path", file=sys.stderr)
        return 2
    rows = []
    if not have:
        b = build(store, args.samples, args.batch)
        rows.append(("insert samples (add_samples)", f"{b['n'] / b['t_samples']:,.0f} samples/s", "", ""))
        rows.append(("insert scores (add_scores)", f"{b['n'] / b['t_scores']:,.0f} rows/s", "", ""))
        rows.append(("build, all in", f"{b['wall']:,.0f} s", "", f"{b['n']:,} samples"))
    size = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
    outs = {}
    for name, (label, _, _) in _jobs(store).items():
        m = measure(store, name, args.repeat)
        out = m.pop("out")
        if name in ("frame", "frame_text"):
            outs[name] = out
        shape = f"{len(out):,} rows" + (f" x {out.shape[1]} cols" if hasattr(out, "shape") else "")
        rows.append((label, f"{m['s']:.2f} s (cpu {m['cpu']:.2f} s)", _mb(m["rss"]), shape))
    df, with_text = outs["frame"], outs["frame_text"]
    assert "text" not in df.columns and "text" in with_text.columns and len(df) == len(with_text), "text=False/True differ"

    print(f"\nstore {path}: {args.samples:,} samples, {size / 2**30:.2f} GiB on disk (with -wal)")
    w = max(len(r[0]) for r in rows)
    print(f"{'':{w}}  {'median wall (cpu) / rate':>28}  {'peak RSS +':>10}  result")
    for r in rows:
        print(f"{r[0]:{w}}  {r[1]:>28}  {r[2]:>10}  {r[3]}")
    if tmp is not None:
        tmp.cleanup()
    elif not args.keep and not have:
        for p in path.parent.glob(path.name + "*"):
            p.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
