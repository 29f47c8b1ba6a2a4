"""Ground-truth absorption on a synthetic hierarchy: 0 for the true dictionary, ~1 for one built to absorb."""

from __future__ import annotations

import pytest
import torch

from interplab.data.synthetic import HierarchyConfig, HierarchySource
from interplab.evals import hierarchy_absorption
from interplab.saes import make_sae, sae_config

CFG = HierarchyConfig(n_parents=6, children_per_parent=3, n_independent=4, parent_prob=0.3, d=40,
                      magnitude_min=0.5, batch_size=512, seed=3)


def _relu_sae(W_enc_DF: torch.Tensor, W_dec_FD: torch.Tensor):
    sae = make_sae(sae_config("relu", d_in=W_dec_FD.shape[1], d_sae=W_dec_FD.shape[0], apply_b_dec_to_input=False))
    with torch.no_grad():
        sae.W_enc.copy_(W_enc_DF)
        sae.W_dec.copy_(W_dec_FD)
        sae.b_enc.zero_()
        sae.b_dec.zero_()
    return sae


def _absorbing_sae(source: HierarchySource):
    """Child latents write f_child + f_parent; the parent latent reads f_parent minus 20 × every child
    direction, so it fires only when its parent fires alone."""
    f_FD = source.features_FD
    W_dec_FD, W_enc_FD = f_FD.clone(), f_FD.clone()
    for p in source.parents:
        for c in source.children_of(p):
            W_dec_FD[c] += f_FD[p]
            W_enc_FD[p] -= 20 * f_FD[c]
    return _relu_sae(W_enc_FD.T, W_dec_FD)


def test_hierarchy_children_never_fire_without_their_parent():
    source = HierarchySource(CFG)
    _, coeffs_NT = source.batch_with_truth(0)
    for p in source.parents:
        child_fires_N = coeffs_NT[:, list(source.children_of(p))].gt(0)
        assert child_fires_N.sum(1).max() <= 1  # at most one child at a time
        assert bool((coeffs_NT[child_fires_N.any(1), p] > 0).all())
    assert torch.equal(source.batch(4), source.batch(4))
    torch.testing.assert_close(source.features_FD @ source.features_FD.T, torch.eye(CFG.n_features), atol=1e-5,
                               rtol=0)


def test_true_dictionary_scores_zero_absorption():
    source = HierarchySource(CFG)
    result = hierarchy_absorption(_relu_sae(source.features_FD.T, source.features_FD), source, range(3))
    assert result.n_events > 300
    assert result.absorption == 0.0 and result.miss_rate == 0.0
    assert torch.equal(result.parent_latent_P, torch.arange(CFG.n_parents))


def test_dictionary_built_to_absorb_scores_at_least_0_95():
    source = HierarchySource(CFG)
    result = hierarchy_absorption(_absorbing_sae(source), source, range(3))
    assert result.absorption >= 0.95
    assert result.miss_rate >= result.absorption
    assert torch.equal(result.parent_latent_P, torch.arange(CFG.n_parents))  # still found: it fires alone


def test_a_parent_latent_that_is_simply_lost_is_a_miss_not_absorption():
    source = HierarchySource(CFG)
    f_FD = source.features_FD.clone()
    W_enc_FD = f_FD.clone()
    for p in source.parents:  # parent latent silent on child events, but nobody writes f_parent either
        for c in source.children_of(p):
            W_enc_FD[p] -= 20 * f_FD[c]
    result = hierarchy_absorption(_relu_sae(W_enc_FD.T, f_FD), source, range(3))
    assert result.miss_rate == pytest.approx(1.0)
    assert result.absorption == 0.0
