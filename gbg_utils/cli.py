"""`gbg` on the command line.

gbg models                         # the embedded models and whether they are materialised
gbg tasks                          # the benchmarks
gbg generate --model smollm2-135m --benchmark humaneval --limit 5 --n-samples 4
gbg score --benchmark humaneval    # score what is stored, resumably
gbg demo                           # greedy + 8 samples on 5 HumanEval problems with the default model
gbg list                           # the research notebooks and their params files
gbg params gap                     # a notebook's parameters: types, defaults, help (papermill --help-notebook)
gbg run all --params offline       # run them with papermill into outputs/<run>/, with an HTML report
gbg run gap --params offline -f my.yaml -p n_samples 16 -p limit 30   # layered like papermill's -f and -p
gbg generate --benchmark gsm8k --items 0:660 --store a.sqlite          # one machine's share of the items ...
gbg store merge all.sqlite a.sqlite b.sqlite                           # ... and the shares into one store
gbg plan --benchmark humaneval     # items and samples needed to detect a gap, from the stored pilot
"""

from __future__ import annotations

import argparse
import os
import sys

from .models import DEFAULT_MODEL, EMBEDDED, ModelError, cache_dir
from .paths import OUTPUTS, PROJ_ROOT

DEFAULT_STORE = OUTPUTS / "store.sqlite"


def _add_generation_args(p: argparse.ArgumentParser, limit: int | None = None, n: int = 8) -> None:
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"embedded name ({', '.join(EMBEDDED)}), hub id or local HF folder")
    p.add_argument("--benchmark", default="humaneval")
    _add_protocol_arg(p)
    p.add_argument("--backend", default="vllm", help="vllm | transformers | openai")
    p.add_argument(
        "--limit",
        type=int,
        default=limit,
        help="N items, a seeded draw stratified by the benchmark's groups (subject, source, format); default: all",
    )
    p.add_argument("--subset-seed", type=int, default=0, help="which items --limit draws (same seed, same items)")
    p.add_argument(
        "--items",
        default=None,
        metavar="START:END",
        help="items START..END-1 only, in the benchmark's order (with --limit: of the drawn items), e.g. 0:660",
    )
    p.add_argument("--n-samples", type=int, default=n, help="samples per item, >= 1 (greedy only: --temperature 0)")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--top-k", type=int, default=-1)
    p.add_argument("--repetition-penalty", type=float, default=1.0)
    p.add_argument("--max-new-tokens", type=int, default=None, help="default: the benchmark's")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--dtype", default="auto", help="auto (bfloat16 where the hardware has it, else float32) | bfloat16 | float32 | float16"
    )
    p.add_argument("--no-greedy", action="store_true", help="samples only")
    p.add_argument("--base-url", default=None, help="openai backend: server URL, e.g. http://127.0.0.1:8000/v1")
    p.add_argument("--store", default=str(DEFAULT_STORE))
    p.add_argument("--data-dir", default=None, help="benchmark data folder (default: $GBG_DATA_DIR, packages, then the hub)")


def _add_protocol_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--protocol",
        default="paper",
        choices=("paper", "gbg"),
        help="paper: the harness Song et al. ran (prompts, stops, answer rules); gbg: gbg's own (docs/benchmarks.md)",
    )


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
        for proto, spec in t.protocols.items():
            print(f"      {proto:6s} {spec.harness}; rule {spec.rule}")
    return 0


def _flag(field: str) -> str:
    return "--" + field.replace("_", "-")


def _check_data_dir(data_dir: str | None, name: str = "--data-dir") -> None:
    # A missing folder must not fall through to the next source (HumanEval's packaged copy, the hub).
    if data_dir is not None and not os.path.isdir(os.path.expanduser(data_dir)):
        raise ValueError(f"{name} {data_dir} is not a folder")


def _check_generation_args(args) -> None:
    """Every number of a generation run, before the task's data, the store or a model is touched."""
    from .decoding import check_decoding
    from .models import check_model_name
    from .tasks.subsets import check_limit

    if args.backend != "openai":  # a server's model is named as the server serves it
        check_model_name(args.model)
    check_limit(args.limit, "--limit")
    if args.n_samples < 1:
        raise ValueError(f"--n-samples must be >= 1 (for greedy only: --temperature 0), got {args.n_samples}")
    check_decoding(
        temperature=args.temperature,
        top_p=args.top_p,
        top_k=args.top_k,
        repetition_penalty=args.repetition_penalty,
        max_new_tokens=args.max_new_tokens,
        name=_flag,
        default_tokens="leave it out for the benchmark's default",
    )
    _check_data_dir(args.data_dir)


def cmd_generate(args, *, score: bool = False) -> int:
    from .generate.runner import run_generation
    from .store import SampleStore
    from .tasks import get_task
    from .tasks.subsets import describe, draw

    _check_generation_args(args)
    task = get_task(args.benchmark, args.protocol)
    every = task.load(data_dir=args.data_dir)
    items = draw(every, args.limit, args.subset_seed)  # what task.load(limit=, subset_seed=) returns
    what = describe(every, args.limit, args.subset_seed, items)
    if args.items is not None:  # one machine's share of a run split by item range (then `gbg store merge`)
        of = f"the {len(items)} items --limit drew" if len(items) < len(every) else f"{task.name}'s {len(items)} items"
        start, end = _item_range(args.items, len(items), of)
        items = items[start:end]
        what += f"; --items {start}:{end} of them"
    print(f"{task.name}: {what}")
    # Everything is checked: only now is the store created.
    store = SampleStore(args.store)
    opts = {"base_url": args.base_url} if args.backend == "openai" else {}
    summary = run_generation(
        store,
        args.model,
        task,
        items,
        n_samples=args.n_samples,
        include_greedy=not args.no_greedy,
        temperature=args.temperature,
        top_p=args.top_p,
        top_k=args.top_k,
        repetition_penalty=args.repetition_penalty,
        max_new_tokens=args.max_new_tokens,
        seed=args.seed,
        backend=args.backend,
        dtype=args.dtype,
        data_dir=args.data_dir,
        backend_options=opts,
    )
    print(summary)
    if score:
        _score_and_report(store, task, args, summary)
    store.checkpoint()  # store.sqlite alone holds the run: a copy of it misses nothing
    print(f"stored in {store.path}")
    return 0


def _item_range(text: str, n: int, of: str = "the benchmark's items") -> tuple[int, int]:
    """'START:END' (either may be left out: 0, n) -> slice bounds within n items; a one-line error for anything
    else, an empty range, or one past the end."""
    start, sep, end = text.partition(":")
    try:
        if not sep:
            raise ValueError
        bounds = tuple(int(x) if x.strip() else None for x in (start, end))
    except ValueError:
        raise ValueError(f"--items takes START:END (item positions, e.g. 0:660), got {text!r}") from None
    if any(b is not None and b < 0 for b in bounds):
        raise ValueError(f"--items takes non-negative positions, got {text!r}")
    start, end = bounds[0] or 0, n if bounds[1] is None else bounds[1]
    if end > n or start >= n:
        raise ValueError(f"--items {text} goes past the end: {of} are positions 0:{n}")
    if start >= end:
        raise ValueError(f"--items {text} is empty ({of} are positions 0:{n})")
    return start, end


def _score_and_report(store, task, args, summary=None) -> None:
    """Score, then one line per sampled config against its own greedy twin (same engine, length limit and
    repetition penalty): exactly this run's samples when `summary` is given, else everything stored."""
    from .score.scoring import score_store
    from .stats import gap_table

    n = score_store(store, task, data_dir=args.data_dir, progress=False)
    print(f"scored {n} new completions of {task.name}")
    df = store.frame(benchmark=task.name, model=args.model, scorer_version=task.version, text=False)
    if df.empty:
        return
    if summary is not None:
        df = summary.select(df)
    else:  # a store can hold older prompts of an item: report the newest one's samples
        df = df.sort_values("created").drop_duplicates(["item_id", "config_key", "sample_idx"], keep="last")
    for ck in sorted(set(df.loc[~df["greedy"], "config_key"])):
        twin = df.loc[df["config_key"] == ck, "greedy_key"].iloc[0]
        part = df[df["config_key"].isin([ck, twin])]
        for r in gap_table(part, n_boot=0).itertuples():
            print(
                f"{task.name}: greedy {r.greedy:.3f} | sampling mean {r.mean:.3f} ± {r.std:.3f} (std over {r.n_runs} runs at "
                f"T={r.temperature:g}, rp={r.repetition_penalty:g}), best {r.best:.3f}, worst {r.worst:.3f} -- {r.n_items} items, "
                f"model {r.model}"
            )
    sampled_twins = set(df.loc[~df["greedy"], "greedy_key"])
    for _ck, g in df[df["greedy"] & ~df["config_key"].isin(sampled_twins)].groupby("config_key"):
        print(f"{task.name}: greedy {g['score'].mean():.3f} on {g['item_id'].nunique()} items (no sampled run with this setting)")


def cmd_score(args) -> int:
    from .store import SampleStore
    from .tasks import get_task

    _check_data_dir(args.data_dir)
    task = get_task(args.benchmark, args.protocol)
    store = SampleStore(args.store, create=False)  # a mistyped path is an error, not a new empty store
    _score_and_report(store, task, args)
    store.checkpoint()
    return 0


def cmd_plan(args) -> int:
    """From the stored pilot data: items needed per (gap, samples per item), the run's minimum detectable gap,
    and each run-to-run std beside the std independent sampling predicts."""
    import pandas as pd

    from .stats import independence_check, sample_size_table
    from .store import SampleStore
    from .tasks import get_task

    task = get_task(args.benchmark, args.protocol)
    df = SampleStore(args.store, readonly=True).frame(benchmark=task.name, model=args.model, scorer_version=task.version)
    df = df[df["score"].notna()]  # scored under this protocol's rule: another protocol's samples are not its pilot
    if df.empty or not df["greedy"].any() or df["greedy"].all():
        raise ValueError(
            f"no scored greedy + sampled pilot of {args.model} on {task.name} under the {task.protocol} protocol in "
            f"{args.store}: run `gbg generate --score --protocol {task.protocol}` first (or pass --protocol to match the pilot)"
        )
    df = df.sort_values("created").drop_duplicates(["item_id", "config_key", "sample_idx"], keep="last")
    ks = tuple(None if k == 0 else k for k in args.k)
    for ck in sorted(set(df.loc[~df["greedy"], "config_key"])):  # each sampled config with its own greedy twin
        sampled = df[df["config_key"] == ck]
        twin = df[(df["config_key"] == sampled["greedy_key"].iloc[0]) & df["item_id"].isin(sampled["item_id"])]
        part = pd.concat([twin, sampled])
        if not part["greedy"].any():
            continue
        sizes = sample_size_table(part, deltas=tuple(args.delta), ks=ks, alpha=args.alpha, power=args.power, points=True)
        r, c = sizes.iloc[0], part[~part["greedy"]].iloc[0]
        print(
            f"{r.model} on {r.benchmark} at T={c.temperature:g}, top-p {c.top_p:g}, rp {c.repetition_penalty:g}: pilot of "
            f"{int(r.n_items)} items x {int(r.n_runs)} samples, gap {r.gap:+.1f} points, omega2 {r.omega2:.4f}, sigma2 "
            f"{r.sigma2:.4f}; this run detects gaps of {r.current_min_detectable_gap:.1f} points (alpha {args.alpha}, power {args.power})"
        )
        table = sizes.pivot_table(index="delta", columns="k", values="items_needed").rename(columns=lambda k: f"K={k:g}")
        print("items needed to detect a gap of delta points:\n" + table.to_string())
        for i in independence_check(part, alpha=args.alpha).itertuples():
            print(
                f"run-to-run std {100 * i.observed_std:.2f} points, independent sampling predicts {100 * i.predicted_std:.2f} "
                f"(p = {i.p_value:.2g})" + ("  FLAGGED: larger than independent draws allow" if i.flagged else "") + "\n"
            )
    return 0


def cmd_store_merge(args) -> int:
    from .store import merge_stores

    report = merge_stores(args.out, args.inputs)
    print(report)
    if not report.ok:
        print(
            f"gbg: {len(report.refused)} store(s) not merged: conflicting rows (listed above); nothing of them written",
            file=sys.stderr,
        )
    return 0 if report.ok else 1


def cmd_store_export(args) -> int:
    from .store import SampleStore

    dest = SampleStore(args.store, readonly=True).export(args.dest)
    print(f"exported {args.store} into {dest} (one file: copy it to another host, or merge it)")
    return 0


def cmd_show(args) -> int:
    """One item as the item explorer shows it (report/items.py): prompt, greedy and every sampled completion."""
    from .report.items import ORDERS, item_text, item_views, show_command, stored_frame
    from .store import SampleStore

    _check_data_dir(args.data_dir)
    store = SampleStore(args.store, readonly=True)
    df = stored_frame(store, args.model, args.benchmark, args.protocol)
    if df.empty:
        raise ValueError(f"no samples of {args.model} on {args.benchmark} under the {args.protocol} protocol in {args.store}")
    order = ORDERS[0] if args.item is None else "benchmark order"
    views = item_views(store, df, args.benchmark, args.model, args.config, order, args.protocol, args.data_dir)
    if args.item is None:  # a list, the most telling first: pick one with --item
        print(
            f"{args.model} on {args.benchmark} ({args.protocol} protocol), {views[0].config if views else ''}: {len(views)} items, "
            f"greedy right and samples mostly wrong first"
        )
        for v in views[: args.top]:
            print(f"  {v.item_id:<24} {v.summary()}")
        if views:
            print(f"one item in full: {show_command(views[0])}")
        return 0
    found = [v for v in views if v.item_id == args.item]
    if not found:
        raise ValueError(
            f"item {args.item!r}: no samples of it in this selection (e.g. {', '.join(v.item_id for v in views[:5])})"
        )
    print(item_text(found[0]))
    return 0


def _overrides(pairs) -> dict:
    """`-p NAME VALUE` pairs, values read like papermill's -p (YAML scalars and flow lists); later wins."""
    from .params import parse_value

    return {name: parse_value(value) for name, value in pairs or []}


def cmd_run(args) -> int:
    from .report.papermill import run_notebooks

    names = "all" if args.notebooks == ["all"] else args.notebooks
    results = run_notebooks(names, args.params, run_dir=args.out, overrides=_overrides(args.param), files=args.file or ())
    failed = [r for r in results if r.status != "ok"]
    for r in failed:
        print(f"gbg: notebook {r.name} failed; partial output: {r.output}", file=sys.stderr)
    return 1 if failed else 0


def cmd_params(args) -> int:
    from .report.papermill import notebook_parameters, notebook_path

    declared = notebook_parameters(args.notebook)  # raises a one-line error for an unknown notebook
    print(
        f"Parameters of notebook {notebook_path(args.notebook).relative_to(PROJ_ROOT)} "
        f"(set them with -p NAME VALUE, or in params/{args.notebook}/*.yaml and -f FILE):"
    )
    for p in declared.values():
        line = f"  {p['name']}: {p['inferred_type_name'] or 'Unknown type'} (default {p['default']})"
        print(f"{line}\n{' ' * 34}{p['help']}" if len(line) > 30 and p["help"] else f"{line:<34}{p['help']}")
    return 0


def cmd_list(args) -> int:
    from .params import NOTEBOOKS, PARAMS_DIR, STANDALONE_NOTEBOOKS

    for n in (*NOTEBOOKS, *STANDALONE_NOTEBOOKS):
        variants = sorted(p.stem for p in (PARAMS_DIR / n).glob("*.yaml"))
        alone = "  (not in `all`: gbg run stability)" if n in STANDALONE_NOTEBOOKS else ""
        print(f"  {n:12s} params: {', '.join(variants)}{alone}")
    return 0


def cmd_findings(args) -> int:
    if not args.paper:
        print("gbg findings: pass --paper (the scorecard on the paper's own printed numbers)", file=sys.stderr)
        return 2
    from .findings import printed

    print(printed.render(printed.paper_scorecard(), as_json=args.json))
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
    _add_protocol_arg(s)
    s.add_argument("--model", default=DEFAULT_MODEL)
    s.add_argument("--store", default=str(DEFAULT_STORE))
    s.add_argument("--data-dir", default=None)
    s.set_defaults(fn=cmd_score)
    d = sub.add_parser(
        "demo", help="the README's main job before the notebooks: 5 HumanEval problems, greedy + 8 samples, scored"
    )
    _add_generation_args(d, limit=5, n=8)
    d.set_defaults(fn=lambda a: cmd_generate(a, score=True))
    r = sub.add_parser("run", help="run research notebooks with papermill and build an HTML report")
    r.add_argument("notebooks", nargs="+", help="notebook names, or 'all'")
    r.add_argument("--params", default="offline", help="params/<notebook>/<NAME>.yaml (smoke | offline | paper) or a path")
    r.add_argument(
        "-f",
        "--parameters-file",
        dest="file",
        action="append",
        metavar="FILE",
        help="a params YAML (path or name) layered over --params; repeatable, later files win",
    )
    r.add_argument(
        "-p",
        "--parameter",
        dest="param",
        nargs=2,
        action="append",
        metavar=("NAME", "VALUE"),
        help="one parameter over the files, the value read as YAML: -p limit 30, -p models '[a, b]'; repeatable",
    )
    r.add_argument("--out", default=None, help="run folder, new or empty (default outputs/<date>-<params>)")
    r.set_defaults(fn=cmd_run)
    pa = sub.add_parser("params", help="a notebook's parameters with types, defaults and help")
    pa.add_argument("notebook")
    pa.set_defaults(fn=cmd_params)
    sub.add_parser("list", help="the notebooks and their params files").set_defaults(fn=cmd_list)
    pl = sub.add_parser("plan", help="how many items and samples are enough, from a stored pilot (Miller 2024)")
    pl.add_argument("--benchmark", default="humaneval")
    _add_protocol_arg(pl)
    pl.add_argument("--model", default=DEFAULT_MODEL)
    pl.add_argument("--store", default=str(DEFAULT_STORE))
    pl.add_argument("--delta", type=float, nargs="+", default=[1, 2, 3, 5], help="gaps to detect, in points")
    pl.add_argument("--k", type=int, nargs="+", default=[1, 8, 16, 0], help="samples per item (0: unlimited)")
    pl.add_argument("--alpha", type=float, default=0.05)
    pl.add_argument("--power", type=float, default=0.8)
    pl.set_defaults(fn=cmd_plan)
    st = sub.add_parser("store", help="work on sample stores").add_subparsers(dest="store_cmd", required=True)
    m = st.add_parser(
        "merge",
        help="copy stores (e.g. filled on separate machines) into one: nothing doubled, conflicts reported (exit 1)",
    )
    m.add_argument("out", help="the store to merge into (created if missing)")
    m.add_argument("inputs", nargs="+", help="stores to merge from (read, never changed; copy them with `gbg store export`)")
    m.set_defaults(fn=cmd_store_merge)
    ex = st.add_parser(
        "export",
        help="a single-file copy of a store (every commit, WAL included): what to copy to another host",
    )
    ex.add_argument("store", help="the store to copy (read, never changed)")
    ex.add_argument("dest", help="the new file (must not exist)")
    ex.set_defaults(fn=cmd_store_export)
    sh = sub.add_parser("show", help="one item: its prompt, greedy and every sampled completion, scored (the item explorer)")
    sh.add_argument("--model", default=DEFAULT_MODEL)
    sh.add_argument("--benchmark", required=True)
    sh.add_argument("--item", default=None, help="the item id (left out: the items, the most telling first)")
    sh.add_argument("--config", default=None, help="a sampled config_key (default: the first one stored)")
    sh.add_argument("--top", type=int, default=20, help="items listed without --item")
    _add_protocol_arg(sh)
    sh.add_argument("--store", default=str(DEFAULT_STORE))
    sh.add_argument("--data-dir", default=None)
    sh.set_defaults(fn=cmd_show)
    fi = sub.add_parser("findings", help="the paper's claims and their decision rules (--paper: on its own printed numbers)")
    fi.add_argument("--paper", action="store_true", help="decide each claim on the paper's printed tables and figures")
    fi.add_argument("--json", action="store_true", help="the verdicts as JSON")
    fi.set_defaults(fn=cmd_findings)
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
