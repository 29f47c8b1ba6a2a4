"""`analyze` on a tiny GPT-2: every stage recorded, a rerun skips them, and a SIGKILL during SAE
training resumes without re-caching to the same SAE as an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from interplab.common import InterplabError
from interplab.pipelines.analyze import AnalyzeConfig, estimate, resolve_hooks, run_analyze, split_documents

SMALL = dict(data="demo", train_tokens=2048, eval_tokens=512, context_size=32, steps=30, batch_size=128,
             expansion=2, k=4, loss_texts=4, explain_latents=2, toy=False, probe=False)


@pytest.fixture(scope="module")
def analyzed(tiny_model_dir, tmp_path_factory):
    cfg = AnalyzeConfig(model=str(tiny_model_dir("gpt2")), layers="0,1", **SMALL)
    out = tmp_path_factory.mktemp("analyze") / "run"
    return cfg, run_analyze(cfg, out)


def test_every_stage_is_recorded_and_held_out_numbers_come_from_held_out_documents(analyzed):
    cfg, result = analyzed
    stages = json.loads((result.out / "stages.json").read_text())["stages"]
    assert all(rec["status"] == "done" for rec in stages.values())
    assert {"cache blocks.0.resid_post", "train SAE blocks.1.resid_post", "evaluate blocks.1.resid_post",
            "dashboards blocks.0.resid_post", "report: steering sweep", "report: explanations"} <= set(stages)
    for hr in result.hooks:
        ev = json.loads((hr.run / "heldout_eval.json").read_text())
        assert 0 < ev["heldout_fvu"] and ev["heldout_l0"] <= cfg.k and "heldout_ce_recovered" in ev
        held = json.loads((hr.eval_store / "manifest.json").read_text())
        train = json.loads((hr.store / "manifest.json").read_text())
        assert held["tokens_sha256"] != train["tokens_sha256"]  # different documents
    assert (result.reports / "steering" / "index.json").exists() and result.db.stat().st_size > 0
    assert (result.out / "done.json").exists()


def test_the_first_sae_s_frequent_latents_are_explained_scored_and_shown_on_feature_pages(analyzed):
    from interplab.dashboards import DashboardDB

    _, result = analyzed
    index = json.loads((result.reports / "explanations" / "index.json").read_text())
    assert index["kind"] == "autointerp" and index["summary"]["n_features"] == 2
    records = [json.loads(line) for line in (result.reports / "explanations" / "explanations.jsonl").open()]
    assert {r["explainer"] for r in records} >= {"token-stats"} and len({r["explainer"] for r in records}) == 2
    assert all(r["judge"].endswith("(log-prob)") and r["detection"] is not None for r in records)
    db = DashboardDB(str(result.db), create=False)
    sae_id = db.list_saes()[0].id
    shown = [db.get_explanations(sae_id, r["feature"]) for r in records]
    assert all(shown), "every explained latent has its explanation in the dashboards DB"


def test_a_rerun_skips_every_finished_stage(analyzed):
    cfg, result = analyzed
    mtimes = {p: p.stat().st_mtime_ns for p in result.out.rglob("*.safetensors")}
    t0 = time.perf_counter()
    again = run_analyze(cfg, result.out)
    assert [h.evaluation for h in again.hooks] == [h.evaluation for h in result.hooks]
    assert {p: p.stat().st_mtime_ns for p in result.out.rglob("*.safetensors")} == mtimes
    assert time.perf_counter() - t0 < 60  # loading the tiny model only; nothing recomputed


def test_a_different_analysis_into_the_same_folder_is_refused(analyzed):
    cfg, result = analyzed
    with pytest.raises(InterplabError, match="different settings"):
        run_analyze(AnalyzeConfig(**{**cfg.__dict__, "steps": 31}), result.out)


def test_layers_and_corpus_errors_are_one_line(tiny_model_dir):
    from interplab.models.loading import load_model

    lm = load_model(tiny_model_dir("gpt2"))
    assert resolve_hooks(lm, "middle", "resid_post") == [f"blocks.{lm.n_layers // 2}.resid_post"]
    with pytest.raises(InterplabError, match="out of range"):
        resolve_hooks(lm, "0,7", "resid_post")
    with pytest.raises(InterplabError, match="block indices"):
        resolve_hooks(lm, "first", "resid_post")
    with pytest.raises(InterplabError, match="at least 10"):
        split_documents(["a", "b"])
    line = estimate(lm, AnalyzeConfig(model="x", **SMALL), ["blocks.0.resid_post"])
    assert "GB" in line and "min" in line and "tok/s" in line


def _cli(out: Path, model: str) -> list[str]:
    args = ["analyze", "--model", model, "--out", str(out), "--no-serve", "--layers", "0",
            "--steps", "3000", "--batch-size", "64"]
    for key, value in SMALL.items():
        if key in ("steps", "batch_size"):
            continue
        flag = "--" + key.replace("_", "-")
        args += [flag] if value is True else ([f"--no-{key.replace('_', '-')}"] if value is False else [flag, str(value)])
    return [sys.executable, "-m", "interplab.cli", *args]


def test_sigkill_during_training_resumes_without_recaching_to_the_same_sae(tmp_path, tiny_model_dir):
    model = str(tiny_model_dir("gpt2"))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[3] / "src"), "OMP_NUM_THREADS": "1"}
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    subprocess.run(_cli(whole, model), env=env, check=True, capture_output=True, timeout=600)

    proc = subprocess.Popen(_cli(cut, model), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpts = cut / "saes" / "blocks-0-resid_post" / "checkpoints"
    deadline = time.time() + 300
    while not (ckpts.exists() and any(p.name.startswith("step_") for p in ckpts.iterdir())):
        assert proc.poll() is None and time.time() < deadline, "the run ended before its first checkpoint"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (cut / "saes" / "blocks-0-resid_post" / "sae").exists(), "killed too late to test the resume"
    shards = {p: p.stat().st_mtime_ns for p in (cut / "stores").rglob("shard_*.safetensors")}

    subprocess.run(_cli(cut, model), env=env, check=True, capture_output=True, timeout=600)
    assert {p: p.stat().st_mtime_ns for p in (cut / "stores").rglob("shard_*.safetensors")} == shards  # no re-cache
    a = load_file(str(whole / "saes" / "blocks-0-resid_post" / "sae" / "sae_weights.safetensors"))
    b = load_file(str(cut / "saes" / "blocks-0-resid_post" / "sae" / "sae_weights.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
