"""What every request passes before a route runs, and the headers every response gets (pure ASGI middleware).

The server runs a model for whoever reaches it, so by default it answers only this machine:

1. Host: the Host header must name the server as the user reaches it (by default the loopback names), so
   a page of another site whose DNS name is made to resolve to 127.0.0.1 (DNS rebinding) gets 400, not
   the API. Names for other interfaces are added with `interplab serve --allow-host`.
2. Origin: a POST, PUT, PATCH or DELETE sent by a browser from another origin (a form of another site
   posting to this one) is refused with 403: only the server's own pages run the model.
3. NUL: a path holding a NUL byte is a 404 (no page has one), a query a 422 (no parameter takes one).
4. Body size: a body larger than `max_body_bytes` is refused with 413, from its Content-Length before a
   byte is read, or (a streamed body without one) as soon as the bytes read pass the limit.
5. Headers: no page may be framed by another site (X-Frame-Options DENY and CSP frame-ancestors 'none';
   report files, framed by the report page, are same-origin only), a Content-Security-Policy that allows
   this server's own script, styles, images, frames and fetches and nothing inline, nosniff, and no
   Referer sent to other sites. A response that sets a header itself keeps it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes, urlsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
ANY_HOST = "*"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# Pages: own files only, nothing inline (app.js sets colours through the CSSOM, which CSP leaves alone).
PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
            "frame-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "content-security-policy": PAGE_CSP,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}

ErrorResponse = Callable[[str, int, str], Response]  # (path, status, detail) -> the error page or JSON


@dataclass
class GuardConfig:
    """What the server accepts from a client (see the module docstring)."""

    allowed_hosts: tuple[str, ...] = LOOPBACK_NAMES
    """Names (or IP addresses) the Host header may carry, without the port; any other Host gets a 400, which
    stops DNS rebinding. Binding another interface, add the names clients use for it; "*" allows any."""

    max_body_bytes: int = 1 << 20
    """Largest request body the server reads, in bytes (live inference and steering send a few kB); a larger
    one gets a 413 before it is read."""

    def check(self) -> None:
        from interplab.common import InterplabError

        if self.max_body_bytes < 1:
            raise InterplabError(f"max_body_bytes={self.max_body_bytes}: give a positive number of bytes")
        if not self.allowed_hosts:
            raise InterplabError("allowed_hosts is empty: give the names clients reach the server by, or '*'")


class BodyTooLarge(HTTPException):
    """Raised from `receive` once a streamed body passes the limit; the app's handler answers 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=f"request body larger than {limit} bytes: send less (the "
                                                 "server's limit is set with `interplab serve --max-body`)")


def host_name(host_header: str) -> str:
    """The name of a Host header without its port: "127.0.0.1:8000" -> "127.0.0.1", "[::1]:80" -> "::1"."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _origin_matches(origin: str, scheme: str, host_header: str) -> bool:
    """Whether a browser's Origin ("http://127.0.0.1:8000") is this server as the request reached it."""
    parts = urlsplit(origin)
    return parts.scheme == scheme and parts.netloc.lower() == host_header.strip().lower()


class RequestGuard:
    """Steps 1-4 of the module docstring; refusals are rendered by `error` (an error page, JSON under /api)."""

    def __init__(self, app: ASGIApp, config: GuardConfig, error: ErrorResponse) -> None:
        self.app = app
        self.hosts = {h.strip("[]").lower() for h in config.allowed_hosts}
        self.limit = config.max_body_bytes
        self.error = error

    def refusal(self, scope: Scope) -> tuple[int, str] | None:
        """(status, reason) when the request is refused before any route runs, else None."""
        headers = Headers(scope=scope)
        host, origin, method = headers.get("host", ""), headers.get("origin"), scope["method"]
        if ANY_HOST not in self.hosts and host_name(host) not in self.hosts:
            shown = host_name(host) or "(none)"
            return 400, (f"this server does not answer to the host name {shown!r}; if that is how you reach it, "
                         f"restart it with `interplab serve --allow-host {shown}`")
        if method not in SAFE_METHODS and origin is not None and not _origin_matches(origin, scope["scheme"], host):
            return 403, f"a {method} from another origin ({origin}) is refused: use this server's own pages"
        if b"\0" in unquote_to_bytes(scope.get("raw_path") or scope["path"].encode()):
            return 404, "no such page (the path holds a NUL byte)"
        if b"\0" in unquote_to_bytes(scope.get("query_string", b"")):
            return 422, "a query parameter holds a NUL byte (%00): remove it"
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self.limit:
            return 413, str(BodyTooLarge(self.limit).detail)
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        refused = self.refusal(scope)
        if refused is not None:
            return await self.error(scope["path"], *refused)(scope, receive, send)
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracked_send)
        except BodyTooLarge as exc:  # read outside a route (the app's handler answers it inside one)
            if started:
                raise
            await self.error(scope["path"], 413, str(exc.detail))(scope, receive, send)


class SecurityHeaders:
    """Step 5 of the module docstring: headers added to every response that does not set them itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
