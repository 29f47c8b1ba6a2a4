"""`interplab explain` against a real local OpenAI-compatible server backed by the tiny model."""

from __future__ import annotations

import json

import torch
from typer.testing import CliRunner

from interplab.autointerp.clients import LocalHFClient
from interplab.autointerp.serve import serve_client
from interplab.cli import app
from interplab.common import InterplabError
from interplab.saes import make_sae, sae_config, save_sae

HOOK = "blocks.0.resid_post"


def test_explain_cli_with_model_sae_and_endpoint_writes_the_run_and_the_db(gpt2, gpt2_dir, tmp_path):
    from interplab.dashboards.db import DashboardDB, SaeRecord

    torch.manual_seed(0)
    save_sae(
        make_sae(sae_config("topk", d_in=64, d_sae=16, k=2)),
        tmp_path / "sae",
        metadata={"hook_name": HOOK},
    )
    data = tmp_path / "data.txt"
    data.write_text(
        "\n".join(f"The cat number {i} sat on mat {i} and looked at bird {i}." for i in range(30))
    )
    db = DashboardDB(tmp_path / "dash.db")
    sae_id = db.upsert_sae(SaeRecord("tiny", str(tmp_path / "sae"), str(gpt2_dir), HOOK, 64, 16, "topk"))
    with serve_client(LocalHFClient(gpt2)) as server:
        result = CliRunner().invoke(
            app,
            [
                "explain",
                "--model",
                str(gpt2_dir),
                "--sae",
                str(tmp_path / "sae"),
                "--data",
                str(data),
                "--features",
                "0,3",
                "--endpoint",
                server.url,
                "--max-tokens",
                "8",
                "--context",
                "12",
                "--db",
                str(tmp_path / "dash.db"),
                "--out",
                str(tmp_path / "run"),
            ],
        )
    assert result.exit_code == 0, repr(result.exception)
    lines = [json.loads(x) for x in (tmp_path / "run" / "explanations.jsonl").read_text().splitlines()]
    assert [(r["feature"], r["baseline"]) for r in lines] == [(0, False), (0, True), (3, False), (3, True)]
    saved = db.get_explanations(sae_id, 3)
    assert (tmp_path / "run" / "scores.csv").exists() and len(saved) == 2
    assert {e.explainer.split(";")[0] for e in saved} == {lines[2]["explainer"], "token-stats (baseline)"}


def test_explain_cli_with_an_unreachable_endpoint_fails_in_one_line(gpt2_dir, tmp_path):
    torch.manual_seed(0)
    save_sae(
        make_sae(sae_config("topk", d_in=64, d_sae=8, k=2)),
        tmp_path / "sae",
        metadata={"hook_name": HOOK},
    )
    result = CliRunner().invoke(
        app,
        [
            "explain",
            "--model",
            str(gpt2_dir),
            "--sae",
            str(tmp_path / "sae"),
            "--features",
            "0",
            "--endpoint",
            "http://127.0.0.1:9",
            "--out",
            str(tmp_path / "run"),
        ],
    )
    assert isinstance(result.exception, InterplabError) and "cannot reach" in str(result.exception)


def test_explain_cli_needs_exactly_one_explainer(tmp_path):
    result = CliRunner().invoke(app, ["explain", "--out", str(tmp_path / "run")])
    assert isinstance(result.exception, InterplabError) and "--endpoint" in str(result.exception)


def test_explain_cli_reads_examples_from_the_db_alone_and_writes_explanations_back(cat_db, judge, tmp_path):
    db, sae_id = cat_db
    with serve_client(judge) as server:
        result = CliRunner().invoke(
            app,
            [
                "explain",
                "--db",
                str(tmp_path / "dash.db"),
                "--top-n",
                "1",
                "--endpoint",
                server.url,
                "--out",
                str(tmp_path / "run"),
            ],
        )
    assert result.exit_code == 0, repr(result.exception)
    saved = {e.explainer.split(";")[0]: e for e in db.get_explanations(sae_id, 0)}
    llm = next(e for name, e in saved.items() if name.startswith("openai:"))
    assert llm.text == "the word cat" and llm.detection == 1.0
    assert saved["token-stats (baseline)"].text.startswith("fires on 'cat'")
    assert "latent      0" in result.output and "token-stats: detection" in result.output


def test_the_baseline_alone_scored_by_a_local_log_prob_judge_reaches_the_feature_page(cat_db, judge, gpt2_dir,
                                                                                      tmp_path):
    from interplab.web.app import create_app
    from web_data import local_client

    db, sae_id = cat_db
    db.write_explanation(sae_id, 0, "the word cat", "openai:earlier-run", 0.9, 0.8)
    args = ["explain", "--db", str(tmp_path / "dash.db"), "--features", "0", "--explainer", "token-stats",
            "--judge", str(gpt2_dir), "--out", str(tmp_path / "run")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, repr(result.exception)
    record = json.loads((tmp_path / "run" / "explanations.jsonl").read_text())
    assert record["explainer"] == "token-stats" and record["judge"].endswith("(log-prob)")
    assert record["detection_detail"]["parse_failures"] == 0 and 0 <= record["detection"] <= 1
    assert record["detection_detail"]["threshold"] is not None and record["fuzzing"] is not None
    html = local_client(create_app(db, device="cpu")).get(f"/sae/{sae_id}/feature/0").text
    assert 'class="explanation baseline"' in html and "fires on &#39;cat&#39;" in html
    assert "the word cat" in html and "detection 0.90" in html and "(log-prob)" in html
