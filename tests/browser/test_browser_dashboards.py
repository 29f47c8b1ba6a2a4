"""In Chromium: the feature page highlights tokens and draws the histogram; live inference runs from the form;
a `<script>` token shows as text and never runs."""

from __future__ import annotations

import pytest

from web_data import XSS

pytestmark = pytest.mark.browser


def _alpha(background: str) -> float:
    """Alpha of a computed `rgba(r, g, b, a)` colour (`rgb(...)` is opaque, 1.0)."""
    inside = background[background.index("(") + 1:-1].split(",")
    return float(inside[3]) if len(inside) == 4 else 1.0


def test_feature_page_highlights_tokens_and_draws_the_histogram(page, base_url) -> None:
    page.goto(f"{base_url}/sae/1/feature/7")
    spans = page.locator("#top-examples span.tok")
    assert spans.count() == 7
    backgrounds = [spans.nth(i).evaluate("e => getComputedStyle(e).backgroundColor") for i in range(spans.count())]
    alphas = [_alpha(b) for b in backgrounds]
    assert max(alphas) == pytest.approx(1.0) and sum(a > 0 for a in alphas) >= 4
    assert spans.nth(1).get_attribute("title") == "4.000"
    bars = page.locator("#histogram rect.bar")
    assert bars.count() == 4
    heights = [float(bars.nth(i).get_attribute("height") or 0) for i in range(4)]
    assert heights[0] > heights[1] > heights[3] > 0
    assert page.locator("#histogram").bounding_box()["height"] > 0  # type: ignore[index]


def test_script_tokens_render_as_text_and_never_run(page, base_url) -> None:
    page.goto(f"{base_url}/sae/1/feature/7")
    assert XSS in page.locator("#top-examples").inner_text()
    assert XSS in page.locator("#explanations").inner_text()
    assert page.locator("script").count() == 1  # our own app.js only
    page.goto(f"{base_url}/reports/probe")
    assert XSS in page.locator("#report-title").inner_text()
    assert page.dialogs == []


def test_live_inference_form_shows_latents_per_token(page, base_url) -> None:
    page.goto(f"{base_url}/live")
    page.fill("#live-text", f"The cat sat {XSS}")
    page.fill("#live-topn", "3")
    page.click("#live-run")
    page.wait_for_selector("#live-table tr.live-row", timeout=60_000)
    rows = page.locator("#live-table tr.live-row")
    assert rows.count() >= 4
    assert page.locator("#live-table a[href^='/sae/1/feature/']").count() > 0
    assert page.url.endswith("/live")  # ran through fetch, no page reload
    assert "script" in page.locator("#live-tokens").inner_text()
    assert page.locator("#live-tokens span.tok").count() == rows.count()
    assert page.dialogs == []
