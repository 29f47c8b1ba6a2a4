"""Latent examples from an activation store: negatives are windows where the latent is truly silent,
excluded and skipped positions never count, and latents are sampled among those that fire enough."""

from __future__ import annotations

import pytest
import torch

from interplab.activations.store import StoreHeader, StoreWriter
from interplab.autointerp import ExampleConfig, StoreExampleConfig, examples_from_store
from interplab.common import InterplabError

N_SEQ, CTX, D = 40, 20, 3
MARK = 7  # latent 0 fires exactly where token MARK sits; latent 1 fires everywhere; latent 2 never


def _store(folder, tokens):
    acts = torch.zeros(N_SEQ, CTX, D)
    acts[..., 0] = (tokens == MARK).float() * 2.0
    acts[..., 1] = 1.0
    header = StoreHeader(model="toy", hook="blocks.0.resid_post", d=D, dtype="float32", context_size=CTX,
                         n_seq=N_SEQ, seqs_per_shard=16, tokens_sha256="t", dataset="unit test", tokenizer="toy")
    writer = StoreWriter.start(folder, header)
    mask = torch.ones(N_SEQ, CTX, dtype=torch.bool)
    for i in writer.pending_shards():
        a, b = header.shard_range(i)
        writer.write_shard(i, tokens[a:b], acts[a:b], mask[a:b])
    writer.finish()
    return folder


@pytest.fixture
def store(tmp_path):
    gen = torch.Generator().manual_seed(0)
    tokens = torch.randint(10, 50, (N_SEQ, CTX), generator=gen)
    tokens[::2, 12] = MARK  # every other sequence holds the mark once, inside the window
    tokens[:, 1] = MARK  # and every sequence holds it in the skipped leading positions
    return _store(tmp_path / "store", tokens)


def _cfg(**changes):
    return StoreExampleConfig(examples=ExampleConfig(context=8, n_top=4, n_per_quantile=1, n_random=6), skip_first=4,
                              min_windows=5, **changes)


def test_negatives_are_silent_windows_and_positives_hold_the_firing_token(store):
    ex = examples_from_store(store, torch.relu, lambda t: f" t{t}", _cfg(), features=[0])[0]
    positives = ex.top + ex.quantile
    assert positives and all(" t7" in e.tokens and e.max_act == 2.0 for e in positives)
    assert len(ex.random) == 6
    assert all(" t7" not in e.tokens and e.max_act == 0 for e in ex.random)


def test_latents_are_sampled_among_those_that_fire_and_stay_silent_often_enough(store):
    chosen = examples_from_store(store, torch.relu, str, _cfg(), n_latents=3)
    assert list(chosen) == [0]  # 1 is never silent, 2 never fires


def test_a_store_too_short_for_the_windows_is_a_one_line_error(store):
    cfg = StoreExampleConfig(examples=ExampleConfig(context=32), skip_first=4)
    with pytest.raises(InterplabError, match="too short"):
        examples_from_store(store, torch.relu, str, cfg, features=[0])
