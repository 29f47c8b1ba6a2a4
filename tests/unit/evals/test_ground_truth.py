"""MMCS and per-feature recovery against a direct cosine computation (scikit-learn)."""

from __future__ import annotations

import pytest
import torch
from sklearn.metrics.pairwise import cosine_similarity

from interplab.common import InterplabError
from interplab.evals import cosine_matrix, mmcs, per_feature_recovery


def test_permuted_rescaled_dictionary_recovers_every_feature_exactly():
    gen = torch.Generator().manual_seed(0)
    true_FD = torch.randn(20, 8, generator=gen)
    perm = torch.randperm(20, generator=gen)
    dec_LD = true_FD[perm] * torch.rand(20, 1, generator=gen).add(0.5)  # positive rescaling keeps direction
    rec = per_feature_recovery(true_FD, torch.cat([dec_LD, torch.randn(5, 8, generator=gen)]))
    assert rec.mmcs == pytest.approx(1.0, abs=1e-6)
    assert rec.frac_recovered == 1.0
    # feature i sits at the decoder row where perm put it
    assert torch.equal(rec.best_latent_F, torch.argsort(perm))


def test_mmcs_matches_sklearn_cosine_on_random_dictionary():
    gen = torch.Generator().manual_seed(1)
    true_FD, dec_LD = torch.randn(30, 16, generator=gen), torch.randn(50, 16, generator=gen)
    ref = cosine_similarity(true_FD.numpy(), dec_LD.numpy())
    torch.testing.assert_close(cosine_matrix(true_FD, dec_LD), torch.from_numpy(ref).float(), atol=1e-5, rtol=1e-5)
    assert mmcs(true_FD, dec_LD) == pytest.approx(float(ref.max(1).mean()), abs=1e-5)


def test_opposite_sign_latent_does_not_count_as_recovery():
    true_FD = torch.eye(4)
    rec = per_feature_recovery(true_FD, -torch.eye(4), threshold=0.9)
    assert rec.mmcs == pytest.approx(0.0, abs=1e-6)
    assert rec.frac_recovered == 0.0


def test_mismatched_width_names_the_decoder_layout():
    with pytest.raises(InterplabError, match="W_dec"):
        mmcs(torch.randn(4, 8), torch.randn(8, 4))
