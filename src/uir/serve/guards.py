"""The ASGI middlewares that guard ``uir serve`` before a request reaches the application.

``HostGuard`` (Host and Origin headers: DNS rebinding, cross-site posts), ``BodyLimit`` (the body size) and
``Admission`` (a pool place taken before the body is read). Each answers a refusal itself, as one-line
``{"detail": ...}`` JSON.
"""

from __future__ import annotations

import asyncio
import json
from time import monotonic
from urllib.parse import urlsplit

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from uir.serve.pool import InferencePool, PoolFull

SLOT = "uir.slot"  # where Admission leaves the request's place in the ASGI scope
# The Host names a server bound to loopback answers to, by default (a DNS-rebinding page sends its own name).
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


class BodyLimit:
    """ASGI middleware: 413 for a body over ``max_bytes``, told by Content-Length or counted as it streams in."""

    def __init__(self, app: ASGIApp, max_bytes: int, limit_mb: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.limit_mb = limit_mb

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                # FastAPI re-raises an HTTPException from the body reader as it is.
                raise HTTPException(413, self._detail())
            return message

        await self.app(scope, limited, send)

    def _detail(self) -> str:
        return f"upload larger than this server's limit of {self.limit_mb:g} MiB (uir serve --max-upload-mb)"

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _send_detail(send, 413, self._detail(), [(b"connection", b"close")])


class Admission:
    """ASGI middleware: a request that runs a job takes its pool place before its body is read.

    A busy server answers 503 with ``Retry-After`` at once, without receiving the upload (the server discards it
    unread). The place is handed to the job (``InferencePool.submit(slot=...)``) and let go on every path; the body
    must arrive within ``upload_timeout`` seconds (408 beyond), so slow uploads cannot hold the places.
    """

    def __init__(
        self, app: ASGIApp, pool: InferencePool, paths: tuple[str, ...], retry_after: int, upload_timeout: float
    ) -> None:
        self.app = app
        self.pool = pool
        self.paths = paths
        self.retry_after = retry_after
        self.upload_timeout = upload_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "").removeprefix(scope.get("root_path", ""))
        if scope["type"] != "http" or scope["method"] != "POST" or path not in self.paths:
            await self.app(scope, receive, send)
            return
        try:
            slot = self.pool.reserve()
        except PoolFull as err:
            detail = f"the server is busy ({err}); retry in {self.retry_after} s"
            # No Connection: close: a client still sending its upload would see the connection reset, not this
            # answer (measured with benchmarks/serve_attack.py). uvicorn reads the rest of the body and drops it.
            await _send_detail(send, 503, detail, [(b"retry-after", str(self.retry_after).encode())])
            return
        try:
            await self.app({**scope, SLOT: slot}, self._timed(receive), send)
        finally:
            slot.release()

    def _timed(self, receive: Receive) -> Receive:
        deadline = monotonic() + self.upload_timeout
        complete = False

        async def timed() -> Message:
            nonlocal complete
            if complete:
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - monotonic()))
            except asyncio.TimeoutError:
                limit = f"{self.upload_timeout:g} s"
                raise HTTPException(
                    408, f"the upload took longer than this server's limit of {limit} (uir serve --upload-timeout)"
                ) from None
            complete = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        return timed


class HostGuard:
    """ASGI middleware against DNS rebinding and cross-site requests.

    A Host header whose name is not in ``allowed_hosts`` (when given) gets 400: a page on another site that made
    its name point at 127.0.0.1 sends its own name. A POST whose ``Origin`` is neither this server's own (the Host)
    nor one of ``allowed_hosts`` gets 403: a page elsewhere posting to it with the visitor's browser. (Behind a
    reverse proxy that rewrites Host, the page's Origin is the proxy's public name: ``uir serve --allowed-host``.)
    """

    def __init__(self, app: ASGIApp, allowed_hosts: tuple[str, ...] | None) -> None:
        self.app = app
        self.allowed = None if allowed_hosts is None else {h.lower().strip("[]") for h in allowed_hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        host = headers.get(b"host", b"").decode("latin-1")
        if self.allowed is not None and host_name(host) not in self.allowed:
            names = ", ".join(sorted(self.allowed))
            await _send_detail(send, 400, f"this server answers to {names} only, not to the Host {host[:100]!r}")
            return
        origin = headers.get(b"origin")
        if scope["method"] == "POST" and origin is not None:
            origin_text = origin.decode("latin-1")
            netloc = urlsplit(origin_text).netloc.lower()
            same = bool(host) and netloc == host.lower()
            named = self.allowed is not None and bool(netloc) and host_name(netloc) in self.allowed
            if not (same or named):
                detail = f"cross-site request refused: Origin {origin_text[:100]!r} is not this server"
                await _send_detail(send, 403, f"{detail} (post from its page, or from a client that sends no Origin)")
                return
        await self.app(scope, receive, send)


def host_name(host: str) -> str:
    """The name in a Host header, lower case, without the port, brackets or a final dot.

    Example:
        >>> host_name("[::1]:8000"), host_name("LocalHost.:80"), host_name("127.0.0.1")
        ('::1', 'localhost', '127.0.0.1')
    """
    host = host.strip().lower()
    if host.startswith("[") and "]" in host:
        return host[1 : host.index("]")]
    return host.partition(":")[0].rstrip(".")


async def _send_detail(send: Send, status: int, detail: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    """Answer ``{"detail": detail}`` from a middleware, before the application runs."""
    body = json.dumps({"detail": detail}).encode()
    start = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": [*start, *(headers or [])]})
    await send({"type": "http.response.body", "body": body})
