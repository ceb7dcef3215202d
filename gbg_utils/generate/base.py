"""What every backend is: `Backend` (generate, stream, provenance), its `Request`s and `Completion`s, and `generate`.

Seeding is the same on every backend: sample j of a request with seed s is drawn with seed s + j (vLLM's
own rule for the children of an n > 1 request), so a request for samples 8..15 with seed s + 8 extends an
earlier request for samples 0..7 instead of replacing it.
"""

from __future__ import annotations

import platform
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ..decoding import DecodingConfig
from ..identity import Engine
from .tokenization import Prompt, encode_prompt

BACKENDS = ("vllm", "transformers", "openai")


@dataclass
class Completion:
    text: str
    n_tokens: int
    finish_reason: str | None  # "stop" (EOS or a stop string) or "length"
    mean_logprob: float | None = None  # mean token log-prob under the model's raw distribution


@dataclass
class Request:
    prompt: Prompt  # as the task built it
    n: int = 1
    seed: int = 0
    ids: list[int] | None = None  # the token ids the model receives (set by Backend.encode when None)


class Backend:
    name = "?"
    model: str
    dtype: str = "bfloat16"
    tokenizer = None  # local backends: the model's own tokenizer

    @property
    def engine(self) -> Engine:
        return Engine(self.name, self.model, self.dtype, getattr(self, "options", {}))

    def encode(self, prompt: Prompt):
        """What the model receives for this prompt: token ids (local backends) or the prompt as sent (openai)."""
        return encode_prompt(self.tokenizer, prompt)

    def generate(self, requests: list[Request], config: DecodingConfig) -> list[list[Completion]]:
        raise NotImplementedError

    def stream(
        self, pairs: Iterable[tuple[Request, DecodingConfig]], chunk_size: int = 32
    ) -> Iterator[tuple[int, Request, list[Completion]]]:
        """(index, request, completions) for each (request, config) pair, as they finish. `chunk_size` is the
        runner's commit size: this default calls `generate` on runs of up to that many consecutive requests that
        share a config (one commit each); vLLM and openai override it to keep their engine or server full."""
        batch: list[tuple[int, Request]] = []
        config = None
        for i, (req, cfg) in enumerate(pairs):
            if batch and (len(batch) == chunk_size or cfg != config):
                yield from self._run_batch(batch, config)
                batch = []
            batch.append((i, req))
            config = cfg
        if batch:
            yield from self._run_batch(batch, config)

    def _run_batch(self, batch, config):
        outs = self.generate([r for _, r in batch], config)
        return [(i, r, c) for (i, r), c in zip(batch, outs)]

    def sampling_settings(self, config: DecodingConfig) -> dict | None:
        """The sampling settings this backend runs `config` with, as it hands them to its engine or server (for a
        run's provenance; the per-sample seed is left out: `seeded` says whether one is sent)."""
        return None

    def provenance(self) -> dict:
        return {
            "backend": self.name,
            "model": self.model,
            "engine": self.engine.identity(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        }

    def close(self) -> None:
        pass


def generate(
    backend: Backend, prompts: list[Prompt], config: DecodingConfig, seeds: list[int] | None = None
) -> list[list[Completion]]:
    """For each prompt, `config.n` completions; prompt i's sample j uses seed `seeds[i] + j` (default config.seed)."""
    seeds = seeds if seeds is not None else [config.seed] * len(prompts)
    return backend.generate([Request(p, config.n, s) for p, s in zip(prompts, seeds)], config)


def request_ids(backend: Backend, requests: list[Request]) -> list[list[int]]:
    """Each request's token ids: the ids it carries, else its prompt encoded by the backend."""
    return [r.ids if r.ids is not None else backend.encode(r.prompt) for r in requests]


def truncate_at_stop(text: str, stop: tuple[str, ...]) -> tuple[str, bool]:
    cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)
