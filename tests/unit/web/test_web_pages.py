"""Every page renders from a real database; model text is escaped; unknown SAEs / latents give 404 pages."""

from __future__ import annotations

import re

import pytest

from web_data import D_SAE, XSS

ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


@pytest.mark.parametrize("path", ["/", "/sae/1", "/sae/1?order=frequency", "/sae/1?order=max_act&page=1",
                                  "/sae/1/feature/7", "/sae/1/feature/0", "/search", "/search?q=cat", "/live",
                                  "/reports", "/reports/probe"])
def test_every_page_renders_without_raw_script_tags(client, path: str) -> None:
    resp = client.get(path)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/html")
    assert XSS not in resp.text
    # the only <script> on a page is our own static script
    assert re.findall(r"<script[^>]*>", resp.text) == ['<script src="/static/app.js">']


def test_feature_page_shows_stats_explanation_histogram_logits_neighbours_and_examples(client) -> None:
    html = client.get("/sae/1/feature/7").text
    assert ESCAPED in html  # in the tokens, the logits table and the explanation, as text
    assert html.count(ESCAPED) >= 4  # SAE name, explanation, logit token, example token
    assert "cats " + ESCAPED + " and kittens" in html
    assert len(re.findall(r'<rect class="bar"', html)) == 4
    assert 'href="/sae/1/feature/8"' in html and 'href="/sae/1/feature/3"' in html
    spans = re.findall(r'<span class="tok h(\d+)" title="([^"]+)"', html)
    shades = [int(a) for a, _ in spans]
    assert 20 in shades and 10 in shades and 0 in shades  # 4/4, 2/4 and zero on the top example
    assert "0.00-0.25" in html  # quantile bucket heading


def test_latent_list_pages_and_sorts(client) -> None:
    html = client.get("/sae/1?order=max_act").text
    links = [int(i) for i in re.findall(r'href="/sae/1/feature/(\d+)"', html)]
    assert sorted(links) == list(range(D_SAE))
    html_idx = client.get("/sae/1").text
    assert [int(i) for i in re.findall(r'href="/sae/1/feature/(\d+)"', html_idx)] == list(range(D_SAE))
    assert links != list(range(D_SAE))  # a different order by max activation


def test_unknown_sae_latent_and_page_give_clear_404_pages(client) -> None:
    for path, words in [("/sae/99", "no SAE with id 99"), ("/sae/1/feature/999", "no dashboard for latent 999"),
                        ("/sae/99/feature/1", "no SAE with id 99"), ("/nowhere", "no such page"),
                        ("/reports/nothing", "no report")]:
        resp = client.get(path)
        assert resp.status_code == 404 and resp.headers["content-type"].startswith("text/html"), path
        assert words in resp.text, path


def test_bad_page_parameters_give_a_400_page(client) -> None:
    resp = client.get("/sae/notanumber")
    assert resp.status_code == 400 and "bad request" in resp.text


def test_search_page_lists_token_and_explanation_hits(client) -> None:
    html = client.get("/search?q=kittens").text
    assert 'href="/sae/1/feature/7"' in html and ESCAPED in html
    html = client.get("/search?q=" + XSS).text
    assert XSS not in html


def test_live_page_without_javascript_renders_results_server_side(client) -> None:
    html = client.post("/live", data={"sae_id": 1, "text": "the cat sat", "top_n": 3}).text
    n_tokens = len(client.post("/api/live", json={"sae_id": 1, "text": "the cat sat"}).json()["tokens"])
    assert 'id="live-table"' in html and html.count('class="live-row"') == n_tokens > 0


def test_templates_never_mark_text_safe() -> None:
    from interplab.web.render import TEMPLATES, make_environment

    assert make_environment().autoescape is True
    for path in TEMPLATES.glob("*.html"):
        assert "|safe" not in path.read_text().replace(" ", ""), path
