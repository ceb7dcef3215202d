"""Any OpenAI-compatible server as a backend: vLLM's own, or an API model."""

from __future__ import annotations

import json
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

from ..decoding import DecodingConfig
from ..provenance import package_versions
from ..tasks.base import PrefilledChat
from .base import Backend, Completion, Request
from .errors import BackendError, Refused
from .openai_server import OpenAIServer


class OpenAIBackend(OpenAIServer, Backend):
    """Any OpenAI-compatible server: vLLM's own, or an API model. Chat messages go to /chat/completions,
    raw strings to /completions. The key is read from the environment (`api_key_env`) and never stored.

    Nothing is left to the server: every request carries every sampling field (`sampling_fields`), because a vLLM
    server fills the missing ones from the model's generation_config.json (its default `--generation-config auto`;
    Qwen2-7B-Instruct's sets top_k 20, top_p 0.8, temperature 0.7, repetition_penalty 1.05). top_k, min_p and
    repetition_penalty are vLLM's, not OpenAI's (whose API rejects them): `server` "auto" sends them when the
    server's /models says `owned_by: vllm`, "vllm" always, "openai" never -- and a config that needs one of them
    at a non-neutral value is refused, in one line, rather than sent without it (`OpenAIServer`, which the
    judge shares)."""

    name = "openai"

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
        OpenAIServer.__init__(
            self,
            served_model or model,
            base_url,
            api_key_env,
            concurrency,
            max_retries,
            timeout,
            backoff,
            server,
            trust_host,
            connect_timeout,
        )
        self.model, self.dtype = model, dtype
        # The engine's options: identity.Engine asks the server (/models) what it serves with them; `base_url` and
        # the key's settings are used, never stored (Engine.identity keeps none of them).
        self.options = {
            "base_url": self.base_url,
            "served_model": self.served_model,
            "api_key_env": api_key_env,
            "trust_host": trust_host,
            "weights": weights,
        }

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

    def provenance(self):
        return {
            **super().provenance(),
            "base_url": self.origin,  # scheme, host and port only: a URL's user:password or query never stored
            "served_model": self.served_model,
            "server": self.server,  # as asked; each config's `sampling` settings say what it was taken for
            "device": "remote",
            "versions": package_versions("httpx"),
        }


def _choice_logprobs(ch: dict, chat: bool) -> list[float] | None:
    lp = ch.get("logprobs")
    if not lp:
        return None
    if chat:
        content = lp.get("content")
        return None if content is None else [t["logprob"] for t in content]
    toks = lp.get("token_logprobs")
    return None if toks is None else [t for t in toks if t is not None]
