"""The JSON API: SAEs, latents, search, live inference (checked against a direct SAE.encode), JSON errors."""

from __future__ import annotations

import shutil

import torch

from interplab.models.interventions import capture
from interplab.models.loading import load_model
from interplab.saes.io import load_sae
from interplab.web.app import create_app
from web_data import D_SAE, HOOK, XSS, local_client


def test_sae_and_feature_endpoints_return_the_database_rows(client) -> None:
    saes = client.get("/api/saes").json()
    assert [(s["id"], s["name"], s["n_features"]) for s in saes] == [(1, f"tiny {XSS}", D_SAE)]
    page = client.get("/api/saes/1/features", params={"order": "max_act", "limit": 5, "offset": 2}).json()
    assert page["total"] == D_SAE and len(page["features"]) == 5
    maxes = [f["max_act"] for f in page["features"]]
    assert maxes == sorted(maxes, reverse=True)
    feat = client.get("/api/saes/1/features/7").json()
    assert feat["hist_counts"] == [10, 5, 2, 1] and feat["logits_pos"][1] == {"token": XSS, "value": 1.0}
    assert [e["tokens"][3] for e in feat["top_examples"][:1]] == [XSS]
    assert feat["quantile_examples"][0]["bucket"] == "0.00-0.25"
    assert feat["explanations"][0]["detection"] == 0.9 and feat["neighbours"][0] == {"idx": 8, "cosine": 0.8}


def test_search_finds_latents_by_peak_token_and_by_explanation_text(client) -> None:
    res = client.get("/api/search", params={"q": "kittens"}).json()
    assert [h["idx"] for h in res["by_explanation"]] == [7] and res["by_token"] == []
    res = client.get("/api/search", params={"q": " Cat"}).json()
    assert 7 in [h["idx"] for h in res["by_token"]]
    assert all(h["text"] == "cat" for h in res["by_token"])


def test_api_errors_are_json_details(client) -> None:
    for path in ["/api/saes/99", "/api/saes/1/features/999", "/api/saes/99/features", "/api/nothing"]:
        resp = client.get(path)
        assert resp.status_code == 404 and isinstance(resp.json()["detail"], str), path
    resp = client.get("/api/saes/1/features", params={"order": "bogus"})
    assert resp.status_code == 422 and resp.json()["detail"]
    assert client.post("/api/live", json={"sae_id": 1, "text": ""}).status_code == 422
    assert client.post("/api/live", json={"sae_id": 99, "text": "x"}).status_code == 404


def test_live_inference_equals_a_direct_encode_of_the_captured_activations(client, web_data) -> None:
    text = "The cat sat on the mat."
    res = client.post("/api/live", json={"sae_id": 1, "text": text, "top_n": 4}).json()
    assert res["hook"] == HOOK
    lm = load_model(web_data.model_dir, device="cpu")
    sae = load_sae(web_data.sae_folder)
    batch = lm.tokenize(text)
    with capture(lm.model, HOOK) as acts, torch.no_grad():
        lm.model(**batch)
    with torch.no_grad():
        latents_SF = sae.encode(acts[HOOK][0])
    assert len(res["tokens"]) == batch["input_ids"].shape[1]
    assert "".join(t["token"] for t in res["tokens"]) == text  # pieces of the text, spaces included
    for token, row_F in zip(res["tokens"], latents_SF, strict=True):
        vals, idx = row_F.topk(4)
        expected = [(int(i), float(v)) for v, i in zip(vals, idx, strict=True) if v > 0]
        got = [(lat["idx"], lat["value"]) for lat in token["latents"]]
        assert [i for i, _ in got] == [i for i, _ in expected]
        torch.testing.assert_close(torch.tensor([v for _, v in got]), torch.tensor([v for _, v in expected]))
    assert any(t["latents"] for t in res["tokens"])


def test_live_tokens_are_pieces_of_the_text_with_specials_decoded(minilm) -> None:
    from interplab.web.live import token_texts

    text = "The cat   sat. <b>"
    ids = minilm.tokenize(text)["input_ids"][0].tolist()
    pieces = token_texts(minilm, text, ids, 256)
    assert pieces[0] == "[CLS]" and pieces[-1] == "[SEP]" and "".join(pieces[1:-1]) == text
    assert pieces[2] == " cat" and pieces[3] == "   sat"


def test_live_inference_names_the_missing_sae_file(web_data, tmp_path) -> None:
    moved = tmp_path / "db.db"
    shutil.copy(web_data.db_path, moved)
    app = create_app(moved, sae_paths={1: tmp_path / "gone"}, device="cpu")
    resp = local_client(app).post("/api/live", json={"sae_id": 1, "text": "hello"})
    assert resp.status_code == 503
    assert "no SAE at" in resp.json()["detail"] and "--sae" in resp.json()["detail"]
    page = local_client(app).post("/live", data={"sae_id": 1, "text": "hello"})
    assert page.status_code == 200 and "no SAE at" in page.text


def _older_database(web_data, folder, stored_path: str):
    """A copy of the database in `folder`, its SAE row holding a relative path, as databases written before
    paths were stored absolute do; the SAE folder copied beside it."""
    import sqlite3

    folder.mkdir(parents=True)
    shutil.copy(web_data.db_path, folder / "dash.db")
    shutil.copytree(web_data.sae_folder, folder / "sae")
    with sqlite3.connect(folder / "dash.db") as conn:
        conn.execute("UPDATE saes SET path = ?", (stored_path,))
    return folder / "dash.db"


def test_older_database_with_a_relative_sae_path_finds_it_beside_the_database(web_data, tmp_path,
                                                                             monkeypatch) -> None:
    db = _older_database(web_data, tmp_path / "runs", "sae")
    monkeypatch.chdir(tmp_path)  # not where the database is
    resp = local_client(create_app(db, device="cpu")).post("/api/live", json={"sae_id": 1, "text": "hello"})
    assert resp.status_code == 200 and resp.json()["tokens"]


def test_missing_sae_names_every_path_tried_and_the_fix(web_data, tmp_path, monkeypatch) -> None:
    db = _older_database(web_data, tmp_path / "runs", "gone/sae")
    monkeypatch.chdir(tmp_path)
    resp = local_client(create_app(db, device="cpu")).post("/api/live", json={"sae_id": 1, "text": "hello"})
    detail = resp.json()["detail"]
    assert resp.status_code == 503 and "\n" not in detail
    assert str(tmp_path / "runs" / "gone" / "sae") in detail and str(tmp_path / "gone" / "sae") in detail
    assert "relative path 'gone/sae'" in detail and "interplab serve --db ... --sae" in detail
