"""A completion's identity: everything that changes what the model writes, stated in one place.

A stored sample is keyed by (model, benchmark, item_id, prompt_hash, config_key, sample_idx), where

* ``prompt_hash`` hashes the exact prompt the model received: the token ids its own chat template and
  tokenizer produced (``openai``: the messages, since the server applies its template);
* ``config_key`` hashes the decoding config (temperature, top-p, top-k, repetition penalty, length limit,
  stops, seed) together with the engine: backend, dtype and the weights' identity (embedded: the GGUF's
  sha256; hub id: repo + resolved revision; local folder: a hash of its config, tokenizer, code and weight files,
  never its path;
  ``openai``: served model name + what the server's /models says it serves, or a declared ``weights`` id;
  never its URL), and for the local backends the batch size (the most
  sequences decoded together: vLLM's ``max_num_seqs``, the transformers backend's ``batch_size``; resolved,
  never None) and, for vLLM, its batch-invariant mode -- greedy output moves with both (batched kernels
  reduce in another order), so a greedy run at batch size 1 and one at 64 are two samples, not one.

Reuse happens only on an exact match of all six; anything else is generated anew, never mixed.

    >>> eng = Engine("vllm", "smollm2-135m", "bfloat16")
    >>> eng.identity()["weights"]["gguf_sha256"][:8]
    'b179c952'
    >>> eng.identity()["batch_size"], Engine("vllm", "smollm2-135m", "bfloat16", {"max_num_seqs": 1}).identity()["batch_size"]
    (64, 1)                                 # on a CPU; 1024 on a GPU
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from .models import EMBEDDED, MATERIALISE_VERSION, ModelError, cache_dir, check_model_name

# Batch sizes a backend uses when none is asked for: the single source of the defaults (generate/backends.py uses
# them), so that an identity computed before any model is loaded names the batch size the engine will run at.
TRANSFORMERS_BATCH_SIZE = 16
CPU_MAX_NUM_SEQS = 64  # sequences vLLM decodes together on a CPU: past this, 2-16 cores gain little and the cache grows
# vLLM's own default on >= 70 GiB GPUs (256 on smaller ones): sampling runs want the engine full, and vLLM's scheduler
# admits fewer when the KV cache runs out. Passed to vLLM explicitly, so that the identity does not depend on which
# GPU vLLM's heuristic saw.
GPU_MAX_NUM_SEQS = 1024

# Files whose content makes a local folder's model what it is (weights, config, tokenizer, chat template).
_FOLDER_FILES = (
    "*.safetensors",
    "*.bin",
    "*.pt",
    "*.gguf",
    "config.json",
    "generation_config.json",
    "tokenizer*",
    "special_tokens_map.json",
    "*.jinja",
    "vocab*",
    "merges.txt",
    "*.model",
    "*.py",  # a folder's own modeling code (trust_remote_code) makes the model as much as its weights do
)


def digest(obj) -> str:
    """A short stable hash of a JSON-able object."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def prompt_hash(prompt) -> str:
    """Hash of what the model received: a list of token ids, or (openai) the messages / raw string sent."""
    if isinstance(prompt, list) and all(isinstance(t, int) for t in prompt):
        return digest({"token_ids": prompt})
    return digest({"sent": prompt})


def weights_identity(model: str) -> dict:
    """What the weights are, independent of the name they were asked for by."""
    check_model_name(model)
    if model in EMBEDDED:
        return {"kind": "embedded", "name": model, "gguf_sha256": EMBEDDED[model].sha256, "materialise": MATERIALISE_VERSION}
    p = Path(model).expanduser()
    if p.is_dir():
        # Content alone, never the path: the same weights at another mount point (another machine, after a
        # `gbg store merge`) are the same engine. Embedded models keep their own identity above (their
        # materialised folder is a cache of the GGUF, not what identifies them).
        return {"kind": "folder", "sha256": folder_hash(p)}
    return {"kind": "hub", "repo": model, "revision": hub_revision(model)}


def folder_hash(folder: Path) -> str:
    """sha256 over the names and contents of a folder's model files, cached by (size, mtime) of each file
    so that an 8B model is read once, not at every run."""
    folder = folder.resolve()
    files = sorted({f for pat in _FOLDER_FILES for f in folder.glob(pat) if f.is_file()})
    if not files:
        raise ModelError(f"{folder} holds no model files (config.json, *.safetensors, ...)")
    stat = [(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files]
    cache = cache_dir() / "folder_hashes.json"
    key = digest({"folder": str(folder), "stat": stat})
    try:
        known = json.loads(cache.read_text())
    except (OSError, ValueError):
        known = {}
    if key in known:
        return known[key]
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode() + b"\0")
        with open(f, "rb") as fh:
            while block := fh.read(1 << 22):
                h.update(block)
    known[key] = h.hexdigest()
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(known))
        os.replace(tmp, cache)
    except OSError:
        pass  # a read-only cache only costs a re-hash next time
    return known[key]


@functools.cache
def hub_revision(repo: str) -> str:
    """The commit a hub id resolves to: the local snapshot's (offline), else the hub's answer."""
    try:
        from huggingface_hub import snapshot_download

        path = snapshot_download(repo, local_files_only=True, allow_patterns=["config.json"])
        return Path(path).name
    except Exception:  # noqa: BLE001 - not cached locally: ask the hub
        pass
    try:
        from huggingface_hub import HfApi

        return HfApi().model_info(repo).sha
    except Exception as e:  # noqa: BLE001
        raise ModelError(
            f"model {repo!r}: cannot resolve its revision (not in the local hub cache, and the hub did not "
            f"answer: {type(e).__name__}); download it first or pass a local folder"
        ) from None


def _cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def batch_size(backend: str, options: dict | None = None) -> int | None:
    """The most sequences the backend decodes together: the option asked for, else the backend's default
    (vLLM: GPU_MAX_NUM_SEQS on a GPU, CPU_MAX_NUM_SEQS on a CPU). None for a remote server (its own business)."""
    options = options or {}
    if backend == "transformers":
        return int(options.get("batch_size") or TRANSFORMERS_BATCH_SIZE)
    if backend == "vllm":
        return int(options.get("max_num_seqs") or (GPU_MAX_NUM_SEQS if _cuda() else CPU_MAX_NUM_SEQS))
    return None


def batch_invariant(options: dict | None = None) -> bool:
    """vLLM's batch-invariant mode: asked for (`batch_invariant` option), or already on in this process's
    environment (VLLM_BATCH_INVARIANT, read as vLLM reads it), which every vLLM engine of the process then obeys."""
    if (options or {}).get("batch_invariant"):
        return True
    try:
        return bool(int(os.environ.get("VLLM_BATCH_INVARIANT", "0") or 0))
    except ValueError:
        return False


@dataclass(frozen=True)
class Engine:
    """What generates: a backend running a model's weights at a dtype and batch size (plus, for openai, where).

    `options` are the backend's constructor options; they do not take part in == or hash (two Engines that
    differ only in batch size compare equal), but the ones that change outputs are in `identity()`."""

    backend: str
    model: str
    dtype: str = "bfloat16"
    options: dict = field(default_factory=dict, hash=False, compare=False)

    def identity(self) -> dict:
        if self.backend == "openai":
            return served_identity(self.model, self.options)
        ident = {"backend": self.backend, "dtype": self.dtype, "weights": weights_identity(self.model)}
        bs = batch_size(self.backend, self.options)
        if bs is not None:
            ident["batch_size"] = bs
        if self.backend == "vllm":
            ident["batch_invariant"] = batch_invariant(self.options)
        return ident


def served_identity(model: str, options: dict | None = None) -> dict:
    """An openai-served model's identity: what the server says it serves, not where it is (a server restarted on
    another port, or reached as localhost instead of 127.0.0.1, serves the same samples). The served name plus the
    declared `weights` option when given; else the server's /models entry for that name: vLLM's `root` (the path or
    hub id it loaded) and `owned_by` (a server without /models: the name alone, `models_listed` False). No URL,
    host or key is part of it."""
    options = options or {}
    served = options.get("served_model") or model
    ident = {"backend": "openai", "served_model": served}
    if options.get("weights"):
        return {**ident, "weights": str(options["weights"])}
    from .http_client import default_base_url

    url = (options.get("base_url") or default_base_url(options.get("api_key_env"))).rstrip("/")
    return {**ident, **_served_entry(url, served, options.get("api_key_env"), bool(options.get("trust_host")))}


def _served_entry(url: str, served: str, api_key_env: str | None, trust_host: bool) -> dict:
    from .http_client import HttpError, JsonClient, origin

    client = JsonClient(url, api_key_env, trust_host, concurrency=1, max_retries=2, timeout=30.0, backoff=0.5)
    try:
        data = client.request("GET", "/models", count=False)
    except HttpError as e:
        if e.status in (404, 405, 501):  # a server without /models: the served name is all it says
            return {"models_listed": False}
        raise ModelError(
            f"cannot ask {origin(url)} which model it serves ({e}); declare the weights with the backend option "
            "weights='<hub id or path>'"
        ) from None
    finally:
        client.close()
    entries = [m for m in data.get("data") or [] if isinstance(m, dict)]
    entry = next((m for m in entries if m.get("id") == served), None)
    if entry is None:
        names = ", ".join(sorted(str(m.get("id")) for m in entries)) or "nothing"
        raise ModelError(f"{origin(url)} does not serve a model named {served!r} (its /models lists: {names})")
    return {k: entry[k] for k in ("root", "owned_by") if entry.get(k) is not None}


def config_key(decoding: dict, engine: dict) -> str:
    """The store's config_key: one decoding config on one engine."""
    return digest({"decoding": decoding, "engine": engine})
