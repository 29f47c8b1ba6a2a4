"""Browser fixtures: the real app under uvicorn on a free loopback port (in a thread), and headless Chromium.

Playwright drives Debian's Chromium (/usr/bin/chromium); it never downloads a browser. The tests are
skipped, saying why, only when that binary or the playwright package is missing.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest

from interplab.web.app import create_app
from report_kinds import write_every_report_kind
from web_data import WebData, build_web_data, served

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="session")
def browser_web_data(tmp_path_factory, tiny_model_dir) -> WebData:
    return build_web_data(tmp_path_factory.mktemp("webui"), tiny_model_dir("gpt2"))


@pytest.fixture(scope="session")
def base_url(browser_web_data: WebData) -> Iterator[str]:
    app = create_app(browser_web_data.db_path, reports_dir=browser_web_data.reports_dir, device="cpu")
    with served(app) as url:
        yield url


@pytest.fixture(scope="session")
def report_kinds_url(browser_web_data: WebData, tmp_path_factory, tiny_model_dir) -> Iterator[str]:
    """A server whose reports folder holds one report of every kind the CLI writes (report_kinds.py)."""
    root = tmp_path_factory.mktemp("report_kinds")
    write_every_report_kind(root, tiny_model_dir("gpt2"), tiny_model_dir("llama", d_model=64))
    with served(create_app(browser_web_data.db_path, reports_dir=root, device="cpu")) as url:
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
