"""Shuffled streaming batches: each real token once per epoch, seeded order, bounded memory, exact resume."""

from __future__ import annotations

import itertools

import pytest
import torch

from interplab.activations.buffer import ActivationBuffer, BufferConfig
from interplab.activations.store import ActivationStore, StoreHeader, StoreWriter
from interplab.common import InterplabError

CTX, N_SEQ, PER_SHARD = 8, 30, 4  # 8 shards of 32 positions (the last holds 2 sequences)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> ActivationStore:
    """A store whose activation rows are [token id, sequence, position]: every real token is identifiable."""
    header = StoreHeader(
        model="toy",
        hook="h",
        d=3,
        dtype="float32",
        context_size=CTX,
        n_seq=N_SEQ,
        seqs_per_shard=PER_SHARD,
        tokens_sha256="x",
    )
    ids = torch.arange(N_SEQ * CTX).view(N_SEQ, CTX)
    mask = torch.rand(N_SEQ, CTX, generator=torch.Generator().manual_seed(0)) > 0.2  # ~20% padding
    seq, pos = torch.meshgrid(torch.arange(N_SEQ), torch.arange(CTX), indexing="ij")
    acts = torch.stack([ids, seq, pos], dim=-1).float()
    writer = StoreWriter.start(tmp_path_factory.mktemp("buf") / "store", header)
    for i in writer.pending_shards():
        a, b = header.shard_range(i)
        writer.write_shard(i, ids[a:b], acts[a:b], mask[a:b])
    return writer.finish()


def ids_of(batches) -> list[int]:
    return [int(v) for b in batches for v in b[:, 0]]


def valid_ids(store: ActivationStore) -> list[int]:
    return store.token_ids()[store.masks()].tolist()


def test_every_valid_token_appears_exactly_once_per_epoch(store):
    cfg = BufferConfig(batch_size=16, buffer_tokens=60, seed=3, drop_last=False, epochs=2)
    batches = list(ActivationBuffer(store, cfg))
    seen = ids_of(batches)
    n = store.n_tokens
    assert len(seen) == 2 * n
    assert sorted(seen[:n]) == sorted(valid_ids(store)) == sorted(seen[n:])
    assert seen[:n] != seen[n:]  # each epoch draws a new order
    assert all(b.shape == (16, 3) for b in batches if len(b) == 16)


def test_order_depends_on_the_seed_only(store):
    def order(seed: int) -> list[int]:
        return ids_of(ActivationBuffer(store, BufferConfig(batch_size=10, buffer_tokens=80, seed=seed)))

    assert order(1) == order(1)
    assert order(1) != order(2)
    assert order(1) != sorted(order(1))


def test_drop_last_drops_only_the_final_partial_batch(store):
    batches = list(store.batches(batch_size=32, seed=0))
    assert len(batches) == store.n_tokens // 32
    assert all(b.shape == (32, 3) for b in batches)
    assert len(set(ids_of(batches))) == len(batches) * 32


def test_unshuffled_batches_follow_store_order(store):
    batches = list(store.batches(batch_size=7, shuffle=False, drop_last=False))
    torch.testing.assert_close(torch.cat(batches), store.valid_activations(), rtol=0, atol=0)


def test_windows_bound_the_memory_and_mix_several_shards(store):
    cfg = BufferConfig(batch_size=8, buffer_tokens=60, seed=0)
    buf = ActivationBuffer(store, cfg)
    windows = buf.epoch_order(0)
    per_shard = [s.n_tokens for s in store.manifest.shards]
    assert sorted(i for w in windows for i in w) == list(range(store.n_shards))
    assert all(sum(per_shard[i] for i in w) <= cfg.buffer_tokens or len(w) == 1 for w in windows)
    first = next(iter(buf))
    sequences = {int(s) // PER_SHARD for s in first[:, 1]}
    assert len(sequences) > 1  # one batch already draws from more than one shard


@pytest.mark.parametrize("stop_after", [0, 3, 11, 30])
def test_resume_mid_stream_gives_the_same_continuation(store, stop_after):
    cfg = BufferConfig(batch_size=12, buffer_tokens=50, seed=5, drop_last=True, epochs=2)
    full = list(ActivationBuffer(store, cfg))
    first = ActivationBuffer(store, cfg)
    head = list(itertools.islice(iter(first), stop_after))
    state = first.state_dict()
    resumed = ActivationBuffer(store, cfg)
    resumed.load_state_dict(state)
    rest = list(resumed)
    assert len(head) + len(rest) == len(full)
    for got, want in zip(head + rest, full, strict=True):
        assert torch.equal(got, want)


def test_state_from_other_settings_is_refused(store):
    state = ActivationBuffer(store, BufferConfig(batch_size=12, seed=1)).state_dict()
    with pytest.raises(InterplabError, match="seed=1 but this buffer has 2"):
        ActivationBuffer(store, BufferConfig(batch_size=12, seed=2)).load_state_dict(state)


def test_endless_stream_and_dtype_cast(store):
    cfg = BufferConfig(batch_size=64, epochs=None, dtype=torch.bfloat16)
    batches = list(itertools.islice(iter(ActivationBuffer(store, cfg)), 20))  # more than one epoch's worth
    assert len(batches) == 20 and batches[0].dtype == torch.bfloat16


def test_store_smaller_than_a_batch_is_refused(store):
    with pytest.raises(InterplabError, match="fewer than one batch"):
        next(store.batches(batch_size=10_000))
