"""In Chromium: from a feature page to the steering playground, the form shows the unsteered and steered
generations side by side; a `<script>` prompt shows as text and never runs."""

from __future__ import annotations

import pytest

from web_data import XSS

pytestmark = pytest.mark.browser


def test_steering_form_shows_both_generations_side_by_side(page, base_url) -> None:
    page.goto(f"{base_url}/sae/1/feature/7")
    page.click("#steer-link")
    page.wait_for_url("**/steer?sae_id=1&latent=7")
    assert page.input_value("#steer-latent") == "7"
    page.fill("#steer-prompt", f"{XSS} The cat")
    page.fill("#steer-coef", "40")
    page.fill("#steer-coefs", "-40")
    page.fill("#steer-max", "6")
    page.click("#steer-run")
    page.wait_for_selector("#steer-results .gen.steered", timeout=60_000)
    assert page.url.endswith("/steer?sae_id=1&latent=7")  # ran through fetch, no page reload
    unsteered = page.locator("#steer-unsteered .gen-text").inner_text()
    steered = page.locator("#steer-results .gen.steered")
    assert steered.count() == 2 and unsteered
    texts = [steered.nth(i).locator(".gen-text").inner_text() for i in range(2)]
    assert texts[0] != unsteered
    assert steered.nth(0).locator(".gen-title").inner_text() == "steered, coefficient 40"
    assert page.locator("#steer-unsteered .gen-prompt").inner_text() == f"{XSS} The cat"
    # side by side: the steered card starts right of the unsteered one, on the same row
    left = page.locator("#steer-unsteered").bounding_box()
    right = steered.nth(0).bounding_box()
    assert left is not None and right is not None and right["x"] > left["x"] and right["y"] == left["y"]
    assert page.locator("script").count() == 1 and page.dialogs == []  # type: ignore[attr-defined]
    assert page.locator("#steer-error").is_hidden()
