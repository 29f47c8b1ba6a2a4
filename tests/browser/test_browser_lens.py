"""In Chromium: the lens page runs the logit lens and a tuned lens through fetch, shows the layers x positions grid,
and hovering a cell shows its top tokens with their probabilities; a `<script>` prompt shows as text."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator

import pytest

from interplab.web.app import create_app
from web_data import XSS, WebData, served, write_tuned_lens_report

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def lens_url(browser_web_data: WebData, tmp_path_factory) -> Iterator[str]:
    reports = tmp_path_factory.mktemp("lens_browser") / "reports"
    shutil.copytree(browser_web_data.reports_dir, reports)
    write_tuned_lens_report(reports, browser_web_data.model_dir)
    with served(create_app(browser_web_data.db_path, reports_dir=reports, device="cpu")) as url:
        yield url


@pytest.mark.parametrize("lens", ["logit", "tuned-lens-tiny"])
def test_lens_grid_shows_top_tokens_with_probabilities_on_hover(page, lens_url, lens) -> None:
    page.goto(f"{lens_url}/lens")
    page.select_option("#lens-kind", lens)
    page.fill("#lens-prompt", f"{XSS} The cat sat")
    page.fill("#lens-topk", "3")
    page.click("#lens-run")
    page.wait_for_selector("#lens-grid td.lens-cell", timeout=60_000)
    assert page.url.endswith("/lens")  # ran through fetch, no reload
    rows = page.locator("#lens-grid tbody tr")
    assert rows.count() == 3  # embed + 2 blocks of the tiny model, last block on top
    assert rows.nth(0).locator("th").inner_text() == "1" and rows.nth(2).locator("th").inner_text() == "embed"
    n_tokens = page.locator("#lens-grid thead th.tokcell").count()
    assert n_tokens >= 4 and rows.nth(0).locator("td").count() == n_tokens
    header = page.locator("#lens-grid thead").inner_text()
    assert "<script>" in header.replace("\t", "")  # the prompt's tag shows as text, token by token
    page.hover("#lens-grid tbody tr:nth-child(2) td:nth-child(3)")
    detail = page.locator("#lens-detail").inner_text()
    assert detail.startswith("layer 0, position 1")
    probs = [float(p) for p in re.findall(r"\t(0\.\d{3}|1\.000)\n", detail)]
    assert len(probs) == 3 and probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0001
    assert "KL to output" in detail
    assert page.locator("#lens-grid td.lens-cell.active").count() == 1
    assert page.locator("script").count() == 2 and page.dialogs == []  # type: ignore[attr-defined]
    assert page.locator("#lens-error").is_hidden()


def test_lens_error_for_an_empty_prompt_shows_on_the_page(page, lens_url) -> None:
    page.goto(f"{lens_url}/lens")
    page.fill("#lens-prompt", "")
    page.click("#lens-run")
    page.wait_for_selector("#lens-error:not([hidden])", timeout=30_000)
    assert "prompt" in page.locator("#lens-error").inner_text()
