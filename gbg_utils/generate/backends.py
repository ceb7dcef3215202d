"""One generation API over three backends: vLLM, transformers, and any OpenAI-compatible server.

    >>> backend = load_backend("vllm", "smollm2-135m")
    >>> outs = generate(backend, ["Say hi."], DecodingConfig(temperature=1.0, n=4, seed=1))
    >>> outs[0][2].text, outs[0][2].n_tokens, outs[0][2].finish_reason

One tokenisation: a prompt is rendered once with the model's own chat template and tokenizer
(`encode_prompt`), and vLLM and transformers both receive those token ids, so a template that starts with
BOS gets exactly one BOS on either backend. The `openai` backend sends the messages (the server applies
its template). A prompt is chat messages, a raw string (continued as text), or a `PrefilledChat` (messages
whose assistant turn starts with given text: the paper protocol's GSM8K).

Seeding is the same on every backend: sample j of a request with seed s is drawn with seed s + j (vLLM's
own rule for the children of an n > 1 request), so a request for samples 8..15 with seed s + 8 extends an
earlier request for samples 0..7 instead of replacing it.
"""

from __future__ import annotations

from ..identity import Engine
from ..models import resolve_dtype
from ..tasks.base import PrefilledChat
from .base import BACKENDS, Backend, Completion, Request, generate
from .engine_settings import (
    batch_invariance_unavailable,
    cpu_engine_settings,
    cpu_server_args,
    in_process_engine,
    kv_bytes_per_token,
)
from .errors import PER_REQUEST_STATUS, BackendError, Refused
from .openai_backend import OpenAIBackend
from .tokenization import Prompt, encode_prompt, load_tokenizer, render_prefilled
from .transformers_backend import TransformersBackend
from .vllm_backend import VLLMBackend

# The generation API in one import (each piece lives in the module named beside it).
__all__ = [
    "BACKENDS",  # base
    "Backend",
    "Completion",
    "Request",
    "generate",
    "BackendError",  # errors
    "Refused",
    "PER_REQUEST_STATUS",
    "Prompt",  # tokenization
    "encode_prompt",
    "render_prefilled",
    "load_tokenizer",
    "VLLMBackend",  # one module per backend
    "TransformersBackend",
    "OpenAIBackend",
    "batch_invariance_unavailable",  # engine_settings
    "cpu_engine_settings",
    "cpu_server_args",
    "in_process_engine",
    "kv_bytes_per_token",
    "LazyBackend",  # here
    "load_backend",
]


class LazyBackend(Backend):
    """A backend that loads its model on the first `generate`: prompts are encoded (and a run planned)
    with the tokenizer alone, so a run whose samples are all stored never loads the model."""

    def __init__(self, engine: Engine, loader=None):
        self._engine, self._loader, self._be, self._tok = engine, loader, None, None
        self.name, self.model, self.dtype, self.options = engine.backend, engine.model, engine.dtype, engine.options

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def loaded(self) -> bool:
        return self._be is not None

    def backend(self) -> Backend:
        if self._be is None:
            self._be = self._loader() if self._loader else load_backend(self.name, self.model, dtype=self.dtype, **self.options)
        return self._be

    def encode(self, prompt):
        if self._be is not None:
            return self._be.encode(prompt)
        if self.name == "openai":
            return prompt.as_sent() if isinstance(prompt, PrefilledChat) else prompt
        if self._tok is None:
            self._tok = load_tokenizer(self.model, self.dtype)
        return encode_prompt(self._tok, prompt)

    def generate(self, requests, config):
        return self.backend().generate(requests, config)

    def stream(self, pairs, chunk_size=32):
        return self.backend().stream(pairs, chunk_size=chunk_size)

    def sampling_settings(self, config):
        return self.backend().sampling_settings(config)

    def provenance(self):
        return self.backend().provenance()

    def close(self):
        if self._be is not None:
            self._be.close()
            self._be = None


def load_backend(backend: str, model: str, dtype: str = "auto", **options) -> Backend:
    """Load a backend by name. Options go to its constructor (e.g. tensor_parallel_size, base_url).
    dtype "auto": bfloat16 where the hardware has it natively, else float32 (models.resolve_dtype)."""
    if backend not in BACKENDS:
        raise BackendError(f"unknown backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    cls = {"vllm": VLLMBackend, "transformers": TransformersBackend, "openai": OpenAIBackend}[backend]
    return cls(model, dtype=resolve_dtype(dtype), **options)
