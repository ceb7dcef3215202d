"""Decoding configs and the seeds derived from a sample's identity.

A sample is identified by (model, benchmark, item id, decoding config, sample index). Its seed derives from
that identity, so the same run gives the same samples and a rerun with more samples extends the set:

    >>> cfg = DecodingConfig(temperature=1.0, n=8)
    >>> item_seed("qwen2.5-coder-0.5b", "gsm8k", "17", cfg) + 3   # the seed of sample 3
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field


class ConfigError(ValueError):
    """A decoding config that cannot be right."""


def check_decoding(
    *,
    temperature: float,
    top_p: float,
    top_k: int,
    repetition_penalty: float,
    max_new_tokens: int | None,
    name: Callable[[str], str] = str,
    default_tokens: str | None = None,
) -> None:
    """The one check of the decoding numbers, wherever they come from (a DecodingConfig, `gbg generate`'s flags, a
    params file): a ConfigError naming the first bad one as `name(field)` calls it. max_new_tokens None is the
    benchmark's default; `default_tokens` says how the caller asks for it (in the message)."""
    for k, v in (("temperature", temperature), ("top_p", top_p), ("repetition_penalty", repetition_penalty)):
        if not math.isfinite(v):  # nan passes every comparison below, and JSON cannot record it
            raise ConfigError(f"{name(k)} must be a finite number, got {v}")
    if temperature < 0:
        raise ConfigError(f"{name('temperature')} must be >= 0, got {temperature}")
    if not 0 < top_p <= 1:
        raise ConfigError(f"{name('top_p')} must be in (0, 1], got {top_p}")
    if top_k == 0 or top_k < -1:
        raise ConfigError(f"{name('top_k')} must be -1 (off) or >= 1, got {top_k}")
    if repetition_penalty <= 0:
        raise ConfigError(f"{name('repetition_penalty')} must be > 0, got {repetition_penalty}")
    if max_new_tokens is not None and max_new_tokens < 1:
        hint = f" ({default_tokens})" if default_tokens else ""
        raise ConfigError(f"{name('max_new_tokens')} must be >= 1{hint}, got {max_new_tokens}")


@dataclass(frozen=True)
class DecodingConfig:
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    top_k: int = -1  # -1 = off
    repetition_penalty: float = 1.0
    max_new_tokens: int = 512
    n: int = 1  # completions per prompt; how many, not part of a sample's identity
    seed: int = 0  # base seed; part of the identity of sampled (not greedy) outputs
    stop: tuple[str, ...] = field(default_factory=tuple)
    logprobs: bool = False  # store each completion's mean token log-probability

    def __post_init__(self):
        object.__setattr__(self, "stop", tuple(self.stop or ()))
        if self.max_new_tokens is None:
            raise ConfigError("max_new_tokens must be a number here (the caller resolves the benchmark's default)")
        check_decoding(
            temperature=self.temperature,
            top_p=self.top_p,
            top_k=self.top_k,
            repetition_penalty=self.repetition_penalty,
            max_new_tokens=self.max_new_tokens,
        )
        if self.n < 1:
            raise ConfigError(f"n must be >= 1, got {self.n}")
        if self.temperature == 0 and self.n > 1:
            raise ConfigError(
                f"n={self.n} with temperature 0: greedy decoding has one output per prompt; use n=1 or a temperature > 0"
            )

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    @classmethod
    def from_dict(cls, d: dict) -> DecodingConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ConfigError(f"unknown decoding parameter(s) {unknown}; known: {sorted(names)}")
        return cls(**d)

    def replace(self, **kw) -> DecodingConfig:
        return dataclasses.replace(self, **kw)

    def identity(self) -> dict:
        """The fields that change what is generated. Greedy ignores the sampling knobs and the seed."""
        d = dataclasses.asdict(self)
        d.pop("n")
        d.pop("logprobs")
        d["stop"] = list(self.stop)
        if self.greedy:
            d.update(top_p=1.0, top_k=-1, seed=0)
        d["temperature"] = float(d["temperature"])
        d["top_p"] = float(d["top_p"])
        d["repetition_penalty"] = float(d["repetition_penalty"])
        return d

    @property
    def key(self) -> str:
        """A short stable hash of `identity()`; the store keys samples by it."""
        return _hash(json.dumps(self.identity(), sort_keys=True))[:16]


def greedy(base: DecodingConfig | None = None) -> DecodingConfig:
    """The greedy twin of a config: same length limit, stops and repetition penalty."""
    base = base or DecodingConfig()
    return base.replace(temperature=0.0, n=1, top_p=1.0, top_k=-1)


def _hash(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()


def item_seed(model: str, benchmark: str, item_id: str, config: DecodingConfig) -> int:
    """Seed of sample 0 of an item; sample j uses seed + j (vLLM's own rule for n > 1 children)."""
    h = _hash(f"{model}\x00{benchmark}\x00{item_id}\x00{config.key}")
    # 30 bits (the mask keeps 30 of the hash's 32) leave room for + j and fit every backend's seed type.
    return int(h[:8], 16) & 0x3FFFFFFF
