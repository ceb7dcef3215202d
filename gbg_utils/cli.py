"""`gbg` on the command line.

    gbg models                         # the embedded models and whether they are materialised
    gbg tasks                          # the benchmarks
    gbg generate --model smollm2-135m --benchmark humaneval --limit 5 --n-samples 4
    gbg score --benchmark humaneval    # score what is stored, resumably
    gbg demo                           # greedy + 8 samples on 5 HumanEval problems with the default model
    gbg list                           # the research notebooks and their params files
    gbg run all --params offline       # run them with papermill into outputs/<run>/, with an HTML report
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .models import DEFAULT_MODEL, EMBEDDED, ModelError, cache_dir

PROJ_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_STORE = PROJ_ROOT / "outputs" / "store.sqlite"


def _add_generation_args(p: argparse.ArgumentParser, limit: int | None = None, n: int = 8) -> None:
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"embedded name ({', '.join(EMBEDDED)}), hub id or local HF folder")
    p.add_argument("--benchmark", default="humaneval")
    p.add_argument("--backend", default="vllm", help="vllm | transformers | openai")
    p.add_argument("--limit", type=int, default=limit, help="first N items only")
    p.add_argument("--n-samples", type=int, default=n)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--top-k", type=int, default=-1)
    p.add_argument("--repetition-penalty", type=float, default=1.0)
    p.add_argument("--max-new-tokens", type=int, default=None, help="default: the benchmark's")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dtype", default="bfloat16")
    p.add_argument("--no-greedy", action="store_true", help="samples only")
    p.add_argument("--base-url", default=None, help="openai backend: server URL, e.g. http://127.0.0.1:8000/v1")
    p.add_argument("--store", default=str(DEFAULT_STORE))
    p.add_argument("--data-dir", default=None, help="benchmark data folder (default: $GBG_DATA_DIR, packages, then the hub)")


def cmd_models(args) -> int:
    print(f"cache: {cache_dir()}")
    for name, m in EMBEDDED.items():
        done = [d.name.split("-")[-1] for d in (cache_dir() / "models").glob(f"{name}-*") if (d / "gbg_model.json").is_file()]
        default = " (default)" if name == DEFAULT_MODEL else ""
        print(f"  {name:22s}{default:10s} {m.hf_id:40s} materialised: {', '.join(done) or 'no'}")
    return 0


def cmd_tasks(args) -> int:
    from .tasks import get_task, list_tasks

    for name in list_tasks():
        t = get_task(name)
        judged = " [LLM judge]" if getattr(t, "judged", False) else ""
        print(f"  {name:14s} v{t.version}  {t.description}{judged}")
    return 0


def cmd_generate(args, *, score: bool = False) -> int:
    from .runner import run_generation
    from .store import SampleStore
    from .tasks import get_task

    task = get_task(args.benchmark)
    store = SampleStore(args.store)
    opts = {"base_url": args.base_url} if args.backend == "openai" else {}
    summary = run_generation(
        store, args.model, task, n_samples=args.n_samples, include_greedy=not args.no_greedy, temperature=args.temperature,
        top_p=args.top_p, top_k=args.top_k, repetition_penalty=args.repetition_penalty, max_new_tokens=args.max_new_tokens,
        seed=args.seed, limit=args.limit, backend=args.backend, dtype=args.dtype, data_dir=args.data_dir, backend_options=opts,
    )
    print(summary)
    if score:
        _score_and_report(store, task, args)
    print(f"stored in {store.path}")
    return 0


def _score_and_report(store, task, args) -> None:
    from .scoring import score_store

    n = score_store(store, task, data_dir=args.data_dir)
    print(f"scored {n} new completions of {task.name}")
    df = store.frame(benchmark=task.name, model=args.model)
    if df.empty:
        return
    from .stats import gap_table

    gap = gap_table(df, n_boot=0)  # one row per sampled config, each against its greedy twin
    if gap.empty:
        print(f"{task.name}: greedy {df[df['greedy']]['score'].mean():.3f} on {df['item_id'].nunique()} items")
    for r in gap.itertuples():
        print(f"{task.name}: greedy {r.greedy:.3f} | sampling mean {r.mean:.3f} ± {r.std:.3f} (std over {r.n_runs} runs at "
              f"T={r.temperature:g}), best {r.best:.3f}, worst {r.worst:.3f} — {r.n_items} items, model {r.model}")


def cmd_score(args) -> int:
    from .store import SampleStore
    from .tasks import get_task

    store = SampleStore(args.store)
    _score_and_report(store, get_task(args.benchmark), args)
    return 0


def cmd_run(args) -> int:
    from .notebooks import run_notebooks

    names = "all" if args.notebooks == ["all"] else args.notebooks
    results = run_notebooks(names, args.params, run_dir=args.out)
    failed = [r for r in results if r.status != "ok"]
    for r in failed:
        print(f"gbg: notebook {r.name} failed; partial output: {r.output}", file=sys.stderr)
    return 1 if failed else 0


def cmd_list(args) -> int:
    from .params import NOTEBOOKS, PARAMS_DIR

    for n in NOTEBOOKS:
        variants = sorted(p.stem for p in (PARAMS_DIR / n).glob("*.yaml"))
        print(f"  {n:12s} params: {', '.join(variants)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="gbg", description="Greedy vs sampled decoding, measured.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("models", help="list the embedded models").set_defaults(fn=cmd_models)
    sub.add_parser("tasks", help="list the benchmarks").set_defaults(fn=cmd_tasks)
    g = sub.add_parser("generate", help="greedy + N samples per item into the store")
    _add_generation_args(g)
    g.add_argument("--score", action="store_true", help="score afterwards")
    g.set_defaults(fn=lambda a: cmd_generate(a, score=a.score))
    s = sub.add_parser("score", help="score the stored samples of a benchmark")
    s.add_argument("--benchmark", required=True)
    s.add_argument("--model", default=DEFAULT_MODEL)
    s.add_argument("--store", default=str(DEFAULT_STORE))
    s.add_argument("--data-dir", default=None)
    s.set_defaults(fn=cmd_score)
    d = sub.add_parser("demo", help="the README's main job before the notebooks: 5 HumanEval problems, greedy + 8 samples, scored")
    _add_generation_args(d, limit=5, n=8)
    d.set_defaults(fn=lambda a: cmd_generate(a, score=True))
    r = sub.add_parser("run", help="run research notebooks with papermill and build an HTML report")
    r.add_argument("notebooks", nargs="+", help="notebook names, or 'all'")
    r.add_argument("--params", default="offline", help="params/<notebook>/<NAME>.yaml (smoke | offline | paper) or a path")
    r.add_argument("--out", default=None, help="run folder (default outputs/<date>-<params>)")
    r.set_defaults(fn=cmd_run)
    sub.add_parser("list", help="the notebooks and their params files").set_defaults(fn=cmd_list)
    args = ap.parse_args(argv)
    try:
        return args.fn(args)
    except (ModelError, ValueError, RuntimeError, FileNotFoundError) as e:
        # Errors gbg raises for bad input read as one line; anything else keeps its traceback.
        if os.environ.get("GBG_DEBUG"):
            raise
        print(f"gbg: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
