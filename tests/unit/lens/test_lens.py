"""The logit and tuned lens on tiny random decoders of every family we have a table for."""

from __future__ import annotations

import json

import pytest
import torch

from interplab.common import InterplabError
from interplab.lens import (
    TunedLens,
    TunedLensConfig,
    compare_lenses,
    layer_labels,
    lens_grid,
    load_tuned_lens,
    save_tuned_lens,
    train_tuned_lens,
)
from interplab.models import load_model

TEXTS = ["The cat sat on the mat while the dog slept by the door.", "Paris is the capital of France.",
         "Numbers like 1, 2, 3 and 42 appear in lists.", "She was happy, then sad, then calm again."]


@pytest.mark.parametrize("family", ["gpt2", "gpt_neox", "llama", "gemma3"])
def test_the_last_layer_read_through_the_lens_is_the_models_own_prediction(tiny_model_dir, family) -> None:
    lm = load_model(tiny_model_dir(family), device="cpu")
    grid = lens_grid(lm, "The cat sat on the mat", k=3)
    assert grid.layers == layer_labels(lm.n_layers) and len(grid.layers) == lm.n_layers + 1
    assert grid.top_probs_LSK.shape == (lm.n_layers + 1, len(grid.tokens), 3)
    assert float(grid.kl_LS[-1].max()) < 1e-4
    assert grid.top_tokens[-1] == grid.final_tokens
    assert float(grid.kl_LS[0].mean()) > 1e-4  # the embeddings alone predict something else


def test_the_lens_refuses_an_encoder_saying_it_needs_a_causal_lm(tiny_model_dir) -> None:
    lm = load_model(tiny_model_dir("bert"), device="cpu")
    with pytest.raises(InterplabError, match="not a causal LM"):
        lens_grid(lm, "the cat")


def test_an_untrained_tuned_lens_reads_exactly_what_the_logit_lens_reads(tiny_model_dir) -> None:
    lm = load_model(tiny_model_dir("llama"), device="cpu")
    zero = TunedLens(lm.d_model, layer_labels(lm.n_layers))
    kl = compare_lenses(lm, TEXTS[:2], {"logit": None, "tuned": zero})
    torch.testing.assert_close(kl["logit"], kl["tuned"])


def test_tuned_lens_files_round_trip_and_a_damaged_file_is_refused(tiny_model_dir, tmp_path) -> None:
    lm = load_model(tiny_model_dir("llama"), device="cpu")
    lens = TunedLens(lm.d_model, layer_labels(lm.n_layers), {"model": "tiny"})
    with torch.no_grad():
        lens.weight_LDD.normal_(0, 0.01)
        lens.bias_LD.normal_()
    save_tuned_lens(lens, tmp_path / "lens")
    back = load_tuned_lens(tmp_path / "lens")
    torch.testing.assert_close(back.weight_LDD, lens.weight_LDD)
    assert back.labels == lens.labels and back.metadata["model"] == "tiny"
    weights = tmp_path / "lens" / "tuned_lens.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(InterplabError, match="sha256"):
        load_tuned_lens(tmp_path / "lens")


def test_a_lens_of_another_model_shape_is_refused(tiny_model_dir) -> None:
    lm = load_model(tiny_model_dir("llama"), device="cpu")
    with pytest.raises(InterplabError, match="trained on this model"):
        lens_grid(lm, "the cat", TunedLens(lm.d_model, layer_labels(lm.n_layers + 1)))


def test_training_lowers_the_kl_on_held_out_text_and_a_resumed_run_ends_where_an_unbroken_one_does(
        tiny_model_dir, tmp_path) -> None:
    lm = load_model(tiny_model_dir("gemma3"), device="cpu")
    cfg = TunedLensConfig(steps=12, batch_size=2, lr=3e-3, warmup_steps=2, checkpoint_every=4, threads=1)
    lens, result = train_tuned_lens(lm, TEXTS[:3], cfg, folder=tmp_path / "a")
    kl = compare_lenses(lm, TEXTS[3:], {"logit": None, "tuned": lens})
    assert float(kl["tuned"][:-1].mean()) < float(kl["logit"][:-1].mean())
    assert result.steps == 12 and (tmp_path / "a" / "metrics.jsonl").read_text().count("\n") >= 2
    train_tuned_lens(lm, TEXTS[:3], TunedLensConfig(**{**cfg.__dict__, "steps": 12}), folder=tmp_path / "b")
    # a second run in folder b: pretend it was killed after step 8 by deleting the final checkpoint
    import shutil

    for ckpt in sorted((tmp_path / "b" / "checkpoints").glob("step_*"))[1:]:
        shutil.rmtree(ckpt)
    resumed, info = train_tuned_lens(lm, TEXTS[:3], cfg, folder=tmp_path / "b")
    assert info.resumed_from == 8
    torch.testing.assert_close(resumed.weight_LDD, lens.weight_LDD)
    torch.testing.assert_close(resumed.bias_LD, lens.bias_LD)


def test_the_lens_run_reports_its_training_tokens_and_cpu_cost(tiny_model_dir, tmp_path) -> None:
    from interplab.lens.train import _batch_texts
    from interplab.pipelines.lens import LensRunConfig, run_tuned_lens, split_texts
    from interplab.reports import read_index

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(TEXTS * 2), encoding="utf-8")
    model = str(tiny_model_dir("llama"))
    run = LensRunConfig(model=model, data=str(corpus), heldout_texts=2, device="cpu")
    train = TunedLensConfig(steps=3, batch_size=2, max_length=8, checkpoint_every=0, threads=1)
    index = run_tuned_lens(tmp_path / "report", run, train)
    config = json.loads((index.parent / "config.json").read_text())
    cost = config["cost"]
    # the tokens trained on: each step's texts, cut at max_length, counted without padding
    lm = load_model(model, device="cpu")
    texts, _ = split_texts(TEXTS * 2, 2, run.max_texts, train.seed)
    order = torch.randperm(len(texts), generator=torch.Generator().manual_seed(train.seed)).tolist()
    expected = sum(min(len(lm.tokenizer(t)["input_ids"]), 8) for step in range(3)
                   for t in _batch_texts(texts, order, step, 2))
    assert cost["train_tokens"] == expected
    assert cost["train_cpu_s"] >= 0 and cost["eval_cpu_s"] >= 0 and cost["load_avg_start"] >= 0
    assert read_index(index.parent).summary["n_layers"] == lm.n_layers + 1


@pytest.mark.parametrize("family", ["gpt2", "gemma3"])
def test_keeping_the_last_positions_logits_changes_neither_them_nor_the_streams(tiny_model_dir, family) -> None:
    from interplab.lens import run_streams

    lm = load_model(tiny_model_dir(family), device="cpu")
    batch = lm.tokenize("The cat sat on the mat")
    streams, logits = run_streams(lm, batch)
    kept_streams, kept = run_streams(lm, batch, logits_to_keep=1)
    assert kept.shape[1] == 1
    torch.testing.assert_close(kept[:, -1], logits[:, -1])
    torch.testing.assert_close(kept_streams, streams)
