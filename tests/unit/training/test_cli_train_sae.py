"""`interplab train-sae` / `eval-sae` through typer's CliRunner: run folder, resume, store + model evals."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from typer.testing import CliRunner

from interplab.cli import app
from interplab.common import InterplabError
from interplab.saes import load_sae
from interplab.training.metrics_log import JsonlMetrics

runner = CliRunner()
DATA = ["--synthetic", "--n-features", "32", "--d-in", "16", "--mean-active", "3", "--d-sae", "48",
        "--batch-size", "64", "--lr", "3e-3", "--log-every", "5", "--eval-batches", "4"]
SYNTH = [*DATA, "--k", "4"]


def _train(out, *extra: str, data: list[str] = SYNTH):
    return runner.invoke(app, ["train-sae", "--out", str(out), *data, *extra])


def test_synthetic_run_writes_config_metrics_sae_eval_and_figures(tmp_path):
    out = tmp_path / "run"
    res = _train(out, "--steps", "20", "--checkpoint-every", "10")
    assert res.exit_code == 0, res.output
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["sae"]["architecture"] == "topk" and cfg["train"]["total_steps"] == 20
    lines = JsonlMetrics.read(out / "metrics.jsonl")
    assert [ln["step"] for ln in lines] == [5, 10, 15, 20] and all("fvu" in ln for ln in lines)
    sae = load_sae(out / "sae")
    assert (sae.cfg.d_in, sae.cfg.d_sae) == (16, 48) and sae.cfg.metadata["dataset"] == "synthetic"
    ev = json.loads((out / "eval.json").read_text())
    assert 0 < ev["mmcs"] <= 1 and 0 <= ev["fvu"] < 1 and ev["l0"] <= 4
    assert (out / "l0_fvu.png").read_bytes()[:4] == b"\x89PNG"
    assert "<svg" in (out / "l0_fvu.html").read_text()

    # eval-sae on the same held-out synthetic batches reproduces the run's final evaluation
    res = runner.invoke(app, ["eval-sae", str(out / "sae"), "--synthetic", "--batches", "4",
                              "--out", str(tmp_path / "ev.json")])
    assert res.exit_code == 0, res.output
    again = json.loads((tmp_path / "ev.json").read_text())
    assert again["fvu"] == pytest.approx(ev["fvu"]) and again["mmcs"] == pytest.approx(ev["mmcs"])


def test_rerun_after_a_kill_continues_to_the_uninterrupted_result(tmp_path):
    full, cut = tmp_path / "full", tmp_path / "cut"
    assert _train(full, "--steps", "20", "--checkpoint-every", "10").exit_code == 0
    assert _train(cut, "--steps", "20", "--checkpoint-every", "10").exit_code == 0
    # what a kill between step 10 and 20 leaves: the step-10 checkpoint, no final SAE, no done.json
    shutil.rmtree(cut / "checkpoints" / "step_00000020")
    shutil.rmtree(cut / "sae")
    (cut / "done.json").unlink()

    changed = _train(cut, "--steps", "30", "--checkpoint-every", "10", "--resume")
    assert isinstance(changed.exception, InterplabError) and "different settings" in str(changed.exception)
    changed = _train(cut, "--steps", "30", "--checkpoint-every", "10")
    assert isinstance(changed.exception, InterplabError) and "--overwrite" in str(changed.exception)

    # the identical command continues the unfinished run, --resume or not (a failed run never blocks it)
    res = _train(cut, "--steps", "20", "--checkpoint-every", "10")
    assert res.exit_code == 0, res.output
    a, b = load_sae(full / "sae"), load_sae(cut / "sae")
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(x, y), name
    assert JsonlMetrics.read(cut / "metrics.jsonl") == JsonlMetrics.read(full / "metrics.jsonl")

    # a finished run is reused, not retrained; --overwrite trains a different one in its place
    again = _train(cut, "--steps", "20", "--checkpoint-every", "10")
    assert again.exit_code == 0 and "reused" in again.output
    res = _train(cut, "--steps", "10", "--checkpoint-every", "10", "--overwrite")
    assert res.exit_code == 0 and json.loads((cut / "config.json").read_text())["train"]["total_steps"] == 10


def test_a_field_the_architecture_lacks_is_refused_not_ignored(tmp_path):
    res = _train(tmp_path / "r", "--steps", "2", "--arch", "jumprelu", "--l1-coeff", "0.5", data=DATA)
    assert isinstance(res.exception, InterplabError) and "--l1-coeff does not apply to --arch jumprelu" in str(res.exception)
    assert not (tmp_path / "r").exists()
    res = _train(tmp_path / "j", "--steps", "4", "--arch", "jumprelu", "--l0-coeff", "0.2", "--bandwidth", "0.01",
                 data=DATA)
    assert res.exit_code == 0, res.output
    sae = load_sae(tmp_path / "j" / "sae")
    assert (sae.cfg.l0_coeff, sae.cfg.bandwidth) == (0.2, 0.01)


def test_help_lists_every_config_field_of_every_architecture():
    import dataclasses

    from interplab.saes import SAE_CLASSES, TranscoderFields

    text = runner.invoke(app, ["train-sae", "--help"], env={"COLUMNS": "300"}).output
    for cls in SAE_CLASSES.values():
        if issubclass(cls.config_class, TranscoderFields):
            continue  # `interplab train-transcoders`
        for f in dataclasses.fields(cls.config_class):
            if f.name in ("d_in", "seed", "metadata"):
                continue  # set by the data and by --seed
            flag = "--sae-dtype" if f.name == "dtype" else "--" + f.name.replace("_", "-")
            assert flag in text, flag


def test_store_training_and_ce_kl_eval_on_a_tiny_gpt2(tmp_path, tiny_model_dir):
    from interplab.activations import CacheConfig, cache_activations
    from interplab.data.corpus import load_demo_corpus
    from interplab.models.loading import load_model

    model_dir = tiny_model_dir("gpt2")
    lm = load_model(model_dir, device="cpu")
    store = tmp_path / "store"
    cache_activations(lm, load_demo_corpus()[:24], "blocks.0.resid_post", store,
                      CacheConfig(context_size=32, batch_size=8, shard_tokens=256))
    out = tmp_path / "run"
    res = runner.invoke(app, ["train-sae", "--out", str(out), "--store", str(store), "--d-sae", "128", "--k", "8",
                              "--steps", "30", "--batch-size", "64", "--lr", "3e-3", "--log-every", "10",
                              "--eval-batches", "2", "--checkpoint-every", "100"])
    assert res.exit_code == 0, res.output
    sae = load_sae(out / "sae")
    assert sae.cfg.metadata["hook_name"] == "blocks.0.resid_post"
    res = runner.invoke(app, ["eval-sae", str(out / "sae"), "--store", str(store), "--model", str(model_dir),
                              "--n-texts", "4", "--max-length", "32", "--batches", "2", "--batch-size", "64"])
    assert res.exit_code == 0, res.output
    ev = json.loads((out / "sae" / "eval.json").read_text())
    assert {"fvu", "l0", "dead_fraction", "ce_recovered", "kl_recovered", "ce_clean"} <= set(ev)
    assert ev["kl_spliced"] < ev["kl_zero"]  # the SAE's reconstruction is closer to the model than deletion


def test_data_source_must_be_given_exactly_once(tmp_path):
    res = runner.invoke(app, ["train-sae", "--out", str(tmp_path / "x"), "--steps", "2"])
    assert isinstance(res.exception, InterplabError) and "--synthetic" in str(res.exception)


def test_a_transcoder_arch_is_refused_with_a_pointer_to_train_transcoders(tmp_path):
    res = _train(tmp_path / "t", "--steps", "4", "--arch", "topk_skip_transcoder")
    assert isinstance(res.exception, InterplabError)
    message = str(res.exception)
    assert "train-transcoders --arch topk_skip_transcoder" in message and "\n" not in message
    assert not (tmp_path / "t").exists()
    help_text = runner.invoke(app, ["train-sae", "--help"], env={"COLUMNS": "300"}).output
    assert "transcoder" not in help_text and "--d-out" not in help_text
