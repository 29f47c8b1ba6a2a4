"""Every report kind the CLI writes (toy, probe study, steering sweep and compare, autointerp, unlearning) renders in the
web UI, and every file its index names is served (before: probe and steering pages answered HTTP 500); every figure
carries its writer's plain-language caption."""

from __future__ import annotations

import re

import pytest
from markupsafe import escape

from interplab.reports import read_index
from interplab.web.app import create_app
from interplab.web.guide import report_guide
from report_kinds import KINDS, write_every_report_kind
from web_data import local_client


@pytest.fixture(scope="module")
def reports(tmp_path_factory, tiny_model_dir, web_data):
    root = tmp_path_factory.mktemp("report_kinds")
    folders = write_every_report_kind(root, tiny_model_dir("gpt2"), tiny_model_dir("llama", d_model=64))
    return local_client(create_app(web_data.db_path, reports_dir=root, device="cpu")), folders


def test_every_report_kind_is_listed(reports) -> None:
    client, _ = reports
    assert sorted(r["name"] for r in client.get("/api/reports").json()) == sorted(KINDS)


@pytest.mark.parametrize("kind", KINDS)
def test_every_report_kind_renders_with_all_its_files(reports, kind: str) -> None:
    client, folders = reports
    index = read_index(folders[kind])
    assert index.kind == kind and (index.figures or index.tables)
    page = client.get(f"/reports/{kind}")
    assert page.status_code == 200, page.text
    assert f"<h1 id=\"report-title\">{index.title}</h1>" in page.text
    files = [f for fig in index.figures for f in (fig.png, fig.html) if f]
    files += [f for t in index.tables for f in (t.csv, t.json) if f]
    for name in files:
        assert client.get(f"/report-files/{kind}/{name}").status_code == 200, name
        assert name.split("/")[-1] in page.text or name.endswith(".json")


@pytest.mark.parametrize("kind", KINDS)
def test_every_figure_of_every_report_kind_has_a_plain_sentence(reports, kind: str) -> None:
    """The writer captions each figure (one plain sentence), and the report page shows it under the figure,
    with the kind's plain-language description and a link to the guide at the top."""
    client, folders = reports
    index = read_index(folders[kind])
    assert all(fig.caption and fig.caption.strip() for fig in index.figures), [f.name for f in index.figures]
    page = client.get(f"/reports/{kind}").text
    blocks = re.findall(r'<figure class="report-figure">(.*?)</figure>', page, re.DOTALL)
    assert len(blocks) == len(index.figures)
    for fig, block in zip(index.figures, blocks, strict=True):
        sentence = re.findall(r'<p class="plain figure-sentence">([^<]*)</p>', block)
        assert sentence == [str(escape(fig.caption.strip()))], fig.name  # type: ignore[union-attr]
    guide = report_guide(kind)
    assert guide is not None
    assert f'href="/guide#kind-{kind}">How to read this report</a>' in page
    assert str(escape(guide.what)) in page
