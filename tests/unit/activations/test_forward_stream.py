"""ForwardStream: batches straight from forward passes hold the tokens a store would keep, at every hook."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from interplab.activations import ActivationStore, CacheConfig, cache_activations
from interplab.activations.stream import ForwardStream, StreamConfig
from interplab.data.corpus import load_demo_corpus
from interplab.models.loading import load_model

HOOKS = ["blocks.0.resid_post", "blocks.1.resid_post"]


@pytest.fixture(scope="module")
def llama(tiny_model_dir):
    return load_model(tiny_model_dir("llama"), device="cpu")


def _rows(t: torch.Tensor) -> torch.Tensor:
    """Rows in a canonical order (lexicographic by their values), to compare multisets of tokens."""
    order = torch.from_numpy(np.lexsort(t.T.flip(0).numpy()))
    return t[order]


def test_one_epoch_streams_exactly_the_tokens_a_store_keeps_at_each_hook(llama, tmp_path):
    texts = load_demo_corpus()[:10]
    cfg = StreamConfig(batch_size=1, context_size=16, window_seqs=1000, forward_batch=4, epochs=1, normalize=False)
    stream = ForwardStream(llama, texts, HOOKS, cfg=cfg)
    x_NMD = torch.cat(list(stream))
    assert x_NMD.shape[1:] == (2, llama.d_model)
    for m, hook in enumerate(HOOKS):
        store = cache_activations(llama, texts, hook, tmp_path / str(m),
                                  CacheConfig(context_size=16, batch_size=4, shard_tokens=10_000))
        kept = ActivationStore.open(store.folder).valid_activations()
        assert store.n_excluded > 0  # the sinks: first positions and special tokens
        torch.testing.assert_close(_rows(x_NMD[:, m]), _rows(kept.float()), rtol=1e-5, atol=1e-5)


def test_sinks_stay_in_when_asked(llama):
    texts = load_demo_corpus()[:6]
    with_sinks = StreamConfig(batch_size=1, context_size=16, window_seqs=1000, epochs=1, exclude_sinks=False)
    without = StreamConfig(batch_size=1, context_size=16, window_seqs=1000, epochs=1)
    n_all = len(list(ForwardStream(llama, texts, HOOKS[:1], cfg=with_sinks)))
    n_kept = len(list(ForwardStream(llama, texts, HOOKS[:1], cfg=without)))
    assert n_all == int(ForwardStream(llama, texts, HOOKS[:1], cfg=with_sinks).packed.attention_mask.sum())
    assert n_kept < n_all


def test_a_stream_resumed_from_its_state_yields_the_batches_an_uninterrupted_one_does(llama):
    texts = load_demo_corpus()[:12]
    cfg = StreamConfig(batch_size=32, context_size=16, window_seqs=6, forward_batch=3, epochs=2, seed=3)
    full = list(ForwardStream(llama, texts, HOOKS, cfg=cfg))
    first = ForwardStream(llama, texts, HOOKS, cfg=cfg)
    it = iter(first)
    for _ in range(5):
        next(it)
    resumed = ForwardStream(llama, texts, HOOKS, cfg=cfg)
    resumed.load_state_dict(first.state_dict())
    rest = list(resumed)
    assert len(full) > 6 and len(rest) == len(full) - 5
    for a, b in zip(full[5:], rest, strict=True):
        assert torch.equal(a, b)
