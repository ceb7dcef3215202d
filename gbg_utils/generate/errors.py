"""The errors of generation: a backend that cannot run, a server that keeps failing, or one request refused."""

from __future__ import annotations

from ..http_client import HttpError


class BackendError(HttpError):
    """A backend that cannot be loaded or a server that keeps failing, with a one-line reason (`status`: the HTTP
    status a server refused a request with, else None)."""


class Refused(BackendError):
    """A server refused this one request (HTTP 400/413/422, e.g. a prompt longer than its context): the item's
    fault, not the server's; the stream records it and goes on."""


PER_REQUEST_STATUS = {400, 413, 422}  # refusals of one request; 401/403/404 would refuse every request alike
