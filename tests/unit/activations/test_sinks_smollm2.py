"""Attention sinks on the real SmolLM2-135M (Llama): the first position's residual is ~100x the others',
the default store leaves it out, and with exclusion off the cache-time check warns with the numbers."""

from __future__ import annotations

import pytest
import torch

from interplab.activations import CacheConfig, cache_activations
from interplab.data.corpus import load_demo_corpus

HOOK = "blocks.15.resid_post"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smol(request):
    """The shared session fixture `smollm2` (tests/conftest.py), which skips when the model is not installed."""
    try:
        return request.getfixturevalue("smollm2")
    except pytest.FixtureLookupError:
        pytest.skip("this checkout has no smollm2 fixture")


def cached(smol, tmp_path, **cfg):
    return cache_activations(smol, load_demo_corpus()[:80], HOOK, tmp_path,
                             CacheConfig(context_size=64, batch_size=8, max_tokens=64 * 16, **cfg))


def test_first_position_is_a_sink_that_the_default_store_leaves_out(smol, tmp_path):
    store = cached(smol, tmp_path / "s")
    acts = torch.cat([s.acts for s in store.iter_shards()]).float()
    keep = store.keep_masks()
    norms = acts.norm(dim=-1)
    assert float(norms[:, 0].median()) > 10_000 and 100 < float(norms[keep].median()) < 300  # ~23,600 vs ~175
    assert not keep[:, 0].any() and store.exclusion.first_positions == 1
    check = store.manifest.extra["variance_check"]
    assert check["excluded_share"] > 0.95 and not check["dominated"]


def test_without_exclusion_the_cache_warns_that_position_0_carries_the_variance(smol, tmp_path, records):
    store = cached(smol, tmp_path / "s", exclude_sinks=False)
    assert store.exclusion.is_empty and store.n_excluded == 0
    check = store.manifest.extra["variance_check"]
    assert check["dominated"] and check["few_positions"]["0"] > 0.9 and check["top_share"] > 0.9
    warnings = [r.getMessage() for r in records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "position 0" in warnings[0] and "--exclude-sinks" in warnings[0]
