"""HTTP to OpenAI-compatible servers (generation backends and judges): one retrying JSON client, the rule for
where an API key may be sent, and the one form of a URL that is ever stored or printed.

    >>> origin("http://user:pw@gpu-box:8000/v1?key=x")
    'http://gpu-box:8000'
    >>> key_decision("http://gpu-box:8000/v1", "OPENAI_API_KEY", {"OPENAI_API_KEY": "sk-.."})
    KeyDecision(env='OPENAI_API_KEY', send=False, why='...')

Where a key goes (docs/judges.md, "Keys"): the key is read from the environment variable `api_key_env` names
(default OPENAI_API_KEY), never from a parameter. It is sent only over https or to a loopback host; and the
OpenAI key (OPENAI_API_KEY) only to api.openai.com or to the host of $OPENAI_BASE_URL (set by the user in their
own environment, not by a params file). `trust_host=True` lifts both rules for that one URL. A withheld key is
named in the error a 401/403 raises, so a server that needed it says why it did not get it.

This module imports nothing of gbg: the foundation (identity) and every layer can use it.
"""

from __future__ import annotations

import ipaddress
import os
import random
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

OPENAI_API = "https://api.openai.com/v1"
OPENAI_KEY_ENV = "OPENAI_API_KEY"
RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}
CONNECT_TIMEOUT = 10.0  # seconds to open a connection: a dead host fails in seconds, a long generation still gets `timeout`


class HttpError(RuntimeError):
    """A server that refused a request (`status` set) or kept failing (`status` None), in one line. The message
    names the server by `origin` only: never a password, path or query string of its URL."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


def origin(url: str | None) -> str:
    """scheme://host[:port] of a URL: the only part of a URL gbg stores or prints (a URL's user:password, path
    and query can carry credentials)."""
    if not url:
        return ""
    try:
        p = urlsplit(url)
        host = p.hostname or ""
        port = p.port
    except ValueError:
        return "<unparseable url>"
    if ":" in host:  # IPv6
        host = f"[{host}]"
    return f"{p.scheme}://{host}" + (f":{port}" if port else "")


def redact(text: str, url: str | None) -> str:
    """`text` with every occurrence of `url` (and of its credentials) replaced by its origin."""
    if not url or not text:
        return text
    text = text.replace(url.rstrip("/"), origin(url))
    try:
        p = urlsplit(url)
        if p.password:
            text = text.replace(p.password, "***")
    except ValueError:
        pass
    return text


def is_loopback(host: str | None) -> bool:
    host = (host or "").strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class KeyDecision:
    env: str  # the variable the key is read from
    send: bool  # whether the key (if set) goes to this URL
    why: str  # one line: the rule that decided


def key_env_for(api_key_env: str | None) -> str:
    return api_key_env or OPENAI_KEY_ENV


def default_base_url(api_key_env: str | None = None, environ=None) -> str:
    """The URL when none is given: `<NAME>_BASE_URL` beside the key variable `<NAME>_API_KEY` (OPENAI_BASE_URL by
    default), else the OpenAI API."""
    environ = os.environ if environ is None else environ
    env = key_env_for(api_key_env)
    if env.endswith("_API_KEY") and environ.get(env[: -len("_API_KEY")] + "_BASE_URL"):
        return environ[env[: -len("_API_KEY")] + "_BASE_URL"]
    return OPENAI_API


def key_decision(url: str, api_key_env: str | None = None, environ=None, trust_host: bool = False) -> KeyDecision:
    """Whether the key of `api_key_env` may be sent to `url` (the rule in this module's docstring)."""
    environ = os.environ if environ is None else environ
    env = key_env_for(api_key_env)
    p = urlsplit(url)
    host = (p.hostname or "").lower()
    if trust_host:
        return KeyDecision(env, True, f"trust_host=True for {origin(url)}")
    if p.scheme != "https" and not is_loopback(host):
        return KeyDecision(env, False, f"{origin(url)} is plain {p.scheme or '?'} to a host that is not loopback")
    if env == OPENAI_KEY_ENV:
        own = {"api.openai.com"}
        if environ.get("OPENAI_BASE_URL"):
            own.add((urlsplit(environ["OPENAI_BASE_URL"]).hostname or "").lower())
        if host not in own and not is_loopback(host):
            return KeyDecision(env, False, f"${env} goes only to api.openai.com or $OPENAI_BASE_URL's host, not {origin(url)}")
    return KeyDecision(env, True, f"${env} over {p.scheme} to {origin(url)}")


class JsonClient:
    """JSON over HTTP to one server, with retries and exponential backoff (with jitter) on 429/5xx, timeouts,
    dropped connections and 200 answers whose body is not a JSON object (a proxy's HTML page is a transient fault,
    not an answer). The connect timeout is separate from the read timeout: an unreachable host fails fast."""

    def __init__(
        self,
        base_url: str,
        api_key_env: str | None = None,
        trust_host: bool = False,
        concurrency: int = 8,
        max_retries: int = 5,
        timeout: float = 120.0,
        connect_timeout: float = CONNECT_TIMEOUT,
        backoff: float = 1.0,
    ):
        import httpx

        self.base_url = base_url.rstrip("/")
        self.origin = origin(self.base_url)
        self.max_retries, self.timeout, self.backoff = max_retries, timeout, backoff
        self.connect_timeout = min(connect_timeout, timeout)
        self.key = key_decision(self.base_url, api_key_env, trust_host=trust_host)
        secret = os.environ.get(self.key.env, "")
        self.key_withheld = bool(secret) and not self.key.send
        headers = {"Authorization": f"Bearer {secret}"} if secret and self.key.send else {}
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=self.connect_timeout),
            headers=headers,
            limits=httpx.Limits(max_connections=concurrency),
        )
        self.requests_sent = 0
        self._lock = threading.Lock()

    def request(self, method: str, path: str, body: dict | None = None, count: bool = True) -> dict:
        """The server's JSON object for one request; `HttpError` when it refuses (status set) or keeps failing."""
        import httpx

        where = f"{self.origin} ({method} {path})"
        last = ""
        for attempt in range(self.max_retries + 1):
            if count:
                with self._lock:
                    self.requests_sent += 1
            try:
                resp = self._client.request(method, self.base_url + path, json=body)
            except (httpx.TimeoutException, httpx.TransportError) as e:
                last = f"{type(e).__name__}: {redact(str(e), self.base_url)}"
            else:
                if resp.status_code == 200:
                    try:
                        data = resp.json()
                    except ValueError:
                        data = None
                    if isinstance(data, dict):
                        return data
                    kind = "a JSON " + type(data).__name__ if data is not None else "not JSON"
                    last = f"HTTP 200 with a body that is {kind}: {_snippet(resp.text)}"
                elif resp.status_code not in RETRY_STATUS:
                    raise HttpError(
                        f"{where} answered {resp.status_code}: {_snippet(resp.text, 300)}{self._key_note(resp)}", resp.status_code
                    )
                else:
                    last = f"HTTP {resp.status_code}: {_snippet(resp.text)}"
                    retry_after = resp.headers.get("retry-after")
                    if retry_after and retry_after.replace(".", "", 1).isdigit() and attempt < self.max_retries:
                        time.sleep(min(float(retry_after), 60))
                        continue
            if attempt < self.max_retries:
                time.sleep(self.backoff * (2**attempt) * (0.5 + random.random() / 2))
        raise HttpError(f"{where} failed after {self.max_retries + 1} attempts; last error: {last}")

    def _key_note(self, resp) -> str:
        if resp.status_code in (401, 403) and self.key_withheld:
            return f" (${self.key.env} was not sent: {self.key.why}; pass trust_host=True to send it)"
        return ""

    def close(self) -> None:
        self._client.close()


def _snippet(text: str, n: int = 200) -> str:
    return " ".join((text or "").split())[:n]
