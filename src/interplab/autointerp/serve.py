"""A tiny OpenAI-compatible chat server in front of any ExplainerClient (usually a local HF model).

Why: the explain/score code only speaks HTTP to remote explainers, so serving a local model the same
way lets one machine host the explainer for several runs, and lets tests exercise the real HTTP path
(`serve_client(...)` on 127.0.0.1 with a free port, in a background thread).

Endpoints: POST /v1/chat/completions ({"messages": [...], "max_tokens": n} -> OpenAI chat JSON),
GET /v1/models. Requests are answered one at a time (a lock around the model: generate is not
thread-safe and a CPU model gains nothing from concurrency).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from interplab.autointerp.clients import ExplainerClient
from interplab.common import InterplabError, get_logger

log = get_logger(__name__)


def _completion(content: str, model: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{time.time_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
        ],
    }


def _handler(client: ExplainerClient, lock: threading.Lock) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            log.debug("explain-server: " + format, *args)

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path.rstrip("/") == "/v1/models":
                self._send(200, {"object": "list", "data": [{"id": client.name, "object": "model"}]})
            else:
                self._send(404, {"error": {"message": f"no route {self.path}; use /v1/chat/completions"}})

        def do_POST(self) -> None:
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._send(404, {"error": {"message": f"no route {self.path}; use /v1/chat/completions"}})
                return
            try:
                request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                messages = request["messages"]
                if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
                    raise TypeError("messages must be a list of objects")
            except (ValueError, KeyError, TypeError) as exc:
                self._send(400, {"error": {"message": f"bad request: {exc}"}})
                return
            with lock:
                try:
                    content = client.complete(messages, max_tokens=request.get("max_tokens"))
                except Exception as exc:  # the server must answer, not die, whatever the model does
                    log.warning("explain-server: completion failed: %s", exc)
                    self._send(500, {"error": {"message": f"{type(exc).__name__}: {exc}"}})
                    return
            self._send(200, _completion(content, client.name))

    return Handler


class ExplainServer:
    """A running server; `url` is what OpenAICompatibleClient takes."""

    def __init__(self, client: ExplainerClient, host: str = "127.0.0.1", port: int = 0):
        try:
            self.httpd = ThreadingHTTPServer((host, port), _handler(client, threading.Lock()))
        except OSError as exc:
            raise InterplabError(
                f"cannot listen on {host}:{port} ({exc.strerror}); pick another --port"
            ) from None
        self.httpd.daemon_threads = True
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> ExplainServer:
        """Serve in a daemon thread (returns at once)."""
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="explain-server", daemon=True)
        self.thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until interrupted (the CLI's `explain-server`)."""
        self.httpd.serve_forever()

    def close(self) -> None:
        if self.thread is not None:  # shutdown() waits for a serve_forever loop, so only stop a started one
            self.httpd.shutdown()
            self.thread.join(timeout=5)
        self.httpd.server_close()


@contextmanager
def serve_client(client: ExplainerClient, host: str = "127.0.0.1", port: int = 0) -> Iterator[ExplainServer]:
    """Run an OpenAI-compatible server for `client` on host:port (0 = a free port) for the block."""
    server = ExplainServer(client, host, port).start()
    try:
        yield server
    finally:
        server.close()
