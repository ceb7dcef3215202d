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
from dataclasses import dataclass, field


class ConfigError(ValueError):
    """A decoding config that cannot be right."""


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
        if self.temperature < 0:
            raise ConfigError(f"temperature must be >= 0, got {self.temperature}")
        if self.n < 1:
            raise ConfigError(f"n must be >= 1, got {self.n}")
        if self.temperature == 0 and self.n > 1:
            raise ConfigError(
                f"n={self.n} with temperature 0: greedy decoding has one output per prompt; use n=1 or a temperature > 0"
            )
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k == 0 or self.top_k < -1:
            raise ConfigError(f"top_k must be -1 (off) or >= 1, got {self.top_k}")
        if self.repetition_penalty <= 0:
            raise ConfigError(f"repetition_penalty must be > 0, got {self.repetition_penalty}")
        if self.max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")

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
    # 31 bits leave room for + j and fit every backend's seed type.
    return int(h[:8], 16) & 0x3FFFFFFF
