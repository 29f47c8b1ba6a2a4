"""Pooled features equal the HF model's own hidden states, whatever the padding side and batch."""

from __future__ import annotations

import pytest
import torch

from interplab.common import InterplabError
from interplab.models.loading import load_model
from interplab.probes.features import FeatureConfig, extract_features, hook_name

TEXTS = ["The cat sat on the mat.", "Paris is the capital of France and a big city", "Numbers 1 2 3"]


def reference(lm, text: str, layer: int) -> torch.Tensor:
    """Unpadded single-text forward pass: hidden_states[layer + 1] is block `layer`'s output."""
    batch = lm.tokenize([text])
    with torch.no_grad():
        out = lm.model(**batch, output_hidden_states=True)
    return out.hidden_states[layer + 1][0]


@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_last_and_mean_pooling_match_unpadded_hidden_states(tiny_model_dir, padding_side):
    lm = load_model(tiny_model_dir("gpt2", n_layers=3))
    lm.tokenizer.padding_side = padding_side
    hooks = [hook_name(0), hook_name(1)]
    last = extract_features(lm, TEXTS, hooks, FeatureConfig(batch_size=2))
    mean = extract_features(lm, TEXTS, hooks, FeatureConfig(pooling="mean", batch_size=3))
    for layer, hook in enumerate(hooks):
        assert last[hook].shape == (3, lm.d_model)
        for i, text in enumerate(TEXTS):
            ref_SD = reference(lm, text, layer)
            torch.testing.assert_close(last[hook][i], ref_SD[-1], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(mean[hook][i], ref_SD.mean(0), atol=1e-5, rtol=1e-5)


def test_marker_pooling_reads_the_token_before_the_marker(tiny_model_dir):
    lm = load_model(tiny_model_dir("gpt2"))
    prefix = "Paris is the capital"
    feats = extract_features(
        lm, [prefix + "<|probe|> of France."], ["blocks.0.resid_post"], FeatureConfig(pooling="marker")
    )
    # causal model: the activation at the prefix's last token does not depend on what follows
    torch.testing.assert_close(
        feats["blocks.0.resid_post"][0], reference(lm, prefix, 0)[-1], atol=1e-5, rtol=1e-5
    )
    with pytest.raises(InterplabError, match="marker"):
        extract_features(lm, ["no marker here"], ["blocks.0.resid_post"], FeatureConfig(pooling="marker"))


def test_encoder_features_match_bert_hidden_states(minilm):
    feats = extract_features(minilm, TEXTS[:2], [hook_name(5)], FeatureConfig(pooling="mean"))
    for i, text in enumerate(TEXTS[:2]):
        torch.testing.assert_close(
            feats["blocks.5.resid_post"][i], reference(minilm, text, 5).mean(0), atol=1e-4, rtol=1e-4
        )


def test_unknown_pooling_is_a_clear_error(tiny_model_dir):
    lm = load_model(tiny_model_dir("gpt2"))
    with pytest.raises(InterplabError, match="pooling"):
        extract_features(lm, TEXTS, ["blocks.0.resid_post"], FeatureConfig(pooling="max"))
