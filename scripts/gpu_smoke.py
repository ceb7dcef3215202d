"""A smoke of gbg's transformers generation path on a CUDA GPU, for a lent machine that has torch and
transformers but neither vLLM nor the embedded weights (nor any way to fetch them).

It builds a *random* Qwen2 model around the embedded default's tokenizer (`--shape tiny`: 2 layers, hidden 64;
`--shape 0.5b`: the embedded default's own shape, 24 layers, hidden 896, so the GPU runs the kernels the real
model would), so the outputs are gibberish: it checks mechanics, not quality. What it reports, as JSON (stdout and --out):

* `auto_dtype`: what dtype "auto" resolves to here (bfloat16 on CUDA), and per dtype the backend's `device`;
* `repeat_identical`: how many greedy and seeded samples are identical across two identical calls;
* `batch_alone_vs_mixed_identical`: each request generated alone and inside a batch with prompts of other
  lengths (left padding, another batch shape): how many of the completions match exactly, per dtype. gbg
  relies on this (a sample does not depend on what else is in its batch); on a GPU kernels may differ by
  batch shape. The random model's output layer is scaled up so its tokens are not near-ties: a match here
  checks the mechanics, and says nothing of a real model's near-ties (the stability notebook's question).

    python scripts/gpu_smoke.py --tokenizer DIR [--shape tiny|0.5b] [--out report.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a bare copy of the tree: no install


SHAPES = {
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2),
    "0.5b": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2),
}


def random_model(tokenizer_dir: str, out: Path, shape: str) -> str:
    import shutil

    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    cfg = Qwen2Config(
        vocab_size=len(tok),
        **SHAPES[shape],
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(cfg)
    with torch.no_grad():  # sharper logits than the init's near-uniform ones, so samples are not all noise
        model.lm_head.weight.mul_(20)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    for f in Path(tokenizer_dir).glob("chat_template*"):
        shutil.copy(f, out / f.name)
    return str(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tokenizer", required=True, help="a folder with the embedded default's tokenizer files")
    ap.add_argument("--shape", choices=SHAPES, default="tiny")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    import torch

    from gbg_utils.decoding import DecodingConfig
    from gbg_utils.generate.backends import Request, TransformersBackend
    from gbg_utils.models import resolve_dtype

    report: dict = {"shape": args.shape, "cuda": torch.cuda.is_available(), "torch": torch.__version__}
    if torch.cuda.is_available():
        report["gpu"] = torch.cuda.get_device_name(0)
    report["auto_dtype"] = resolve_dtype("auto")
    prompts = [
        [{"role": "user", "content": "Write a function that adds two numbers."}],
        [{"role": "user", "content": "Say hi."}],
        [
            {
                "role": "user",
                "content": "Explain, in three long paragraphs with examples, why greedy decoding can differ from sampling.",
            }
        ],
        [{"role": "user", "content": "def fib(n):"}],
    ]
    greedy = DecodingConfig(temperature=0.0, max_new_tokens=48)
    sampled = DecodingConfig(temperature=1.0, max_new_tokens=48)
    with tempfile.TemporaryDirectory() as tmp:
        path = random_model(args.tokenizer, Path(tmp) / f"random-qwen2-{args.shape}", args.shape)
        for dtype in ("float32", "bfloat16"):
            t = time.perf_counter()
            be = TransformersBackend(path, dtype=dtype, batch_size=64)
            row: dict = {"device": be.device}
            for name, cfg, n in (("greedy", greedy, 1), ("sampled", sampled, 4)):
                reqs = [Request(p, n, 1000 + 10 * i) for i, p in enumerate(prompts)]
                first = be.generate(reqs, cfg)
                again = be.generate(reqs, cfg)
                alone = [be.generate([r], cfg)[0] for r in reqs]
                texts = lambda outs: [c.text for cs in outs for c in cs]  # noqa: E731
                a, b, c = texts(first), texts(again), texts(alone)
                row[name] = {
                    "completions": len(a),
                    "repeat_identical": sum(x == y for x, y in zip(a, b)),
                    "batch_alone_vs_mixed_identical": sum(x == y for x, y in zip(a, c)),
                    "mean_tokens": sum(c.n_tokens for cs in first for c in cs) / len(a),
                }
            row["seconds"] = round(time.perf_counter() - t, 1)
            report[dtype] = row
            del be
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
