"""Whole-run throughput against the upper bound: `run_generation` (greedy + N per item, streamed through the
engine and committed to the store as requests finish) vs one single `LLM.generate` call over the same
requests, on the same loaded engine, in one run (issue 13, "keep the engine full").

    .venv/bin/python scripts/speed/bench_stream.py --model smollm2-135m --prompts 50 --n 8 --max-new-tokens 256

The engine is loaded once (not timed); run_generation goes first into an empty temp store, then the single
call, which thus also gets the warmer prefix cache: the ratio is, if anything, conservative. Tokens count
generated tokens (up to EOS).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--benchmark", default="humaneval")
    ap.add_argument("--prompts", type=int, default=50)
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=256)
    ap.add_argument("--chunk-size", type=int, default=32, help="requests per store commit")
    args = ap.parse_args()

    from vllm import SamplingParams

    from gbg_utils.decoding import DecodingConfig, item_seed
    from gbg_utils.generate.backends import VLLMBackend, encode_prompt
    from gbg_utils.generate.runner import run_generation
    from gbg_utils.store import SampleStore
    from gbg_utils.tasks import get_task

    task = get_task(args.benchmark)
    items = task.load()[: args.prompts]
    t0 = time.perf_counter()
    be = VLLMBackend(args.model, dtype="float32", max_model_len=4096)
    print(f"model {args.model}, engine settings {be.engine_settings}, loaded in {time.perf_counter() - t0:.0f} s", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        store = SampleStore(Path(tmp) / "s.sqlite")
        t = time.perf_counter()
        run_generation(
            store,
            args.model,
            task,
            items,
            n_samples=args.n,
            max_new_tokens=args.max_new_tokens,
            backend=be,
            chunk_size=args.chunk_size,
            progress=False,
        )
        whole = time.perf_counter() - t
        whole_tokens = int(store.samples()["n_tokens"].sum())

    sampled = DecodingConfig(temperature=1.0, n=args.n, max_new_tokens=args.max_new_tokens)
    ids = [{"prompt_token_ids": encode_prompt(be.tokenizer, task.prompt(it))} for it in items]
    params = [SamplingParams(temperature=0, max_tokens=args.max_new_tokens) for _ in items]
    params += [
        SamplingParams(
            n=args.n, seed=item_seed(args.model, task.name, str(it.id), sampled), temperature=1.0, max_tokens=args.max_new_tokens
        )
        for it in items
    ]
    t = time.perf_counter()
    outs = be.llm.generate(ids + ids, params, use_tqdm=False)
    single = time.perf_counter() - t
    single_tokens = sum(len(c.token_ids) for o in outs for c in o.outputs)
    be.close()

    a, b = whole_tokens / whole, single_tokens / single
    print(f"\n{args.prompts} {task.name} prompts, greedy + {args.n} samples, max_new_tokens {args.max_new_tokens}\n")
    print("| path | seconds | tokens | tokens/s | vs single call |\n|---|---:|---:|---:|---:|")
    print(
        f"| run_generation (streamed, committed every {args.chunk_size} requests) | {whole:.1f} | {whole_tokens} | {a:.1f} | {a / b:.2f}x |"
    )
    print(f"| one LLM.generate over the same requests (upper bound) | {single:.1f} | {single_tokens} | {b:.1f} | 1.00x |")


if __name__ == "__main__":
    main()
