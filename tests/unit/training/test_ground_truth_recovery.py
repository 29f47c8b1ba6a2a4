"""Sharkey et al. (2022) recipe on a small instance: TopK and ReLU SAEs recover the true features."""

from __future__ import annotations

import pytest
import torch

from interplab.data.synthetic import ToyFeatureConfig, ToyFeatureSource
from interplab.evals import per_feature_recovery
from interplab.saes import make_sae, sae_config
from interplab.training import TrainConfig, fit

TOY = ToyFeatureConfig(n_features=64, d=32, mean_active=3, decay_ratio=0.1, batch_size=256, seed=0)


@pytest.mark.parametrize(
    "sae_cfg",
    [
        # k a little above the mean number of active features
        sae_config("topk", d_in=32, d_sae=128, k=3),
        sae_config("relu", d_in=32, d_sae=128, l1_coeff=0.3),
    ],
    ids=["topk", "relu"],
)
def test_sae_recovers_ground_truth_directions(sae_cfg):
    source = ToyFeatureSource(TOY)
    sae = make_sae(sae_cfg)
    # AuxK revives latents dead for 80 steps
    fit(sae, source, TrainConfig(total_steps=500, lr=3e-3, log_every=100, dead_after_tokens=20_000))
    rec = per_feature_recovery(source.features_FD, sae.W_dec)
    assert rec.mmcs >= 0.95, f"MMCS {rec.mmcs:.3f}"
    # a random dictionary of the same size is far below: the score measures learning, not luck
    random_dec = torch.randn(sae_cfg.d_sae, sae_cfg.d_in, generator=torch.Generator().manual_seed(0))
    assert per_feature_recovery(source.features_FD, random_dec).mmcs < 0.7
