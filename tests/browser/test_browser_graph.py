"""In Chromium: the attribution-graph page draws its nodes and edges, the slider hides weak edges, hovering
shows a node's values, clicking a feature opens its dashboard, and the prompt's HTML never runs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from graph_data import LINKED_LAYER, GraphData, build_graph_data
from interplab.web.app import create_app
from web_data import served

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed").expect

RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => window.__csp.push(e.violatedDirective));
"""


@pytest.fixture(scope="module")
def graph_site(tmp_path_factory, tiny_model_dir) -> Iterator[tuple[GraphData, str]]:
    data = build_graph_data(tmp_path_factory.mktemp("graph_site"), tiny_model_dir("gpt2"))
    with served(create_app(data.db_path, reports_dir=data.reports_dir, device="cpu")) as url:
        yield data, url


def test_graph_page_draws_filters_hovers_and_opens_a_features_dashboard(page, graph_site) -> None:
    data, url = graph_site
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.add_init_script(RECORD_VIOLATIONS)
    page.goto(f"{url}/reports/{data.name}")
    page.locator("#open-graph").click()
    expect(page.locator("#graph-svg")).to_be_visible()
    nodes, edges = page.locator("svg.graph .node"), page.locator("svg.graph path.edge")
    assert nodes.count() > 5 and edges.count() > 5
    assert page.locator("svg.graph .node-logit").count() >= 1 and page.locator("svg.graph .node-embedding").count() >= 1
    # the prompt's tags are shown as text, in the heading line and the token labels; none became an element
    assert "<script>alert(2)</script>" in page.locator("#graph-prompt").inner_text()
    labels = "".join(page.locator("svg.graph text.tokenlabel").all_text_contents()).replace(" ", "")
    assert "<script>alert(2)</script>" in labels  # one token per label, each set as text
    assert page.locator("#graph img, #graph script, #graph-prompt *").count() == 0
    # the slider: at 100 % only the strongest edge stays; at 0 % all of them
    slider = page.locator("#edge-threshold")
    slider.fill("100")
    assert page.locator("svg.graph path.edge:not(.hidden)").count() == 1
    assert "1 of" in page.locator("#edge-count").inner_text()
    slider.fill("0")
    assert page.locator("svg.graph path.edge:not(.hidden)").count() == edges.count()
    # hover: the tooltip names the node
    feature = page.locator(f"svg.graph a.node-transcoder[href^='/sae/{data.sae_id}/feature/']").first
    feature.hover()
    tip = page.locator("#graph-tip")
    expect(tip).to_be_visible()
    assert "transcoder" in tip.inner_text() and f"layer {LINKED_LAYER}" in tip.inner_text()
    # features of a layer without dashboards are not links
    assert page.locator("svg.graph g.node-transcoder").count() + page.locator("svg.graph a.node-transcoder").count() \
        == page.locator("svg.graph .node-transcoder").count()
    href = feature.get_attribute("href")
    feature.click()
    page.wait_for_url(f"**{href}")
    assert page.url.endswith(href) and page.locator("h1").count() == 1
    assert page.dialogs == [] and errors == []  # type: ignore[attr-defined]
    assert page.evaluate("window.__csp") == []
