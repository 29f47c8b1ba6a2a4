"""Hostile requests against the real app: ids beyond 64 bits, NUL bytes, oversized and streamed bodies, foreign
Host names (DNS rebinding), cross-origin POSTs, model runs by GET, and the security headers of every page."""

from __future__ import annotations

import asyncio
import socket
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from interplab.web.app import create_app
from interplab.web.guards import GuardConfig
from interplab.web.reports import OutsideReportsError, resolve_inside
from web_data import LOCAL, local_client, served

BIG = "99999999999999999999"  # > 2**63 - 1: SQLite's driver cannot bind it


@pytest.fixture
def fresh_app(web_data):
    """An app of its own (nothing loaded yet), with a 1000-byte body limit."""
    return create_app(web_data.db_path, reports_dir=web_data.reports_dir, device="cpu",
                      guards=GuardConfig(max_body_bytes=1000))


@pytest.mark.parametrize("path", [f"/api/saes/{BIG}", f"/api/saes/{BIG}/features", f"/api/saes/1/features/{BIG}",
                                  f"/sae/{BIG}", f"/sae/1/feature/{BIG}", f"/sae/{BIG}/feature/1"])
def test_ids_beyond_64_bits_are_404s_naming_the_id(client, path: str) -> None:
    resp = client.get(path)
    assert resp.status_code == 404 and BIG in resp.text


def test_ids_beyond_64_bits_in_queries_and_bodies_answer_without_a_500(client) -> None:
    assert client.get("/api/search", params={"q": "cat", "sae_id": BIG}).json()["by_token"] == []
    assert client.get("/api/saes/1/features", params={"offset": BIG}).json()["features"] == []
    assert client.get("/sae/1", params={"page": BIG}).status_code == 200
    assert client.get("/search", params={"q": "cat", "sae_id": BIG}).status_code == 200
    live = client.post("/api/live", json={"sae_id": int(BIG), "text": "x"})
    assert live.status_code == 404 and BIG in live.json()["detail"]
    steer = client.post("/api/steer", json={"sae_id": int(BIG), "latent": 1, "prompt": "x"})
    assert steer.status_code == 404 and BIG in steer.json()["detail"]


@pytest.mark.parametrize("path", ["/reports/a%00b", "/report-files/a%00b", "/report-files/probe/%00", "/sae/1%00",
                                  "/api/saes/1%00"])
def test_nul_byte_in_a_path_is_a_404(client, path: str) -> None:
    resp = client.get(path)
    assert resp.status_code == 404 and "NUL" in resp.text


def test_nul_byte_in_a_query_is_a_422_and_reports_refuse_nul_paths(client, web_data) -> None:
    resp = client.get("/api/search", params={"q": "cat\0"})
    assert resp.status_code == 422 and "NUL" in resp.json()["detail"]
    assert client.get("/search", params={"q": "\0"}).status_code == 422
    with pytest.raises(OutsideReportsError):
        resolve_inside(web_data.reports_dir, "probe/\0index.json")


def test_body_declared_larger_than_the_limit_is_refused_before_it_is_read(fresh_app) -> None:
    with served(fresh_app) as url, socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1]))) as sock:
        sock.settimeout(60)  # a hang guard, not a timing check: the answer must come without the body
        sock.sendall(b"POST /api/live HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1073741824\r\n\r\n{\"sae_id\": 1, ")  # 1 GiB announced, 14 bytes sent
        answer = _read_response(sock)
    assert answer.startswith(b"HTTP/1.1 413") and b"larger than 1000 bytes" in answer


@pytest.mark.parametrize("path, content_type", [("/api/live", "application/json"),
                                                ("/live", "application/x-www-form-urlencoded"),
                                                ("/steer", "application/x-www-form-urlencoded")])
def test_streamed_body_is_cut_off_once_it_passes_the_limit(fresh_app, path: str, content_type: str) -> None:
    with ThreadPoolExecutor(1) as pool:  # a thread of its own: Playwright may hold this thread's event loop
        run = pool.submit(asyncio.run, _stream_post(fresh_app, path, content_type, chunk=100, n_chunks=100_000))
        status, chunks_read = run.result()
    assert status == 413
    assert chunks_read <= 11  # 1000 bytes in 100-byte chunks: the 11th passes the limit; never the whole 10 MB


def test_body_limit_is_configurable_and_small_bodies_pass(fresh_app, web_data) -> None:
    client = local_client(fresh_app)
    assert client.post("/api/live", json={"sae_id": 99, "text": "x" * 900}).status_code == 404  # read, then 404
    big = client.post("/api/live", json={"sae_id": 99, "text": "x" * 2000})
    assert big.status_code == 413 and "--max-body" in big.json()["detail"]
    roomy = local_client(create_app(web_data.db_path, guards=GuardConfig(max_body_bytes=10_000)))
    assert roomy.post("/api/live", json={"sae_id": 99, "text": "x" * 2000}).status_code == 404


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "127.0.0.1.nip.io", "localhost.evil.example"])
def test_requests_for_a_foreign_host_name_are_refused(fresh_app, host: str) -> None:
    resp = TestClient(fresh_app, base_url=f"http://{host}").get("/api/saes")
    assert resp.status_code == 400 and "--allow-host" in resp.json()["detail"]
    page = TestClient(fresh_app, base_url=f"http://{host}").get("/")
    assert page.status_code == 400 and "--allow-host" in page.text


@pytest.mark.parametrize("base", ["http://127.0.0.1:8000", "http://localhost:1234", "http://[::1]:8000",
                                  "http://LOCALHOST"])
def test_loopback_names_are_answered(fresh_app, base: str) -> None:
    assert TestClient(fresh_app, base_url=base).get("/api/saes").status_code == 200


def test_allowed_hosts_are_configurable(web_data) -> None:
    lan = create_app(web_data.db_path, guards=GuardConfig(allowed_hosts=("dash.lan", "10.0.0.5")))
    assert TestClient(lan, base_url="http://dash.lan:8000").get("/api/saes").status_code == 200
    assert TestClient(lan, base_url="http://10.0.0.5").get("/api/saes").status_code == 200
    assert TestClient(lan, base_url=LOCAL).get("/api/saes").status_code == 400
    anyone = create_app(web_data.db_path, guards=GuardConfig(allowed_hosts=("*",)))
    assert TestClient(anyone, base_url="http://whatever.example").get("/api/saes").status_code == 200


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://127.0.0.1:9999", "https://127.0.0.1:8000"])
def test_cross_origin_posts_are_refused_before_the_model_runs(fresh_app, origin: str) -> None:
    client = local_client(fresh_app)
    resp = client.post("/api/live", json={"sae_id": 1, "text": "hello"}, headers={"Origin": origin})
    assert resp.status_code == 403 and "origin" in resp.json()["detail"]
    form = client.post("/live", data={"sae_id": 1, "text": "hello"}, headers={"Origin": origin})
    assert form.status_code == 403
    assert fresh_app.state.web.live._saes == {}  # nothing loaded, nothing run


def test_same_origin_posts_pass(fresh_app) -> None:
    resp = local_client(fresh_app).post("/api/live", json={"sae_id": 99, "text": "x"}, headers={"Origin": LOCAL})
    assert resp.status_code == 404  # through the guard, to the route


def test_get_fills_the_forms_in_but_never_runs_the_model(fresh_app) -> None:
    client = local_client(fresh_app)
    live = client.get("/live", params={"sae_id": 1, "text": "the cat sat", "top_n": 3})
    assert live.status_code == 200 and "the cat sat</textarea>" in live.text and 'id="live-table"' not in live.text
    steer = client.get("/steer", params={"sae_id": 1, "latent": 7, "prompt": "The cat", "coef": 40})
    assert steer.status_code == 200 and "The cat</textarea>" in steer.text and 'class="gen steered"' not in steer.text
    state = fresh_app.state.web.live
    assert state._models == {} and state._saes == {}
    assert 'method="post"' in live.text and 'method="post"' in steer.text
    assert client.post("/live", data={"sae_id": 1, "text": "the cat sat"}).text.count('class="live-row"') > 0


def test_form_posts_must_be_urlencoded(fresh_app) -> None:
    resp = local_client(fresh_app).post("/live", json={"sae_id": 1, "text": "hello"})
    assert resp.status_code == 415 and "x-www-form-urlencoded" in resp.text


@pytest.mark.parametrize("path", ["/", "/sae/1/feature/7", "/live", "/steer", "/search?q=cat", "/reports/probe",
                                  "/api/saes", "/sae/99", "/static/app.js"])
def test_every_response_forbids_framing_and_carries_the_csp(client, path: str) -> None:
    headers = client.get(path).headers
    assert headers["x-frame-options"] == "DENY"
    csp = headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert headers["x-content-type-options"] == "nosniff" and headers["referrer-policy"] == "same-origin"


def test_refusals_carry_the_security_headers_too(fresh_app) -> None:
    resp = TestClient(fresh_app, base_url="http://evil.example").get("/")
    assert resp.status_code == 400 and resp.headers["x-frame-options"] == "DENY"


def test_pages_hold_no_inline_style_or_script(client) -> None:
    for path in ["/", "/sae/1", "/sae/1/feature/7", "/live", "/steer", "/search?q=cat", "/reports/probe"]:
        html = client.get(path).text
        assert " style=" not in html and "<style" not in html, path
        assert "<script>" not in html and " on" + "click=" not in html, path


def test_bad_guard_settings_are_one_line_errors(web_data) -> None:
    from interplab.common import InterplabError

    with pytest.raises(InterplabError, match="positive"):
        create_app(web_data.db_path, guards=GuardConfig(max_body_bytes=0))
    with pytest.raises(InterplabError, match="allowed_hosts"):
        create_app(web_data.db_path, guards=GuardConfig(allowed_hosts=()))


# ---- helpers: an HTTP response read off a socket; a streamed request counting the chunks the app reads ----

def _read_response(sock: socket.socket) -> bytes:
    """Status line, headers and the body of its Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data and (chunk := sock.recv(65536)):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
    while len(body) < length and (chunk := sock.recv(65536)):
        body += chunk
    return head + b"\r\n\r\n" + body


async def _stream_post(app, path: str, content_type: str, chunk: int, n_chunks: int) -> tuple[int, int]:
    """POST a body of n_chunks x chunk bytes with no Content-Length, chunk by chunk; (status, chunks read)."""
    read = 0
    sent: list[dict] = []

    async def receive() -> dict:
        nonlocal read
        read += 1
        return {"type": "http.request", "body": b"x" * chunk, "more_body": read < n_chunks}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"host", b"127.0.0.1:8000"), (b"content-type", content_type.encode()),
                         (b"transfer-encoding", b"chunked")],
             "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000)}
    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    return int(start["status"]), read
