"""Browser fixtures: the real app under uvicorn on a free loopback port (in a thread), and headless Chromium.

Playwright drives Debian's Chromium (/usr/bin/chromium); it never downloads a browser. The tests are
skipped, saying why, only when that binary or the playwright package is missing.
"""

from __future__ import annotations

import importlib.util
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI

from interplab.web.app import create_app
from report_kinds import write_every_report_kind
from web_data import WebData, build_web_data

CHROMIUM = Path("/usr/bin/chromium")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def browser_web_data(tmp_path_factory, tiny_model_dir) -> WebData:
    return build_web_data(tmp_path_factory.mktemp("webui"), tiny_model_dir("gpt2"))


@contextmanager
def _served(app: FastAPI) -> Iterator[str]:
    """`app` under uvicorn in a thread on a free loopback port; yields its base URL."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def base_url(browser_web_data: WebData) -> Iterator[str]:
    app = create_app(browser_web_data.db_path, reports_dir=browser_web_data.reports_dir, device="cpu")
    with _served(app) as url:
        yield url


@pytest.fixture(scope="session")
def report_kinds_url(browser_web_data: WebData, tmp_path_factory, tiny_model_dir) -> Iterator[str]:
    """A server whose reports folder holds one report of every kind the CLI writes (report_kinds.py)."""
    root = tmp_path_factory.mktemp("report_kinds")
    write_every_report_kind(root, tiny_model_dir("gpt2"), tiny_model_dir("llama", d_model=64))
    with _served(create_app(browser_web_data.db_path, reports_dir=root, device="cpu")) as url:
        yield url


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: install Debian's chromium (make browser-deps) to run browser tests")
    if importlib.util.find_spec("playwright") is None:
        pytest.skip("the playwright package is not installed (pip install -e '.[dev]')")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.dialogs = dialogs  # type: ignore[attr-defined]
    yield page
    context.close()
