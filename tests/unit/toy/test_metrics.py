"""Metrics on hand-built geometries whose answers the paper states exactly."""

import math

import pytest
import torch

from interplab.toy import metrics


def _polygon(k: int) -> torch.Tensor:
    """k unit vectors evenly spaced on the circle, as W [1, 2, k]."""
    ang = torch.arange(k) * 2 * math.pi / k
    return torch.stack([ang.cos(), ang.sin()])[None]


def test_orthogonal_features_have_dimension_one_and_no_superposition():
    W = torch.eye(3)[None]  # m = n = 3, each feature its own axis
    assert torch.allclose(metrics.feature_norms(W), torch.ones(1, 3))
    assert torch.allclose(metrics.superposition(W), torch.zeros(1, 3), atol=1e-6)
    assert torch.allclose(metrics.dimensionality(W), torch.ones(1, 3))
    assert torch.allclose(metrics.dims_per_feature(W), torch.ones(1))


def test_antipodal_pair_has_dimension_one_half():
    W = torch.tensor([[[1.0, -1.0]]])  # m = 1, n = 2
    assert torch.allclose(metrics.superposition(W), torch.ones(1, 2))
    assert torch.allclose(metrics.dimensionality(W), torch.full((1, 2), 0.5))
    assert torch.allclose(metrics.dims_per_feature(W), torch.tensor([0.5]))


@pytest.mark.parametrize(("k", "expected"), [(3, 2 / 3), (4, 1 / 2), (5, 2 / 5)])
def test_regular_polygons_have_the_papers_fractions(k, expected):
    W = _polygon(k)
    assert torch.allclose(metrics.dimensionality(W), torch.full((1, k), expected), atol=1e-5)
    assert torch.allclose(metrics.dims_per_feature(W), torch.tensor([expected]), atol=1e-5)


def test_unlearned_feature_gets_dimension_zero_and_does_not_disturb_the_others():
    W = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])  # feature 2 has zero norm
    assert torch.allclose(metrics.dimensionality(W), torch.tensor([[1.0, 1.0, 0.0]]))
    assert torch.allclose(metrics.superposition(W)[0, :2], torch.zeros(2), atol=1e-6)
    assert torch.allclose(metrics.dims_per_feature(W), torch.tensor([1.0]))


def test_superposition_scales_with_the_other_features_norm():
    # Feature 1 at 60 degrees from feature 0 with norm 2: (Ŵ_0 · W_1)² = (2 cos 60°)² = 1.
    W = torch.tensor([[[1.0, 2 * math.cos(math.pi / 3)], [0.0, 2 * math.sin(math.pi / 3)]]])
    assert metrics.superposition(W)[0, 0].item() == pytest.approx(1.0, abs=1e-5)
    assert metrics.superposition(W)[0, 1].item() == pytest.approx(0.25, abs=1e-5)


def test_the_package_exports_the_superposition_function_not_the_module() -> None:
    from interplab.toy import superposition as exported
    from interplab.toy.metrics import superposition as metric

    assert exported is metric
