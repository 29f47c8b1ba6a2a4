"""The paper's results, reproduced on CPU with seeded, shortened training (Elhage et al. 2022).

Each test trains all its conditions as one batch of instances and asserts on the geometry of W.
"""

import math

import pytest
import torch

from interplab.toy import metrics
from interplab.toy.experiments import (
    DimensionalityConfig,
    IntroConfig,
    SweepConfig,
    run_dimensionality,
    run_intro,
    run_sweep,
)
from interplab.toy.phase import DEDICATED, NOT_LEARNED, SUPERPOSITION, PhaseConfig, run_phase_diagram
from interplab.toy.superposition import ToyConfig


def _angles_deg(W_MN: torch.Tensor) -> torch.Tensor:
    return torch.rad2deg(torch.atan2(W_MN[1], W_MN[0]))


@pytest.fixture(scope="module")
def intro():
    cfg = IntroConfig(
        sparsities=(0.0, 0.95),
        train=ToyConfig(n_features=5, n_hidden=2, steps=4000, lr=1e-2, restarts=3, seed=0),
    )
    return run_intro(cfg)


def test_dense_n5_m2_keeps_the_two_most_important_features_on_orthogonal_axes(intro):
    W_MN = intro.fit.W_IMN[0]
    norms_N = W_MN.norm(dim=0)
    assert torch.allclose(norms_N[:2], torch.ones(2), atol=0.05), norms_N
    assert (norms_N[2:] < 0.1).all(), norms_N
    cos = (W_MN[:, 0] @ W_MN[:, 1]) / (norms_N[0] * norms_N[1])
    assert abs(cos.item()) < 0.05


def test_sparse_n5_m2_represents_all_five_features_as_a_pentagon(intro):
    W_MN = intro.fit.W_IMN[1]  # 1 - S = 0.05
    norms_N = W_MN.norm(dim=0)
    assert ((norms_N > 0.9) & (norms_N < 1.3)).all(), norms_N
    ang = torch.sort(_angles_deg(W_MN)).values
    gaps = torch.cat([ang.diff(), (ang[:1] + 360) - ang[-1:]])
    assert torch.allclose(gaps, torch.full((5,), 72.0), atol=6.0), gaps
    assert torch.allclose(metrics.dimensionality(intro.fit.W_IMN)[1], torch.full((5,), 0.4), atol=0.05)


@pytest.fixture(scope="module")
def sweep():
    cfg = SweepConfig(
        sparsities=(0.0, 0.7, 0.9, 0.99),
        train=ToyConfig(n_features=20, n_hidden=5, steps=2000, batch_size=512, lr=1e-2, restarts=1),
    )
    return run_sweep(cfg)


def test_linear_n20_m5_learns_only_the_top_m_features_at_every_sparsity(sweep):
    norms_KN = metrics.feature_norms(sweep.linear.fit.W_IMN)
    assert torch.allclose(norms_KN[:, :5], torch.ones(4, 5), atol=0.05), norms_KN
    assert (norms_KN[:, 5:] < 0.1).all(), norms_KN
    assert (metrics.superposition(sweep.linear.fit.W_IMN)[:, :5] < 0.05).all()


def test_relu_n20_m5_adds_superposition_as_sparsity_rises_least_important_first(sweep):
    W_KMN = sweep.relu.fit.W_IMN
    norms_KN, sup_KN = metrics.feature_norms(W_KMN), metrics.superposition(W_KMN)
    represented_KN = norms_KN > 0.5
    counts = represented_KN.sum(1).tolist()
    assert counts[0] == 5 and represented_KN[0, :5].all(), counts  # dense: same as linear
    assert all(a <= b for a, b in zip(counts, counts[1:], strict=False)) and counts[-1] >= 9, counts
    superposed_KN = represented_KN & (sup_KN > 0.5)
    n_superposed = superposed_KN.sum(1).tolist()
    assert n_superposed[0] == 0 and all(a <= b for a, b in zip(n_superposed, n_superposed[1:], strict=False))
    # Where superposition first appears (1-S = 0.3), it takes the least important represented features:
    # a head of important features keeps dedicated dimensions.
    dedicated = [i for i in range(20) if represented_KN[1, i] and sup_KN[1, i] < 0.1]
    superposed = superposed_KN[1].nonzero().flatten().tolist()
    assert dedicated and superposed and max(dedicated) < min(superposed), (dedicated, superposed)


def test_n2_m1_phase_diagram_has_the_three_phases_in_their_regions():
    cfg = PhaseConfig(
        n_density=3,
        min_density=0.01,
        n_importance=3,
        max_ratio=10.0,
        train=ToyConfig(n_features=2, n_hidden=1, steps=2000, batch_size=512, lr=1e-2, restarts=4),
    )
    diag = run_phase_diagram(cfg)  # rows: ratio 0.1, 1, 10; columns: density 0.01, 0.1, 1
    assert torch.allclose(diag.density_D, torch.tensor([0.01, 0.1, 1.0]))
    assert diag.phase_RD[0, 2] == NOT_LEARNED  # dense, feature 2 less important: dimension goes to feature 1
    assert diag.phase_RD[2, 2] == DEDICATED  # dense, feature 2 more important: it takes the dimension
    for r, d in ((1, 0), (1, 1)):  # sparse, equal importance: both share the dimension
        assert diag.phase_RD[r, d] == SUPERPOSITION
    # Superposition here is antipodal with equal norms: W_1 ≈ -W_2.
    w = diag.W_RDN[diag.phase_RD == SUPERPOSITION]
    assert (w[:, 0] * w[:, 1] < 0).all() and torch.allclose(w[:, 0].abs(), w[:, 1].abs(), atol=0.15), w


def test_uniform_n200_m20_dims_per_feature_sticks_near_one_half():
    cfg = DimensionalityConfig(
        inverse_density=(2.4, 2.75, 3.15),
        train=ToyConfig(n_features=200, n_hidden=20, steps=1500, batch_size=256, lr=1e-2, eval_samples=2048),
    )
    dstar = metrics.dims_per_feature(run_dimensionality(cfg).fit.W_IMN)
    assert torch.allclose(dstar, torch.full((3,), 0.5), atol=0.03), dstar


@pytest.mark.slow
def test_uniform_n200_m20_full_sweep_has_a_plateau_at_one_half():
    run = run_dimensionality(DimensionalityConfig())
    inv = (1 / (1 - run.sparsity_K)).tolist()
    dstar = metrics.dims_per_feature(run.fit.W_IMN).tolist()
    assert dstar[0] == pytest.approx(1.0, abs=0.05)  # dense: m features' worth of norm
    near_half = [x for x, d in zip(inv, dstar, strict=True) if abs(d - 0.5) < 0.03]
    # The paper's plateau: several consecutive sparsities, spanning a good fraction of an octave, at 1/2.
    assert len(near_half) >= 3 and max(near_half) / min(near_half) >= 1.3, list(zip(inv, dstar, strict=True))
    assert dstar[-1] < 0.3 and not math.isnan(dstar[-1])
