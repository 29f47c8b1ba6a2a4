"""Shuffled streaming batches of token activations from an `ActivationStore`, resumable exactly.

Shuffle by windows of shards (memory bounded by the buffer size, not the store size):
  1. Each epoch draws a random shard order from (seed, epoch).
  2. Consecutive shards in that order are grouped into windows holding about `buffer_tokens` kept tokens
     (real tokens the store's exclusion rule keeps: no padding, no attention sinks).
  3. A window is loaded, its kept tokens' activations are permuted by a generator seeded from
     (seed, epoch, window), and the permuted rows are cut into [B, d] batches (a batch may span windows).
Every kept token appears exactly once per epoch, and the order depends only on (seed, epoch). Because the
order is a function of indices, `state_dict()` is just (epoch, tokens consumed); `load_state_dict` jumps
straight to that position without replaying earlier batches.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from interplab.common import InterplabError

if TYPE_CHECKING:
    from interplab.activations.store import ActivationStore

# Large odd constants to spread (seed, epoch, window) into distinct generator seeds.
_EPOCH_MIX = 1_000_003
_WINDOW_MIX = 7_919


@dataclass
class BufferConfig:
    """How batches are drawn from a store."""

    batch_size: int = 4096
    """Token activations per batch."""
    buffer_tokens: int = 262_144
    """About how many kept tokens are held and mixed at once (at least one shard is always loaded)."""
    shuffle: bool = True
    """False yields tokens in store order (for evaluation)."""
    seed: int = 0
    """Seed of the shard order and of the permutation within each window."""
    drop_last: bool = True
    """Drop an epoch's final batch when it has fewer than batch_size rows."""
    epochs: int | None = 1
    """Epochs to yield; None streams forever (the trainer decides when to stop)."""
    dtype: torch.dtype | None = None
    """Cast batches to this dtype (None keeps the stored dtype)."""
    device: str | torch.device | None = None
    """Move batches to this device (None keeps them on CPU)."""
    verify: bool = True
    """Check each shard's sha256 when it is read."""


class ActivationBuffer:
    """Iterable of [B, d] activation batches; see the module docstring for the order."""

    def __init__(self, store: ActivationStore, cfg: BufferConfig | None = None):
        self.store = store
        self.cfg = cfg or BufferConfig()
        if self.cfg.batch_size < 1 or self.cfg.buffer_tokens < 1:
            raise InterplabError("batch_size and buffer_tokens must be positive")
        self._valid_per_shard = [s.n_kept for s in store.manifest.shards]
        self.epoch = 0
        self.position = 0  # kept tokens of the current epoch already handed out

    def state_dict(self) -> dict[str, Any]:
        """Where the stream is: restoring it into a fresh buffer continues with the very next batch."""
        return {
            "epoch": self.epoch,
            "position": self.position,
            "seed": self.cfg.seed,
            "batch_size": self.cfg.batch_size,
            "buffer_tokens": self.cfg.buffer_tokens,
            "shuffle": self.cfg.shuffle,
            "n_tokens": self.store.n_tokens,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in ("seed", "batch_size", "buffer_tokens", "shuffle", "n_tokens"):
            mine = self.state_dict()[key]
            if state.get(key) != mine:
                raise InterplabError(
                    f"buffer state has {key}={state.get(key)!r} but this buffer has {mine!r}; "
                    "resume with the same store and buffer settings"
                )
        self.epoch, self.position = int(state["epoch"]), int(state["position"])

    def epoch_order(self, epoch: int) -> list[list[int]]:
        """The windows (lists of shard indices) of `epoch`, in reading order."""
        n = self.store.n_shards
        if self.cfg.shuffle:
            gen = torch.Generator().manual_seed(self.cfg.seed * _EPOCH_MIX + epoch)
            order = torch.randperm(n, generator=gen).tolist()
        else:
            order = list(range(n))
        windows: list[list[int]] = [[]]
        held = 0
        for index in order:
            if windows[-1] and held + self._valid_per_shard[index] > self.cfg.buffer_tokens:
                windows.append([])
                held = 0
            windows[-1].append(index)
            held += self._valid_per_shard[index]
        return windows

    def _window_rows(self, epoch: int, w: int, shards: list[int]) -> Tensor:
        """[n_valid, d] activations of one window's kept tokens, permuted when shuffling."""
        parts = []
        for index in shards:
            shard = self.store.load_shard(index, verify=self.cfg.verify)
            parts.append(shard.acts[shard.keep])
        rows_ND = torch.cat(parts)
        if not self.cfg.shuffle:
            return rows_ND
        gen = torch.Generator().manual_seed((self.cfg.seed * _EPOCH_MIX + epoch) * _WINDOW_MIX + w)
        return rows_ND[torch.randperm(len(rows_ND), generator=gen)]

    def _epoch_rows(self, epoch: int, start: int) -> Iterator[Tensor]:
        """Row blocks of `epoch` from kept-token offset `start` on (earlier windows are not loaded)."""
        offset = 0
        for w, shards in enumerate(self.epoch_order(epoch)):
            size = sum(self._valid_per_shard[i] for i in shards)
            if offset + size > start:
                rows_ND = self._window_rows(epoch, w, shards)
                yield rows_ND[max(start - offset, 0) :]
            offset += size

    def _format(self, batch_BD: Tensor) -> Tensor:
        if self.cfg.dtype is not None:
            batch_BD = batch_BD.to(self.cfg.dtype)
        if self.cfg.device is not None:
            batch_BD = batch_BD.to(self.cfg.device, non_blocking=True)
        return batch_BD

    def __iter__(self) -> Iterator[Tensor]:
        B, total = self.cfg.batch_size, self.store.n_tokens
        if self.cfg.drop_last and total < B:
            raise InterplabError(
                f"the store has {total} tokens, fewer than one batch of {B}; lower the batch size"
            )
        while self.cfg.epochs is None or self.epoch < self.cfg.epochs:
            carry_ND: Tensor | None = None  # rows not yet handed out (fewer than B between windows)
            for rows_ND in self._epoch_rows(self.epoch, self.position):
                carry_ND = rows_ND if carry_ND is None else torch.cat([carry_ND, rows_ND])
                n_full = len(carry_ND) // B
                for b in range(n_full):
                    self.position += B
                    yield self._format(carry_ND[b * B : (b + 1) * B])
                carry_ND = carry_ND[n_full * B :]
            if carry_ND is not None and len(carry_ND) and not self.cfg.drop_last:
                self.position += len(carry_ND)
                yield self._format(carry_ND)
            self.epoch, self.position = self.epoch + 1, 0
