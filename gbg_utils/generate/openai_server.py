"""An OpenAI-compatible server as gbg talks to it: what kind it is (vLLM or not), every sampling field sent
explicitly, and POSTs with retries (http_client). The openai backend and the LLM judge share it; the judge needs
nothing else of generation."""

from __future__ import annotations

import threading

from ..http_client import HttpError, JsonClient, default_base_url, origin
from .errors import PER_REQUEST_STATUS, BackendError, Refused


class OpenAIServer:
    """One server, one served model name. Nothing is left to the server: `sampling_fields` gives every field a
    request must carry (see `OpenAIBackend`); `server` "auto" asks /models once whether it is vLLM."""

    RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}
    SERVERS = ("auto", "vllm", "openai")

    def __init__(
        self,
        served_model: str,
        base_url: str | None = None,
        api_key_env: str | None = None,  # None: OPENAI_API_KEY (sent only where http_client.key_decision allows)
        concurrency: int = 32,
        max_retries: int = 5,
        timeout: float = 120.0,
        backoff: float = 1.0,
        server: str = "auto",
        trust_host: bool = False,  # send the key to this URL even over plain http / to a host the rule does not allow
        connect_timeout: float = 10.0,
    ):
        if server not in self.SERVERS:
            raise BackendError(f"server={server!r}: choose one of {', '.join(self.SERVERS)}")
        self.server, self._kind = server, None if server == "auto" else server
        self.served_model = served_model
        self.base_url = (base_url or default_base_url(api_key_env)).rstrip("/")
        self.origin = origin(self.base_url)  # what is printed and stored: never the URL's credentials or path
        self.api_key_env = api_key_env
        self.concurrency, self.max_retries, self.timeout, self.backoff = concurrency, max_retries, timeout, backoff
        self.http = JsonClient(
            self.base_url, api_key_env, trust_host, concurrency, max_retries, timeout, connect_timeout, backoff
        )
        self._lock = threading.Lock()

    @property
    def requests_sent(self) -> int:
        """HTTP requests sent so far, retries included (not the one /models question)."""
        return self.http.requests_sent

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

    def close(self):
        self.http.close()
