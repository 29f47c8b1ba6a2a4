"""The synthetic ground-truth generator: marginals, correlations, determinism, resumable position."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from interplab.common import InterplabError
from interplab.data.synthetic import ToyFeatureConfig, ToyFeatureSource, firing_probabilities


def test_probabilities_decay_geometrically_and_sum_to_mean_active():
    p = firing_probabilities(100, mean_active=4.0, decay_ratio=0.1)
    assert float(p.sum()) == pytest.approx(4.0)
    assert float(p[-1] / p[0]) == pytest.approx(0.1)
    ratios = (p[1:] / p[:-1]).numpy()
    np.testing.assert_allclose(ratios, ratios[0], rtol=1e-9)  # constant ratio = geometric


@pytest.mark.parametrize("correlation", [0.0, 0.6])
def test_empirical_firing_rates_match_the_marginals(correlation):
    src = ToyFeatureSource(ToyFeatureConfig(n_features=16, d=8, mean_active=2, batch_size=4096,
                                            correlation=correlation, n_factors=4))
    fires = torch.cat([src.batch_with_truth(i)[1] for i in range(10)]) > 0
    rate = fires.float().mean(0)
    n = fires.shape[0]
    se = (src.probs_F * (1 - src.probs_F) / n).sqrt()
    assert torch.all((rate - src.probs_F).abs() < 5 * se)  # rows are independent draws, copula or not


def test_copula_correlation_makes_features_fire_together():
    def mean_abs_corr(c: float) -> float:
        src = ToyFeatureSource(ToyFeatureConfig(n_features=16, d=8, mean_active=4, batch_size=8192,
                                                correlation=c, n_factors=4, seed=2))
        fires = (src.batch_with_truth(0)[1] > 0).double().numpy()
        corr = np.corrcoef(fires.T)
        return float(np.abs(corr[~np.eye(16, dtype=bool)]).mean())

    assert mean_abs_corr(0.0) < 0.03 < 0.1 < mean_abs_corr(0.7)


def test_activations_are_the_coefficient_weighted_sum_of_unit_directions():
    src = ToyFeatureSource(ToyFeatureConfig(n_features=20, d=10, mean_active=3, batch_size=64, magnitude_min=0.2))
    x_BD, c_BF = src.batch_with_truth(3)
    torch.testing.assert_close(src.features_FD.norm(dim=-1), torch.ones(20))
    torch.testing.assert_close(x_BD, c_BF @ src.features_FD)
    nz = c_BF[c_BF > 0]
    assert float(nz.min()) >= 0.2 and float(nz.max()) <= 1.0


def test_stream_is_deterministic_and_resumes_from_its_state_dict():
    cfg = ToyFeatureConfig(n_features=20, d=10, mean_active=3, batch_size=32, seed=7)
    a = ToyFeatureSource(cfg)
    first = [next(a) for _ in range(5)]
    state = a.state_dict()
    rest = [next(a) for _ in range(3)]
    b = ToyFeatureSource(cfg)
    b.load_state_dict(state)
    assert all(torch.equal(x, y) for x, y in zip(rest, [next(b) for _ in range(3)], strict=True))
    assert torch.equal(first[0], ToyFeatureSource(cfg).batch(0))
    assert not torch.equal(first[0], first[1])
    other = ToyFeatureSource(ToyFeatureConfig(**{**cfg.to_dict(), "seed": 8}))
    with pytest.raises(InterplabError, match="different synthetic stream"):
        other.load_state_dict(state)


@pytest.mark.parametrize("bad", [dict(decay_ratio=0.0), dict(correlation=1.0), dict(mean_active=0),
                                 dict(n_features=4, mean_active=3.9, decay_ratio=0.01)])
def test_bad_settings_are_rejected_with_the_field_named(bad):
    with pytest.raises(InterplabError):
        ToyFeatureSource(ToyFeatureConfig(**{"n_features": 16, "d": 8, "mean_active": 2, **bad}))
