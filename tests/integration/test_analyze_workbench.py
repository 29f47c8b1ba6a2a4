"""What `analyze` serves: feature pages with logit effects, steering that changes text, and the toy, probe
and steering reports listed. On a tiny GPT-2 in the default suite; on SmolLM2 (the demo's model) `slow`."""

from __future__ import annotations

from pathlib import Path

import pytest

from interplab.pipelines.analyze import AnalyzeConfig, AnalyzeResult, run_analyze
from interplab.web import create_app
from web_data import local_client

PROMPT = "The weather today is"


def _check_served_workbench(result: AnalyzeResult) -> None:
    client = local_client(create_app(result.db, reports_dir=result.reports, vectors_dir=result.vectors,
                                     device="cpu"))
    sae = client.get("/api/saes").json()[0]
    feature = client.get(f"/api/saes/{sae['id']}/features/0").json()
    assert feature["logits_pos"] and feature["logits_neg"]  # a causal LM's latents have logit effects
    page = client.get(f"/sae/{sae['id']}/feature/0")
    assert page.status_code == 200 and "Logit effects" in page.text
    # the latent firing most often
    top = client.get(f"/api/saes/{sae['id']}/features", params={"order": "frequency", "limit": 1}).json()
    runs = {}
    for coef in (0.0, 1.0):
        res = client.post("/api/steer", json={"sae_id": sae["id"], "latent": top["features"][0]["idx"], "coef": coef,
                                              "prompt": PROMPT, "max_new_tokens": 12})
        assert res.status_code == 200, res.text
        runs[coef] = res.json()["steered"][0]["text"]
    assert runs[0.0] != runs[1.0]
    kinds = {r["kind"] for r in client.get("/api/reports").json()}
    assert {"toy", "probe-study", "steering-sweep"} <= kinds
    assert client.get("/reports").status_code == 200


def test_analyze_serves_logit_effects_steering_and_the_three_reports(tiny_model_dir, tmp_path):
    cfg = AnalyzeConfig(model=str(tiny_model_dir("gpt2")), data="demo", layers="1", train_tokens=2048,
                        eval_tokens=512, context_size=32, steps=40, batch_size=128, expansion=2, k=4, loss_texts=4,
                        explain_latents=0)
    _check_served_workbench(run_analyze(cfg, tmp_path / "run"))


@pytest.mark.slow
def test_the_smollm2_demo_serves_logit_effects_steering_and_the_three_reports(smollm2, tmp_path: Path):
    cfg = AnalyzeConfig(train_tokens=8192, eval_tokens=2048, steps=120, loss_texts=8, explain_latents=0)
    _check_served_workbench(run_analyze(cfg, tmp_path / "demo"))
