"""Sparsity statistics of SAE latents: L0, firing frequencies, dead and dense fractions.

A latent is *dead* if it never fired on the evaluation tokens and *dense* if it fired on more
than `dense_threshold` of them (SAEBench uses 0.1: such latents say little about any one token).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

import torch
from torch import Tensor

from interplab.common import InterplabError


class SparsityStats(NamedTuple):
    """Latent statistics over an evaluation set."""

    l0: float
    """Mean number of nonzero latents per token."""
    freq_F: Tensor
    """[d_sae] fraction of tokens on which each latent fired."""
    dead_fraction: float
    """Share of latents that never fired."""
    dense_fraction: float
    """Share of latents firing on more than the dense threshold of tokens."""
    n_tokens: int
    """Tokens evaluated."""


class SparsityAccumulator:
    """Streams latent batches [B, d_sae] and keeps fire counts, so any number of tokens fits in memory."""

    def __init__(self, d_sae: int, dense_threshold: float = 0.1):
        self.fire_counts_F = torch.zeros(d_sae, dtype=torch.long)
        self.active_total = 0
        self.n_tokens = 0
        self.dense_threshold = dense_threshold

    def update(self, latents_BF: Tensor) -> None:
        """Add a batch of latents (any leading shape; the last dim is d_sae)."""
        if latents_BF.shape[-1] != self.fire_counts_F.shape[0]:
            raise InterplabError(f"latents have {latents_BF.shape[-1]} columns, expected d_sae={self.fire_counts_F.shape[0]}")
        fired_BF = latents_BF.reshape(-1, latents_BF.shape[-1]) != 0
        self.fire_counts_F += fired_BF.sum(0).cpu()
        self.active_total += int(fired_BF.sum())
        self.n_tokens += fired_BF.shape[0]

    def result(self) -> SparsityStats:
        if self.n_tokens == 0:
            raise InterplabError("no tokens were evaluated; give the evaluation at least one batch")
        freq_F = self.fire_counts_F.double() / self.n_tokens
        return SparsityStats(
            l0=self.active_total / self.n_tokens,
            freq_F=freq_F.float(),
            dead_fraction=float((self.fire_counts_F == 0).double().mean()),
            dense_fraction=float((freq_F > self.dense_threshold).double().mean()),
            n_tokens=self.n_tokens,
        )


def sparsity_stats(latent_batches: Iterable[Tensor], dense_threshold: float = 0.1) -> SparsityStats:
    """Statistics over an iterable of latent batches [..., d_sae]."""
    acc: SparsityAccumulator | None = None
    for z in latent_batches:
        acc = acc or SparsityAccumulator(z.shape[-1], dense_threshold)
        acc.update(z)
    if acc is None:
        raise InterplabError("no latent batches were given; give the evaluation at least one batch")
    return acc.result()


def log_frequency_histogram(freq_F: Tensor, bins: int = 40, floor: float = 1e-7) -> tuple[Tensor, Tensor]:
    """(counts [bins], edges [bins+1]) of log10 firing frequency; dead latents land in the lowest bin."""
    lo = float(torch.tensor(floor).log10())
    log_f = freq_F.double().clamp(floor, 1.0).log10()
    counts = torch.histc(log_f, bins=bins, min=lo, max=0.0)
    edges = torch.linspace(lo, 0.0, bins + 1)
    return counts.long(), edges.float()
