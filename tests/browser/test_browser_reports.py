"""In Chromium: the page of every report kind the CLI writes opens, shows its title, loads its images and
its interactive figures (SVG charts, heatmap tables)."""

from __future__ import annotations

import pytest

from report_kinds import KINDS

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed").expect


@pytest.mark.parametrize("kind", KINDS)
def test_every_report_kind_opens_with_its_figures_loaded(page, report_kinds_url, kind: str) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    response = page.goto(f"{report_kinds_url}/reports/{kind}")
    assert response is not None and response.status == 200
    assert page.locator("#report-title").inner_text()
    images = page.locator("figure.report-figure img")
    for i in range(images.count()):
        images.nth(i).scroll_into_view_if_needed()  # lazy images load once near the viewport
        page.wait_for_function("e => e.complete", arg=images.nth(i).element_handle())
        assert images.nth(i).evaluate("e => e.naturalWidth") > 0
    assert page.locator("figure.report-figure").count() + page.locator("section.report-table").count() > 0
    # the interactive versions: each lazy iframe's page opened on its own (lazy frames inside <details>
    # load only when scrolled to, which made waiting on them in place hang)
    frames = [page.locator("figure.report-figure details iframe").nth(i).get_attribute("src")
              for i in range(page.locator("figure.report-figure details iframe").count())]
    for src in frames:
        assert src is not None and page.goto(f"{report_kinds_url}{src}").status == 200
        expect(page.locator("svg, table").first).to_be_visible()
    assert errors == []
