"""The attribution-graph page: served for graph reports only, prompt text escaped, dashboards linked by layer."""

from __future__ import annotations

import json

import pytest

from graph_data import LINKED_LAYER, PAYLOAD, build_graph_data
from interplab.web.app import create_app
from web_data import local_client


@pytest.fixture(scope="module")
def graph(tmp_path_factory, tiny_model_dir):
    data = build_graph_data(tmp_path_factory.mktemp("graph"), tiny_model_dir("gpt2"))
    return data, local_client(create_app(data.db_path, reports_dir=data.reports_dir, device="cpu"))


def test_graph_page_links_its_layers_dashboards_and_escapes_the_prompt(graph):
    data, client = graph
    page = client.get(f"/graphs/{data.name}")
    assert page.status_code == 200, page.text
    assert PAYLOAD not in page.text and "&lt;script&gt;alert(2)&lt;/script&gt;" in page.text
    assert '<script src="/static/graph.js"></script>' in page.text
    links = json.loads(page.text.split('data-dashboards="')[1].split('"')[0].replace("&#34;", '"'))
    assert links == {str(LINKED_LAYER): f"/sae/{data.sae_id}/feature/"}
    graph_file = client.get(f"/report-files/{data.name}/graph.json")
    assert graph_file.status_code == 200 and graph_file.json()["nodes"]
    assert f'href="/graphs/{data.name}"' in client.get(f"/reports/{data.name}").text
    assert 'class="graph-link"' in client.get("/reports").text


@pytest.mark.parametrize("name", ["nothing-here", "../graph-xss", "graph-xss/graph.json"])
def test_graph_page_answers_404_for_anything_but_a_graph_report(graph, name):
    _, client = graph
    assert client.get(f"/graphs/{name}").status_code == 404
