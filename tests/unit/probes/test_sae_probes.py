"""SAE-latent probes: per-latent fits agree with scikit-learn; a planted latent ranks first."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

import interplab.saes.topk  # noqa: F401  (registers the "topk" architecture)
from interplab.common import InterplabError
from interplab.probes.linear import LinearProbeConfig, stratified_folds
from interplab.probes.sae_probes import (
    encode_latents,
    fit_single_latents,
    k_sparse_sweep,
    rank_latents,
    select_latents,
    train_sparse_probe,
)
from interplab.saes import TopKConfig
from interplab.saes.registry import make_sae

PLANTED = 5


def planted_sae_data(n=300, d=16, seed=0):
    """Activations with a class direction u, and a real TopK SAE whose latent 5 reads u."""
    gen = torch.Generator().manual_seed(seed)
    u_D = torch.randn(d, generator=gen)
    u_D /= u_D.norm()
    y = torch.arange(n) % 2
    X = torch.randn(n, d, generator=gen) + 2.0 * y[:, None] * u_D
    sae = make_sae(TopKConfig(d_in=d, d_sae=64, k=8, seed=seed))
    with torch.no_grad():
        sae.W_enc[:, PLANTED] = 3.0 * u_D
    return encode_latents(sae, X), y, sae, X


def test_single_latent_fits_match_sklearn_per_column():
    Z, y, _, _ = planted_sae_data()
    fit = fit_single_latents(Z, y, C=0.3)
    for f in [PLANTED, 0, 17]:
        col = StandardScaler().fit_transform(Z[:, f : f + 1].double().numpy())
        if col.std() == 0:
            continue
        ref = LogisticRegression(C=0.3, tol=1e-12, max_iter=10_000).fit(col, y.numpy())
        assert fit.scale_F[f].item() == pytest.approx(ref.coef_[0, 0], rel=1e-5, abs=1e-7)
        assert fit.bias_F[f].item() == pytest.approx(ref.intercept_[0], rel=1e-5, abs=1e-7)


def test_planted_latent_ranks_first_with_sklearn_cv_accuracy():
    Z, y, _, _ = planted_sae_data()
    ranking = rank_latents(Z, y, n_folds=5, seed=0)
    assert ranking.latents[0] == PLANTED
    correct = 0
    for fold in stratified_folds(y, 5, seed=0):
        train = np.setdiff1d(np.arange(len(y)), fold.numpy())
        scaler = StandardScaler().fit(Z[train, PLANTED : PLANTED + 1].double().numpy())
        clf = LogisticRegression(C=1.0, tol=1e-12).fit(
            scaler.transform(Z[train, PLANTED : PLANTED + 1].double()), y[train]
        )
        correct += (
            clf.predict(scaler.transform(Z[fold, PLANTED : PLANTED + 1].double())) == y[fold].numpy()
        ).sum()
    assert ranking.cv_accuracy_F[PLANTED].item() == pytest.approx(correct / len(y))
    assert ranking.mean_diff_F[PLANTED] > 0


def test_k_sparse_probe_matches_sklearn_on_selected_latents_and_improves_with_k():
    Z, y, _, _ = planted_sae_data(n=400)
    assert select_latents(Z, y, 1) == [PLANTED] and select_latents(Z, y, 1, selection="cv") == [PLANTED]
    sparse = train_sparse_probe(Z[:300], y[:300], k=5, cfg=LinearProbeConfig(C=0.5, tol=1e-9, device="cpu"))
    cols = Z[:300, sparse.latents].double().numpy()
    ref = LogisticRegression(C=0.5, tol=1e-12, max_iter=10_000).fit(
        StandardScaler().fit_transform(cols), y[:300]
    )
    np.testing.assert_allclose(sparse.probe.weight_D.numpy(), ref.coef_[0], rtol=1e-4, atol=1e-6)
    sweep = dict(k_sparse_sweep(Z[:300], y[:300], Z[300:], y[300:], ks=(1, 5, 64, 1000)))
    assert sorted(sweep) == [1, 5, 64]  # k above the SAE width is skipped
    assert sweep[1].accuracy > 0.75 and sweep[1].n == 100
    torch.testing.assert_close(sparse.latent_weights, sparse.probe.weight_D / sparse.probe.std_D)


def test_bad_k_and_selection_are_clear_errors():
    Z, y, _, _ = planted_sae_data(n=40)
    with pytest.raises(InterplabError, match="k must be"):
        select_latents(Z, y, 0)
    with pytest.raises(InterplabError, match="selection"):
        select_latents(Z, y, 2, selection="magic")
