"""The transformers backend: HF `generate`, batched with left padding, each row drawing with its own generator."""

from __future__ import annotations

from ..decoding import DecodingConfig
from ..identity import TRANSFORMERS_BATCH_SIZE
from ..logs import engine_output
from ..models import model_info, resolve_model
from ..provenance import package_versions
from .base import Backend, Completion, request_ids, truncate_at_stop
from .errors import BackendError


class TransformersBackend(Backend):
    """HF `generate`, batched with left padding; every row (prompt i, sample j) draws from its own
    `torch.Generator(seed_i + j)`, so a sample does not depend on what else is in the batch."""

    name = "transformers"

    def __init__(self, model: str, dtype: str = "bfloat16", batch_size: int = TRANSFORMERS_BATCH_SIZE, device: str | None = None):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.model, self.dtype, self.batch_size = model, dtype, batch_size
        self.options = {"batch_size": batch_size}
        path = resolve_model(model, dtype)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        with engine_output():
            try:
                self.tokenizer = AutoTokenizer.from_pretrained(path)
                self.hf = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype)).to(self.device).eval()
            except (OSError, ValueError) as e:
                raise BackendError(f"transformers could not load model {model!r} from {path}: {str(e).splitlines()[0]}") from e
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        self._info = {"path": path, "device": self.device, **model_info(path)}

    def generate(self, requests, config):
        rows = [(i, j, r.seed + j) for i, r in enumerate(requests) for j in range(r.n)]
        ids = self.last_prompt_ids = request_ids(self, requests)
        result: list[list[Completion]] = [[None] * r.n for r in requests]  # type: ignore[list-item]
        for start in range(0, len(rows), self.batch_size):
            batch = rows[start : start + self.batch_size]
            with engine_output():
                comps = self._generate_rows([ids[i] for i, _, _ in batch], [s for _, _, s in batch], config)
            for (i, j, _), c in zip(batch, comps):
                result[i][j] = c
        return result

    def _generate_rows(self, ids: list[list[int]], seeds: list[int], config: DecodingConfig) -> list[Completion]:
        import torch
        from transformers import LogitsProcessorList

        width = max(len(x) for x in ids)  # left padding: every row's last prompt token sits at the same position
        enc = {
            "input_ids": torch.tensor([[self.pad_id] * (width - len(x)) + x for x in ids], device=self.device),
            "attention_mask": torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in ids], device=self.device),
        }
        sampler = _RowSampler(seeds, config, self.device)
        kw = {}
        if config.stop:
            kw.update(stop_strings=list(config.stop), tokenizer=self.tokenizer)
        with torch.no_grad():
            out = self.hf.generate(
                **enc,
                do_sample=False,
                max_new_tokens=config.max_new_tokens,
                repetition_penalty=config.repetition_penalty,
                logits_processor=LogitsProcessorList([sampler]),
                pad_token_id=self.pad_id,
                temperature=None,
                top_p=None,
                top_k=None,
                **kw,
            )
        gen = out[:, width:]
        eos = set(_as_list(self.hf.generation_config.eos_token_id) + _as_list(self.tokenizer.eos_token_id))
        comps = []
        for r, row in enumerate(gen.tolist()):
            n, hit_eos = len(row), False
            for t, tok in enumerate(row):
                if tok in eos:
                    n, hit_eos = t + 1, True
                    break
            text = self.tokenizer.decode(row[:n], skip_special_tokens=True)
            text, hit_stop = truncate_at_stop(text, config.stop)
            lp = sampler.mean_logprob(r, n) if config.logprobs else None
            comps.append(Completion(text, n, "stop" if (hit_eos or hit_stop) else "length", lp))
        return comps

    def sampling_settings(self, config):
        """HF `generate`'s arguments (on top of the model's generation_config.json, which HF merges under them) and the
        row sampler's own temperature / top-k / top-p."""
        return {
            "temperature": config.temperature,
            "top_p": config.top_p if not config.greedy else 1.0,
            "top_k": config.top_k if not config.greedy and config.top_k > 0 else None,
            "repetition_penalty": config.repetition_penalty,
            "max_new_tokens": config.max_new_tokens,
            "stop": list(config.stop),
            "do_sample": False,  # every draw is _RowSampler's
            "model_generation_config": self.hf.generation_config.to_diff_dict(),
            "seeded": not config.greedy,
        }

    def provenance(self):
        return {
            **super().provenance(),
            "dtype": self.dtype,
            **self._info,
            "batch_size": self.batch_size,
            "versions": package_versions("torch", "transformers"),
        }


def _as_list(x) -> list:
    return [] if x is None else list(x) if isinstance(x, (list, tuple)) else [x]


class _RowSampler:
    """A logits processor that picks each row's next token itself: argmax for greedy, else a draw from the
    temperature / top-k / top-p distribution with the row's own generator. `generate` then runs with
    do_sample=False and takes the single finite logit. HF applies the repetition penalty before this."""

    def __init__(self, seeds: list[int], config: DecodingConfig, device):
        import torch
        from transformers.generation.logits_process import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

        self.config = config
        self.gens = [torch.Generator(device=device).manual_seed(s) for s in seeds]
        self.warpers = []
        if not config.greedy:
            self.warpers.append(TemperatureLogitsWarper(config.temperature))
            if config.top_k > 0:
                self.warpers.append(TopKLogitsWarper(config.top_k))
            if config.top_p < 1.0:
                self.warpers.append(TopPLogitsWarper(config.top_p))
        self.logprobs: list = []  # per step: the chosen tokens' log-probs, one per row

    def __call__(self, input_ids, scores):
        import torch

        scores = scores.float()
        raw = torch.log_softmax(scores, dim=-1)
        if self.config.greedy:
            chosen = scores.argmax(dim=-1)
        else:
            warped = scores
            for w in self.warpers:
                warped = w(input_ids, warped)
            probs = torch.softmax(warped, dim=-1)
            chosen = torch.stack([torch.multinomial(probs[r], 1, generator=g)[0] for r, g in enumerate(self.gens)])
        if self.config.logprobs:
            self.logprobs.append(raw.gather(1, chosen[:, None])[:, 0].cpu())
        out = torch.full_like(scores, float("-inf"))
        out.scatter_(1, chosen[:, None], 0.0)
        return out

    def mean_logprob(self, row: int, n: int) -> float | None:
        if not self.logprobs or n == 0:
            return None
        return float(sum(step[row].item() for step in self.logprobs[:n]) / n)
