"""CCS: finds a consistent direction without labels when one exists; a random direction is at chance."""

from __future__ import annotations

import torch

from interplab.probes import CCSConfig, fit_ccs, random_direction_probe


def _pairs(n: int = 200, d: int = 20, seed: int = 0):
    """Contrast pairs whose halves differ along dim 0 by the truth (+ when true), plus a large "Yes"/"No"
    offset along dim 1 that CCS must ignore (the per-half normalisation removes it)."""
    gen = torch.Generator().manual_seed(seed)
    y_N = torch.arange(n) % 2
    truth_N = y_N.float() * 2 - 1
    base_ND = torch.randn(n, d, generator=gen)
    pos_ND, neg_ND = base_ND.clone(), base_ND.clone()
    pos_ND[:, 0] += 1.5 * truth_N
    neg_ND[:, 0] -= 1.5 * truth_N
    pos_ND[:, 1] += 5.0
    return pos_ND + 0.3 * torch.randn(n, d, generator=gen), neg_ND + 0.3 * torch.randn(n, d, generator=gen), y_N


def _accuracy(probe, pos, neg, y) -> float:
    return float(((probe.credence(pos, neg) > 0.5).long() == y).double().mean())


def test_ccs_recovers_the_truth_direction_without_labels_and_a_random_one_does_not():
    pos, neg, y = _pairs()
    probe = fit_ccs(pos[:140], neg[:140], y[:140], CCSConfig(n_tries=3))
    assert _accuracy(probe, pos[140:], neg[140:], y[140:]) > 0.95
    assert abs(float(probe.direction[0])) > 0.9
    rand = random_direction_probe(pos[:140], neg[:140], y[:140])
    assert _accuracy(rand, pos[140:], neg[140:], y[140:]) < 0.8


def test_the_sign_comes_from_the_labels_only():
    pos, neg, y = _pairs()
    cfg = CCSConfig(n_tries=2)
    unsigned = fit_ccs(pos, neg, None, cfg)
    flipped = fit_ccs(pos, neg, 1 - y, cfg)
    signed = fit_ccs(pos, neg, y, cfg)
    assert _accuracy(signed, pos, neg, y) > 0.95 and _accuracy(flipped, pos, neg, y) < 0.05
    assert unsigned.loss == signed.loss
    torch.testing.assert_close(signed.weight_D.abs(), unsigned.weight_D.abs())
