"""In Chromium: every page works under its Content-Security-Policy (no violation while browsing, running live
inference and steering), and no other site can frame the UI."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

# Records every CSP violation of the page (and of its frames) before any of its scripts run.
RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`));
"""


@pytest.fixture
def watched(page):
    """The page, recording CSP violations and console errors."""
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.add_init_script(RECORD_VIOLATIONS)
    page.console_errors = errors  # type: ignore[attr-defined]
    return page


def _clean(page) -> None:
    assert page.evaluate("window.__csp") == []
    assert [e for e in page.console_errors if "Content Security Policy" in e or "Refused" in e] == []


@pytest.mark.parametrize("path", ["/", "/sae/1", "/sae/1/feature/7", "/search?q=cat", "/reports", "/reports/probe",
                                  "/sae/99"])
def test_pages_render_without_csp_violations(watched, base_url, path: str) -> None:
    response = watched.goto(f"{base_url}{path}")
    assert response is not None and response.headers["content-security-policy"]
    if path == "/sae/1/feature/7":  # the highlight colours come from classes, not blocked inline styles
        alpha = watched.locator("#top-examples span.tok.h20").first.evaluate("e => getComputedStyle(e).backgroundColor")
        assert alpha.startswith("rgb(")
    if path == "/reports/probe":
        watched.locator("figure.report-figure details summary").first.click()  # the sandboxed interactive figure
        frame = watched.frame_locator("figure.report-figure details iframe").first
        assert frame.locator("p").inner_text() == "interactive"
    _clean(watched)


def test_live_inference_and_steering_run_under_the_csp(watched, base_url) -> None:
    watched.goto(f"{base_url}/live")
    watched.fill("#live-text", "The cat sat")
    watched.click("#live-run")
    watched.wait_for_selector("#live-table tr.live-row", timeout=60_000)
    classes = watched.locator("#live-tokens span.tok").first.get_attribute("class") or ""
    assert classes.startswith("tok h")
    watched.goto(f"{base_url}/steer?sae_id=1&latent=7")
    watched.fill("#steer-prompt", "The cat")
    watched.fill("#steer-max", "4")
    watched.click("#steer-run")
    watched.wait_for_selector("#steer-results .gen.steered", timeout=60_000)
    _clean(watched)


def test_another_site_cannot_frame_the_ui(page, base_url) -> None:
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "frame-ancestors" in m.text else None)
    # an about:blank page (another origin) framing the UI; set_content returns once the frame has loaded
    page.set_content(f'<iframe id="ui" src="{base_url}/sae/1/feature/7"></iframe>')
    (child,) = [f for f in page.frames if f != page.main_frame]
    assert child.url.startswith("chrome-error://")  # Chromium's error page instead of the UI
    assert page.frame_locator("#ui").locator("#top-examples").count() == 0 and refused
