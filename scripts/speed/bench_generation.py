"""Throughput of greedy + N samples, side by side on the same prompts and model, in one run.

    .venv/bin/python scripts/speed/bench_generation.py --model qwen2.5-coder-0.5b --prompts 4 --n 8 --max-new-tokens 64

1. naive: one HF `generate` call per sample (what lm-eval's `repeats` does), batch size 1;
2. HF batched: one `generate` per prompt with `num_return_sequences=N` (plus one greedy call);
3. gbg transformers backend: all rows of all prompts batched, a torch.Generator per row;
4. gbg vLLM backend: one `SamplingParams(n=N, seed=s)` per prompt (prefix shared), greedy as its own request.
Tokens/s counts generated tokens only (up to EOS); model load time is reported apart, not counted.
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--skip", nargs="*", default=[], help="naive | hf_batched | gbg_transformers | gbg_vllm")
    args = ap.parse_args()

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from gbg_utils.decoding import DecodingConfig, greedy
    from gbg_utils.generate.backends import encode_prompt, generate, load_backend
    from gbg_utils.models import resolve_dtype, resolve_model
    from gbg_utils.tasks import get_task

    dtype = resolve_dtype("auto")  # every path in the same dtype: gbg's default on this machine
    path = resolve_model(args.model, dtype)
    task = get_task("humaneval")
    prompts = [task.prompt(it) for it in task.load()[: args.prompts]]
    sampled = DecodingConfig(temperature=1.0, n=args.n, seed=0, max_new_tokens=args.max_new_tokens)
    results: dict[str, tuple[float, int]] = {}
    print(
        f"model {args.model}, {args.prompts} HumanEval prompts, greedy + {args.n} samples each, max_new_tokens {args.max_new_tokens}, "
        f"{dtype}, torch threads {torch.get_num_threads()}"
    )

    def count(out_ids, prompt_len, eos):
        n = 0
        for row in out_ids[:, prompt_len:].tolist():
            k = next((i + 1 for i, t in enumerate(row) if t in eos), len(row))
            n += k
        return n

    if {"naive", "hf_batched"} - set(args.skip):
        tok = AutoTokenizer.from_pretrained(path, padding_side="left")
        hf = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype)).eval()
        eos = (
            {hf.generation_config.eos_token_id}
            if isinstance(hf.generation_config.eos_token_id, int)
            else set(hf.generation_config.eos_token_id)
        )
        texts = [encode_prompt(tok, p) for p in prompts]  # the token ids vLLM gets
        gen_kw = dict(max_new_tokens=args.max_new_tokens, pad_token_id=tok.pad_token_id or tok.eos_token_id)
        sample_kw = dict(do_sample=True, temperature=1.0, top_p=1.0, top_k=0, **gen_kw)

        def naive(enc):  # N separate calls, one sample each
            outs = []
            for j in range(args.n):
                torch.manual_seed(j)
                outs.append(hf.generate(**enc, **sample_kw))
            return outs

        def batched(enc):  # one call, N return sequences
            return [hf.generate(**enc, num_return_sequences=args.n, **sample_kw)]

        for name, sample in (("naive", naive), ("hf_batched", batched)):
            if name in args.skip:
                continue
            t, toks = time.perf_counter(), 0
            with torch.no_grad():
                for ids in texts:
                    ids = torch.tensor([ids])
                    enc = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
                    for out in [hf.generate(**enc, do_sample=False, **gen_kw)] + sample(enc):
                        toks += count(out, ids.shape[1], eos)
            results[name] = (time.perf_counter() - t, toks)
            _report(name, *results[name])
        del hf

    for name, backend, opts in (
        ("gbg_transformers", "transformers", {"batch_size": 36}),
        ("gbg_vllm", "vllm", {"max_model_len": 2048}),
    ):
        if name in args.skip:
            continue
        t0 = time.perf_counter()
        be = load_backend(backend, args.model, **opts)
        load = time.perf_counter() - t0
        t = time.perf_counter()
        outs = generate(be, prompts, greedy(sampled)) + generate(be, prompts, sampled)
        results[name] = (time.perf_counter() - t, sum(c.n_tokens for o in outs for c in o))
        _report(name, *results[name], extra=f"(load {load:.0f} s, not counted)")
        be.close()

    base = results.get("naive")
    print("\n| path | seconds | tokens | tokens/s | vs naive |\n|---|---:|---:|---:|---:|")
    for name, (sec, toks) in results.items():
        ratio = f"{(toks / sec) / (base[1] / base[0]):.1f}x" if base else "-"
        print(f"| {name} | {sec:.1f} | {toks} | {toks / sec:.1f} | {ratio} |")


def _report(name: str, sec: float, toks: int, extra: str = "") -> None:
    print(f"{name:18s} {sec:7.1f} s  {toks:6d} tokens  {toks / sec:7.1f} tok/s {extra}", flush=True)


if __name__ == "__main__":
    main()
