"""The steering playground: /steer and POST /api/steer against a real DB, a tiny GPT-2 and a saved random SAE.

Steered text is checked against direct `generate_steered` calls; encoders are refused with a 400 naming
the fix; unknown SAEs, latents and vectors are 404s; model text and prompts are escaped on the page.
"""

from __future__ import annotations

import math

import pytest
import torch
import uvicorn
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from fake_dashboard_rows import synthetic_batch
from interplab.cli import app as cli_app
from interplab.dashboards.db import DashboardDB, SaeRecord
from interplab.models.loading import load_model
from interplab.saes import make_sae, sae_config
from interplab.saes.io import load_sae, save_sae
from interplab.steering import (
    GenerationSettings,
    from_sae_latent,
    generate,
    generate_steered,
    perplexity,
    save_vector,
)
from interplab.web.app import create_app
from web_data import D_SAE, HOOK, XSS, local_client

PROMPT = "The cat sat on"
N_NEW = 8


def _steer(client: TestClient, **body):
    return client.post("/api/steer", json={"sae_id": 1, "latent": 7, "prompt": PROMPT, "max_new_tokens": N_NEW,
                                           **body})


@pytest.fixture(scope="module")
def direct(web_data):
    """The model and SAE loaded by the test itself (not the server's copies)."""
    return load_model(web_data.model_dir, device="cpu"), load_sae(web_data.sae_folder)


def test_coefficient_zero_gives_the_unsteered_text(client) -> None:
    res = _steer(client, coef=0.0).json()
    assert res["steered"][0]["coef"] == 0.0
    assert res["steered"][0]["text"] == res["unsteered"]["text"] and res["unsteered"]["text"]
    assert res["hook"] == HOOK and res["vector_norm"] == pytest.approx(1.0)


def test_large_coefficient_changes_the_text_and_equals_a_direct_generate_steered_call(client, direct) -> None:
    res = _steer(client, coef=40.0, coefs=[-40.0, 0.0]).json()
    lm, sae = direct
    vector = from_sae_latent(sae, 7, hook=HOOK)
    settings = GenerationSettings(max_new_tokens=N_NEW)
    assert [g["coef"] for g in res["steered"]] == [40.0, -40.0, 0.0]
    assert res["unsteered"]["text"] == generate_steered(lm, [PROMPT], None, settings=settings)[0]
    for g in res["steered"]:
        assert g["text"] == generate_steered(lm, [PROMPT], vector, g["coef"], settings=settings)[0]
    assert res["steered"][0]["text"] != res["unsteered"]["text"]
    steered = generate(lm, [PROMPT], vector, 40.0, settings=settings)[0]
    assert res["steered"][0]["n_new_tokens"] == len(steered.new_ids)
    assert res["steered"][0]["perplexity"] == pytest.approx(perplexity(lm, [steered]), rel=1e-4)
    assert math.isfinite(res["unsteered"]["perplexity"])


def test_unknown_sae_latent_or_vector_is_a_404(client) -> None:
    for body in [{"sae_id": 99}, {"latent": D_SAE}, {"sae_id": None, "latent": None, "vector": "nothing"},
                 {"sae_id": None, "latent": None, "vector": "../sae/sae_weights"}]:
        resp = _steer(client, **body)
        assert resp.status_code == 404 and isinstance(resp.json()["detail"], str), body
    assert "--vectors" in _steer(client, sae_id=None, latent=None, vector="x").json()["detail"]
    assert _steer(client, latent=None).status_code == 422  # neither an SAE latent nor a vector
    assert _steer(client, max_new_tokens=0).status_code == 422
    assert client.post("/steer", data={"sae_id": 1, "latent": D_SAE, "prompt": "x"}).status_code == 404


def test_prompt_longer_than_the_context_is_a_400(client) -> None:
    resp = _steer(client, prompt="the cat " * 240, coef=4.0)  # the tiny GPT-2 has 256 positions
    assert resp.status_code == 400 and "context" in resp.json()["detail"]


def test_script_in_the_prompt_comes_back_escaped_on_the_page(client) -> None:
    page = client.post("/steer", data={"source": "sae:1", "latent": 7, "coef": 40, "coefs": "-40",
                                       "prompt": f"{XSS} hello", "max_new_tokens": 4})
    assert page.status_code == 200
    assert XSS not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt; hello" in page.text
    assert page.text.count("<script") == 1  # our own app.js only
    assert 'id="steer-unsteered"' in page.text and page.text.count('class="gen steered"') == 2
    bad = client.post("/steer", data={"sae_id": 1, "latent": 7, "prompt": "x", "coefs": "4, lots"})
    assert bad.status_code == 400 and "not a list of numbers" in bad.text


def test_feature_page_links_to_the_playground_with_the_latent_prefilled(client) -> None:
    feature = client.get("/sae/1/feature/7").text
    assert 'href="/steer?sae_id=1&amp;latent=7"' in feature and "steer with this latent" in feature
    page = client.get("/steer", params={"sae_id": 1, "latent": 7})
    assert page.status_code == 200 and '<a href="/steer">' in page.text
    assert 'id="steer-latent" min="0" value="7"' in page.text and 'value="sae:1" selected' in page.text
    assert 'id="steer-results">\n</div>' in page.text  # nothing generated without a prompt


@pytest.fixture(scope="module")
def encoder_client(tmp_path_factory, tiny_model_dir) -> TestClient:
    """A database whose only SAE reads a (tiny, random) BERT encoder."""
    tmp = tmp_path_factory.mktemp("steer_encoder")
    torch.manual_seed(0)
    folder = save_sae(make_sae(sae_config("topk", d_in=64, d_sae=16, k=4)), tmp / "sae",
                      metadata={"hook_name": HOOK})
    db = DashboardDB(tmp / "dash.db")
    sae_id = db.upsert_sae(SaeRecord(name="bert sae", path=str(folder), model=str(tiny_model_dir("bert")),
                                     hook=HOOK, d_in=64, d_sae=16, arch="topk", n_tokens=10))
    db.write_latents(sae_id, *synthetic_batch(0, 4, n_top=2, n_quantile=1, context=6))
    db.close()
    return local_client(create_app(tmp / "dash.db", device="cpu"))


def test_encoder_model_is_refused_with_a_400_naming_the_fix(encoder_client) -> None:
    resp = encoder_client.post("/api/steer", json={"sae_id": 1, "latent": 2, "prompt": PROMPT})
    detail = resp.json()["detail"]
    assert resp.status_code == 400 and "not a causal LM" in detail and "--model" in detail
    assert "\n" not in detail
    live = encoder_client.app.state.web.live  # type: ignore[attr-defined]
    assert live._models == {} and live._saes == {}  # refused from the config: no weights loaded
    page = encoder_client.get("/steer", params={"sae_id": 1, "latent": 2})
    assert page.status_code == 200 and "not a causal LM" in page.text and 'id="steer-warning">' in page.text
    ran = encoder_client.post("/steer", data={"sae_id": 1, "latent": 2, "prompt": PROMPT})
    assert ran.status_code == 400 and "not a causal LM" in ran.text
    feature = encoder_client.get("/sae/1/feature/2").text
    assert "steer with this latent" in feature and 'id="steer-note"' in feature


def test_vector_file_from_the_vectors_folder_steers_like_the_latent(web_data, client, direct, tmp_path) -> None:
    _, sae = direct
    vector = from_sae_latent(sae, 7, hook=HOOK)
    vector.metadata["model"] = str(web_data.model_dir)
    save_vector(vector, tmp_path / "vecs" / "topic" / "cat7")
    (tmp_path / "vecs" / "stray.safetensors").write_bytes(b"")  # no .json beside it: not listed
    vclient = local_client(create_app(web_data.db_path, device="cpu", vectors_dir=tmp_path / "vecs"))
    assert vclient.get("/api/steer/vectors").json() == [
        {"name": "topic/cat7", "hook": HOOK, "d": 64, "model": str(web_data.model_dir)}]
    by_file = vclient.post("/api/steer", json={"vector": "topic/cat7", "coef": 40.0, "prompt": PROMPT,
                                               "max_new_tokens": N_NEW}).json()
    by_latent = _steer(client, coef=40.0).json()
    assert by_file["vector"] == "topic/cat7" and by_file["steered"] == by_latent["steered"]
    page = vclient.get("/steer", params={"source": "vector:topic/cat7"})
    assert 'value="vector:topic/cat7" selected' in page.text and 'id="steer-latent" min="0" value="" disabled' in page.text


def test_serve_passes_the_vectors_folder(web_data, tmp_path, monkeypatch) -> None:
    calls: list = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append(app))
    result = CliRunner().invoke(cli_app, ["serve", "--db", str(web_data.db_path), "--vectors", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert calls[0].state.web.vectors_dir == tmp_path
    missing = CliRunner().invoke(cli_app, ["serve", "--db", str(web_data.db_path), "--vectors", str(tmp_path / "no")])
    assert "--vectors" in str(missing.exception) and len(calls) == 1
