"""Evaluations honour the positions an activation store leaves out (attention sinks), and say so."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from interplab.activations.exclusion import ExclusionRule
from interplab.cli import app
from interplab.evals import fvu, loss_recovered_on_texts
from interplab.evals.reconstruction import _on_kept
from interplab.saes import load_sae

HOOK = "blocks.0.resid_post"


@pytest.fixture(scope="module")
def gpt2(tiny_model_dir):
    from interplab.models.loading import load_model

    return load_model(tiny_model_dir("gpt2"), device="cpu")


def test_eval_sae_fvu_is_over_the_kept_tokens_and_names_the_excluded_ones(gpt2, tiny_model_dir, tmp_path):
    from interplab.activations import ActivationStore, CacheConfig, cache_activations
    from interplab.data.corpus import load_demo_corpus

    store_dir, out = tmp_path / "store", tmp_path / "run"
    store = cache_activations(gpt2, load_demo_corpus()[:24], HOOK, store_dir,
                              CacheConfig(context_size=32, batch_size=8, shard_tokens=256))
    assert store.n_excluded > 0
    runner = CliRunner()
    res = runner.invoke(app, ["train-sae", "--out", str(out), "--store", str(store_dir), "--d-sae", "64", "--k", "4",
                              "--steps", "10", "--batch-size", "64", "--eval-batches", "2", "--checkpoint-every", "100"])
    assert res.exit_code == 0, res.output
    sae = load_sae(out / "sae")
    assert ExclusionRule.from_json(sae.cfg.metadata["exclusion"]) == store.exclusion
    res = runner.invoke(app, ["eval-sae", str(out / "sae"), "--store", str(store_dir), "--batches", "1000",
                              "--batch-size", "64", "--model", str(tiny_model_dir("gpt2")), "--n-texts", "4"])
    assert res.exit_code == 0, res.output
    ev = json.loads((out / "sae" / "eval.json").read_text())
    described = store.exclusion.describe()
    assert ev["excluded_positions"] == ev["splice_excluded_positions"] == described
    assert described.startswith("the first position of each sequence; special tokens <|endoftext|>")
    x_ND = ActivationStore.open(store_dir).valid_activations()
    assert ev["n_tokens"] == len(x_ND) == store.n_tokens
    with torch.no_grad():
        assert ev["fvu"] == pytest.approx(fvu(x_ND, sae.decode(sae.encode(x_ND))), rel=1e-6)


def test_splice_and_ablation_leave_excluded_positions_as_they_are():
    x_BSD = torch.randn(2, 4, 3)
    batch = {"input_ids": torch.tensor([[5, 5, 5, 5], [0, 5, 5, 5]]),
             "attention_mask": torch.tensor([[1, 1, 1, 1], [0, 1, 1, 1]])}
    patched = _on_kept(torch.zeros_like, batch, ExclusionRule(first_positions=1))(x_BSD)
    kept = torch.tensor([[False, True, True, True], [False, False, True, True]])
    assert torch.equal(patched[~kept], x_BSD[~kept]) and not patched[kept].any()
    assert _on_kept(torch.zeros_like, batch, None)(x_BSD).eq(0).all()


def test_loss_recovered_changes_nothing_when_every_position_is_excluded(gpt2):
    everything = ExclusionRule(first_positions=1000)
    res = loss_recovered_on_texts(gpt2, ["The cat sat on the mat.", "A short one"], HOOK,
                                  replace_fn=lambda x: 3 * x + 1, exclusion=everything)
    assert res.ce_spliced == pytest.approx(res.ce_clean) and res.ce_zero == pytest.approx(res.ce_clean)
    assert res.kl_spliced == pytest.approx(0.0, abs=1e-6) and res.kl_zero == pytest.approx(0.0, abs=1e-6)
    spliced = loss_recovered_on_texts(gpt2, ["The cat sat on the mat."], HOOK, replace_fn=lambda x: 3 * x + 1,
                                      exclusion=ExclusionRule(first_positions=1))
    assert spliced.kl_spliced > 1e-4  # the other positions are replaced
