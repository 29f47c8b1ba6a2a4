"""Plain-language mode: the "What am I looking at?" page names every report kind and is linked from every page's
navigation; feature pages carry a sentence under each section; a report figure without a caption still gets a
plain sentence (its kind's, else a generic one)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from markupsafe import escape

from interplab.reports import FigureEntry, read_index
from interplab.web.app import create_app
from interplab.web.guide import (
    CONCEPTS,
    FEATURE_NOTES,
    GENERIC_FIGURE,
    REPORT_KINDS,
    figure_sentence,
    report_guide,
)
from report_kinds import KINDS
from web_data import local_client, write_tuned_lens_report

WRITTEN_KINDS = (*KINDS, "tuned-lens", "dyck", "crosslingual")
"""Every kind a writer puts in index.json (report_kinds.KINDS plus the labs' and the lens's, too slow to write here)."""
CONCEPT_IDS = ("sae", "latent", "examples", "logits", "histogram", "live", "steering", "explanations")


def test_guide_covers_every_written_report_kind_and_concept() -> None:
    assert sorted(k.kind for k in REPORT_KINDS) == sorted(WRITTEN_KINDS)
    assert set(CONCEPT_IDS) <= {t.id for t in CONCEPTS}
    for k in REPORT_KINDS:
        assert k.title and len(k.what) > 40 and len(k.figures) > 40, k.kind
    for t in CONCEPTS:
        assert t.paragraphs and all(len(p) > 40 for p in t.paragraphs), t.id


def test_guide_page_names_every_report_kind_and_concept(client) -> None:
    resp = client.get("/guide")
    assert resp.status_code == 200, resp.text
    html = resp.text
    assert '<h1 id="guide-title">What am I looking at?</h1>' in html
    for kind in WRITTEN_KINDS:
        entry = report_guide(kind)
        assert entry is not None
        assert f'id="kind-{kind}"' in html and f'href="#kind-{kind}"' in html
        assert str(escape(entry.title)) in html and str(escape(entry.what)) in html
    for topic in CONCEPTS:
        assert f'<section id="{topic.id}">' in html
        assert all(str(escape(p)) in html for p in topic.paragraphs)
    assert re.findall(r"<script[^>]*>", html) == ['<script src="/static/app.js">']  # CSP: no inline script


@pytest.mark.parametrize("path", ["/", "/sae/1", "/sae/1/feature/7", "/search", "/live", "/steer", "/lens",
                                  "/reports", "/reports/probe", "/guide", "/sae/999"])
def test_every_page_links_the_guide_from_its_navigation(client, path: str) -> None:
    html = client.get(path).text
    nav = re.search(r'<nav class="top">(.*?)</nav>', html, re.DOTALL)
    assert nav is not None and '<a href="/guide" id="nav-guide">What am I looking at?</a>' in nav.group(1)


def test_index_page_introduces_the_guide(client) -> None:
    html = client.get("/").text
    assert '<a id="guide-link" href="/guide">What am I looking at?</a>' in html


def test_feature_page_has_a_plain_sentence_under_each_section(client) -> None:
    html = client.get("/sae/1/feature/7").text
    for section in ("stats", "explanations", "histogram", "logits", "neighbours", "top-examples",
                    "quantile-examples"):
        text = FEATURE_NOTES[section.replace("-", "_")]
        assert f'<p class="plain" id="note-{section}">{escape(text)}</p>' in html, section
    # each sentence sits inside its section, after the heading
    top = html[html.index('<section id="top-examples">'):]
    assert top.index('id="note-top-examples"') < top.index('class="example"')


def test_report_figure_shows_its_caption_as_the_plain_sentence(client) -> None:
    html = client.get("/reports/probe").text
    assert re.findall(r'<p class="plain figure-sentence">([^<]*)</p>', html) == ["higher is better"]
    assert 'href="/guide#reports">How to read this report</a>' in html  # kind "report": not in the guide


def _uncaptioned(reports: Path, name: str, kind: str) -> None:
    folder = reports / name
    folder.mkdir(parents=True)
    (folder / "fig.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 16)
    index = {"title": name, "kind": kind, "figures": [{"name": "fig", "title": "A figure", "png": "fig.png"},
                                                      {"name": "blank", "png": "fig.png", "caption": "  "}]}
    (folder / "index.json").write_text(json.dumps(index), encoding="utf-8")


def test_figure_without_caption_gets_its_kinds_sentence_or_a_generic_one(tmp_path, web_data) -> None:
    _uncaptioned(tmp_path, "old-probe", "probe-study")
    _uncaptioned(tmp_path, "mystery", "some-new-kind")
    client = local_client(create_app(web_data.db_path, reports_dir=tmp_path, device="cpu"))
    probe = report_guide("probe-study")
    assert probe is not None
    for name, sentence, anchor in (("old-probe", probe.figures, "kind-probe-study"),
                                   ("mystery", GENERIC_FIGURE, "reports")):
        html = client.get(f"/reports/{name}").text
        assert re.findall(r'<p class="plain figure-sentence">([^<]*)</p>', html) == [str(escape(sentence))] * 2
        assert f'href="/guide#{anchor}">How to read this report</a>' in html
    assert "<strong>Probe study.</strong>" in client.get("/reports/old-probe").text


def test_figure_sentence_prefers_the_writers_caption() -> None:
    fig = FigureEntry(name="f", title="t", caption=" read me ")
    assert figure_sentence("toy", fig) == "read me"
    assert figure_sentence("toy", FigureEntry(name="f", title="t")) == report_guide("toy").figures  # type: ignore[union-attr]


def test_tuned_lens_report_captions_its_figure(tmp_path, web_data) -> None:
    """The lens writer (not in report_kinds, which has no lens run) captions its KL figure too."""
    folder = write_tuned_lens_report(tmp_path, web_data.model_dir)
    index = read_index(folder)
    assert index.kind == "tuned-lens" and index.figures
    assert all(fig.caption and fig.caption.strip() for fig in index.figures)
    html = local_client(create_app(web_data.db_path, reports_dir=tmp_path, device="cpu")).get(
        f"/reports/{folder.name}").text
    sentences = re.findall(r'<p class="plain figure-sentence">([^<]*)</p>', html)
    assert sentences == [str(escape(fig.caption)) for fig in index.figures]
    assert 'href="/guide#kind-tuned-lens">How to read this report</a>' in html
