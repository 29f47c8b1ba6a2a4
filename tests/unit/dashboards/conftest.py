"""Fixtures for the dashboards tests: a tiny gpt2 store (built once) and random SAEs saved to disk."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from torch_threads import one_torch_thread  # noqa: F401  (autouse fixture)


@pytest.fixture(scope="session")
def gpt2_store(tiny_model_dir, tmp_path_factory) -> tuple[Path, Path]:
    """(tiny gpt2 model folder, store of blocks.0.resid_post: 24 rows of 16 tokens in 3 shards, d=64)."""
    from interplab.activations import CacheConfig, cache_activations
    from interplab.data.corpus import load_demo_corpus
    from interplab.models.loading import load_model

    model_dir = tiny_model_dir("gpt2")
    lm = load_model(model_dir, device="cpu")
    store = tmp_path_factory.mktemp("dash") / "store"
    cache_activations(lm, load_demo_corpus()[:12], "blocks.0.resid_post", store,
                      CacheConfig(context_size=16, batch_size=8, shard_tokens=128, max_tokens=16 * 24))
    return model_dir, store


def make_random_sae(folder: Path, d_in: int, d_sae: int, x_norm: float, arch: str = "relu", seed: int = 0) -> Path:
    """Save a random SAE whose pre-activations have unit scale on inputs of norm `x_norm`; b_enc is
    shifted so about a third of the (latent, token) pairs fire."""
    from interplab.saes import make_sae, save_sae
    from sae_configs import config_for

    sae = make_sae(config_for(arch, d_in=d_in, d_sae=d_sae, k=8, seed=seed))
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        sae.W_enc.copy_(torch.randn(d_in, d_sae, generator=gen) / x_norm)
        sae.b_enc.fill_(-0.5)
    return save_sae(sae, folder)


@pytest.fixture()
def sae_factory():
    """`make_random_sae` as a fixture, for tests that need SAEs of other shapes."""
    return make_random_sae


@pytest.fixture()
def random_sae(tmp_path) -> Path:
    return make_random_sae(tmp_path / "sae", 64, 48, x_norm=0.25)
