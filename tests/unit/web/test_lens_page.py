"""/lens and /api/lens: a layers x positions grid of top tokens, for the logit lens and a tuned lens found among
the reports; only offered models run, only on POST; model text is escaped."""

from __future__ import annotations

import shutil

import pytest

from interplab.web.app import create_app
from web_data import XSS, local_client, write_tuned_lens_report


@pytest.fixture(scope="module")
def lens_client(web_data, tmp_path_factory):
    reports = tmp_path_factory.mktemp("lens_reports") / "reports"
    shutil.copytree(web_data.reports_dir, reports)
    write_tuned_lens_report(reports, web_data.model_dir)
    return local_client(create_app(web_data.db_path, reports_dir=reports, device="cpu"))


def test_options_list_the_databases_model_and_the_tuned_lens_of_the_reports(lens_client, web_data) -> None:
    options = lens_client.get("/api/lens/options").json()
    assert options["models"] == [str(web_data.model_dir)]
    assert [lens["name"] for lens in options["lenses"]] == ["logit", "tuned-lens-tiny"]
    assert options["lenses"][1]["model"] == str(web_data.model_dir)


@pytest.mark.parametrize("lens", ["logit", "tuned-lens-tiny"])
def test_the_api_returns_a_layers_by_positions_grid_of_top_tokens(lens_client, lens) -> None:
    resp = lens_client.post("/api/lens", json={"prompt": "The cat sat", "lens": lens, "top_k": 3})
    assert resp.status_code == 200, resp.text
    data = resp.json()
    assert data["layers"] == ["embed", "0", "1"] and len(data["rows"]) == 3
    assert all(len(row) == len(data["tokens"]) for row in data["rows"])
    cell = data["rows"][0][0]
    assert len(cell["top"]) == 3 and cell["top"][0]["prob"] >= cell["top"][1]["prob"] > 0
    assert [t["token"] for t in data["rows"][-1][-1]["top"]] == [t["token"] for t in data["final"][-1]]
    assert data["rows"][-1][-1]["kl"] < 1e-4


def test_a_model_the_server_does_not_offer_is_refused_without_loading_it(lens_client, tmp_path) -> None:
    resp = lens_client.post("/api/lens", json={"prompt": "x", "model": str(tmp_path / "elsewhere")})
    assert resp.status_code == 404 and "not offered" in resp.json()["detail"]
    assert lens_client.post("/api/lens", json={"prompt": "x", "lens": "nope"}).status_code == 404


def test_get_fills_the_form_and_runs_nothing_while_post_renders_the_escaped_grid(lens_client) -> None:
    page = lens_client.get("/lens", params={"prompt": "The cat"})
    assert page.status_code == 200 and 'id="lens-grid"' not in page.text and "The cat" in page.text
    page = lens_client.post("/lens", data={"prompt": f"{XSS} The cat", "lens": "logit", "top_k": "2"})
    assert page.status_code == 200 and 'id="lens-grid"' in page.text
    assert XSS not in page.text and "&lt;script&gt;" in page.text
    assert page.text.count("<script") == 2  # app.js and lens.js, nothing from the prompt
