"""Contrast (difference-of-means) probes and cosine geometry, checked against direct computation."""

from __future__ import annotations

import math

import pytest
import torch
from sklearn.metrics import roc_auc_score
from torch.nn.functional import cosine_similarity

from interplab.common import InterplabError
from interplab.models.loading import load_model
from interplab.probes.contrast import contrast_from_texts, evaluate_contrast, fit_contrast
from interplab.probes.directions import (
    combined_decoder_direction,
    cosine_matrix,
    decoder_alignment,
    probe_cosines,
)
from interplab.probes.features import extract_features


def planted_classes(n=400, d=32, shift=1.5, seed=0):
    gen = torch.Generator().manual_seed(seed)
    u_D = torch.randn(d, generator=gen)
    u_D /= u_D.norm()
    y = torch.arange(n) % 2
    X = torch.randn(n, d, generator=gen) + shift * y[:, None] * u_D
    return X, y, u_D


def test_few_pairs_recover_the_planted_direction_and_score_by_auroc():
    X, y, u_D = planted_classes()
    probe = fit_contrast(X[:40][y[:40] == 1], X[:40][y[:40] == 0])
    assert float(probe.direction_D.float() @ u_D) > 0.6  # 20 pairs in 32-d: noisy but aligned
    metrics = evaluate_contrast(probe, X[40:], y[40:])
    scores = (X[40:].double() @ probe.direction_D).numpy()
    assert metrics.auroc == pytest.approx(roc_auc_score(y[40:].numpy(), scores), abs=1e-12)
    assert metrics.accuracy > 0.65 and metrics.n == 360
    means = X[:40][y[:40] == 1].double().mean(0), X[:40][y[:40] == 0].double().mean(0)
    assert probe.threshold == pytest.approx(float((means[0] + means[1]) @ probe.direction_D) / 2)


def test_identical_contrast_sets_are_rejected():
    x = torch.ones(3, 4)
    with pytest.raises(InterplabError, match="identical"):
        fit_contrast(x, x)
    with pytest.raises(InterplabError, match="same d"):
        fit_contrast(x, torch.ones(3, 5))


def test_contrast_from_texts_equals_mean_difference_of_features(tiny_model_dir):
    lm = load_model(tiny_model_dir("gpt2"))
    pairs = [("I will help you. Yes", "I will help you. No"), ("Is it safe? Yes", "Is it safe? No")]
    probe = contrast_from_texts(lm, pairs, "blocks.1.resid_post")
    feats = extract_features(lm, [p for p, _ in pairs] + [q for _, q in pairs], ["blocks.1.resid_post"])
    acts = feats["blocks.1.resid_post"].double()
    diff = acts[:2].mean(0) - acts[2:].mean(0)
    torch.testing.assert_close(probe.direction_D, diff / diff.norm())


def test_cosine_matrix_matches_torch_cosine_similarity():
    gen = torch.Generator().manual_seed(0)
    A, B = torch.randn(3, 16, generator=gen), torch.randn(5, 16, generator=gen)
    ref = cosine_similarity(A[:, None, :].double(), B[None, :, :].double(), dim=-1)
    torch.testing.assert_close(cosine_matrix(A, B), ref)
    names, C = probe_cosines({"a": A[0], "b": -A[0], "c": A[1]})
    assert names == ["a", "b", "c"] and C[0, 1] == pytest.approx(-1.0) and C[0, 0] == pytest.approx(1.0)


def test_decoder_alignment_finds_the_planted_latent_and_combined_direction():
    gen = torch.Generator().manual_seed(1)
    W_dec = torch.randn(50, 16, generator=gen)
    direction = -2.0 * W_dec[7] + 0.01 * torch.randn(16, generator=gen)
    aligned = decoder_alignment(direction, W_dec, top_n=3)
    assert aligned.latents[0] == 7 and aligned.cosines[0] < -0.99 and aligned.max_abs_cosine > 0.99
    combined = combined_decoder_direction([3, 9], torch.tensor([2.0, -1.0]), W_dec)
    expected = (2 * W_dec[3] - W_dec[9]).double()
    torch.testing.assert_close(combined, expected / expected.norm())
    assert math.isclose(float(combined.norm()), 1.0)
    with pytest.raises(InterplabError, match="decoder rows"):
        decoder_alignment(torch.ones(8), W_dec)
