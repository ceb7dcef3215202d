"""The `openai` backend against a local vLLM server vs gbg's in-process vLLM engine: the same `run_generation`
job (greedy + N per item), one run, one machine (issue 13, "beyond one machine, through existing engines").

    .venv/bin/python scripts/speed/bench_openai.py --model smollm2-135m --prompts 16 --n 8 --max-new-tokens 96

The server is `generate.server.start_vllm_server` (vLLM's api_server sized by `cpu_server_args`, the same KV
cache, max_num_seqs and dtype as the in-process engine). Each concurrency (requests in flight; a sampled
request carries N sequences, a greedy one 1) runs into its own empty store; the in-process engine runs after
the server has stopped, so the two never share the cores. Start-ups are reported apart and not timed in
tokens/s. Run it with nothing else on the machine (vLLM binds its OpenMP threads to the cores).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def job(store_dir, args, task, items, backend):
    from gbg_utils.generate.runner import run_generation
    from gbg_utils.store import SampleStore

    store = SampleStore(Path(store_dir) / "s.sqlite")
    t = time.perf_counter()
    run_generation(
        store, args.model, task, items, n_samples=args.n, max_new_tokens=args.max_new_tokens, backend=backend, progress=False
    )
    secs = time.perf_counter() - t
    return secs, int(store.samples()["n_tokens"].sum())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--benchmark", default="humaneval")
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=96)
    ap.add_argument("--concurrency", default="8,32,128", help="comma-separated requests in flight")
    args = ap.parse_args()

    from gbg_utils.generate.backends import OpenAIBackend, VLLMBackend, cpu_engine_settings
    from gbg_utils.generate.server import start_vllm_server, stop_server
    from gbg_utils.models import resolve_dtype, resolve_model
    from gbg_utils.tasks import get_task

    task = get_task(args.benchmark)
    items = task.load()[: args.prompts]
    path, dtype = resolve_model(args.model), resolve_dtype("auto")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        proc, url = start_vllm_server(path, args.model, log=Path(tmp) / "server.log", dtype=dtype)
        print(f"server up in {time.perf_counter() - t:.0f} s ({dtype}, {cpu_engine_settings(path, dtype, 4096)})", flush=True)
        try:
            for c in [int(x) for x in args.concurrency.split(",")]:
                be = OpenAIBackend(args.model, base_url=url, concurrency=c)
                secs, toks = job(Path(tmp) / f"c{c}", args, task, items, be)
                rows.append((f"`openai` backend → local vLLM server, concurrency {c}", secs, toks))
                print(rows[-1], flush=True)
                be.close()
        finally:
            stop_server(proc)
        t = time.perf_counter()
        be = VLLMBackend(args.model, dtype=dtype, max_model_len=4096)
        print(f"in-process engine loaded in {time.perf_counter() - t:.0f} s", flush=True)
        secs, toks = job(Path(tmp) / "inproc", args, task, items, be)
        be.close()
        rows.append(("`vllm` backend, in-process engine", secs, toks))

    ref = rows[-1][2] / rows[-1][1]
    print(f"\n{args.prompts} {task.name} prompts, greedy + {args.n} samples, max_new_tokens {args.max_new_tokens}, {dtype}\n")
    print("| path | seconds | tokens | tokens/s | vs in-process |\n|---|---:|---:|---:|---:|")
    for name, secs, toks in rows:
        print(f"| {name} | {secs:.1f} | {toks} | {toks / secs:.1f} | {toks / secs / ref:.2f}x |")


if __name__ == "__main__":
    main()
