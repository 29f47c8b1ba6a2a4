"""Synthetic activations with known ground-truth features (Sharkey, Braun & Millidge 2022,
"Taking features out of superposition with sparse autoencoders",
https://www.lesswrong.com/posts/z6QQJbtpkEAX3Aojj).

1. Draw `n_features` random unit directions in `d` dimensions (the ground truth, `features_FD`).
2. Give feature i the firing probability p_i, decaying geometrically from the most to the least
   frequent feature (ratio `decay_ratio`), scaled so that on average `mean_active` features fire.
3. Decide which features fire in each sample. Independently, or (when `correlation` > 0) through a
   Gaussian copula: draw g ~ N(0, Σ) with a random low-rank-plus-diagonal correlation matrix Σ and
   fire feature i when g_i > Φ⁻¹(1 - p_i). Each marginal probability stays exactly p_i, but features
   sharing a factor fire together.
4. Give each firing feature a magnitude ~ Uniform(0, 1] (`magnitude_min`..1) and sum the scaled
   directions: x = Σ_i m_i f_i.

Batches are a pure function of (seed, batch index), so a stream can be resumed at any position
(`state_dict` / `load_state_dict`) and two processes produce identical data without sharing state.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor

from interplab.common import InterplabError

# Offsets that keep the per-purpose random streams apart (directions, correlations, batches).
_DIRECTIONS_STREAM = 0
_CORRELATION_STREAM = 1
_BATCH_STREAM = 1_000_003


@dataclass
class ToyFeatureConfig:
    """Shape and statistics of a synthetic ground-truth feature set."""

    n_features: int = 512
    """Number of true features (the issue's full size: 512)."""
    d: int = 256
    """Dimension of the activations they are embedded in (full size: 256)."""
    mean_active: float = 5.0
    """Expected number of features firing per sample (Σ_i p_i)."""
    decay_ratio: float = 0.1
    """p_rarest / p_most_frequent: firing probabilities decay geometrically between the two."""
    correlation: float = 0.0
    """0 = independent firing; in (0, 1) the share of each feature's copula variance that comes
    from shared factors (0.5 = strongly correlated groups)."""
    n_factors: int = 16
    """Number of shared factors of the copula (only used when correlation > 0)."""
    magnitude_min: float = 0.0
    """Firing magnitudes are Uniform(magnitude_min, 1]."""
    batch_size: int = 1024
    """Samples per batch of the stream."""
    seed: int = 0
    """Seed of the directions, the correlations and every batch."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def check(self) -> None:
        """Raise a one-line InterplabError naming the bad field."""
        if self.n_features < 1 or self.d < 1 or self.batch_size < 1:
            raise InterplabError("toy features need n_features, d and batch_size >= 1")
        if not 0 < self.decay_ratio <= 1:
            raise InterplabError(f"decay_ratio must be in (0, 1], got {self.decay_ratio}")
        if not 0 <= self.correlation < 1:
            raise InterplabError(f"correlation must be in [0, 1), got {self.correlation}")
        if not 0 <= self.magnitude_min <= 1:
            raise InterplabError(f"magnitude_min must be in [0, 1], got {self.magnitude_min}")
        if not 0 < self.mean_active < self.n_features:
            raise InterplabError(f"mean_active must be in (0, n_features), got {self.mean_active}")


def firing_probabilities(n_features: int, mean_active: float, decay_ratio: float) -> Tensor:
    """[n_features] geometric decay from p_0 to p_0·decay_ratio, summing to mean_active (capped at 1)."""
    exponents_F = torch.arange(n_features, dtype=torch.float64) / max(n_features - 1, 1)
    shape_F = decay_ratio**exponents_F
    probs_F = shape_F * (mean_active / shape_F.sum())
    if probs_F.max() > 1:
        raise InterplabError(
            f"mean_active={mean_active} is too high for decay_ratio={decay_ratio}: the most frequent feature "
            "would fire with probability > 1; lower mean_active or raise decay_ratio"
        )
    return probs_F


class SyntheticStream:
    """The stream protocol the synthetic sources share: batch `index` is drawn from a generator seeded by
    (config seed, the source's `batch_stream`, index), so any batch can be recomputed; iteration goes on
    from `position`, which `state_dict` saves (JSON-safe, with the config so a different stream is refused).
    A source sets `cfg` (with `seed`, `batch_size`, `to_dict`), `position`, `sample` and the two class
    attributes below."""

    batch_stream: int
    """Offset that keeps this source's batch seeds apart from other sources'."""
    mismatch_message: str
    """The one-line error when a checkpoint of a different stream is loaded."""
    cfg: Any
    position: int

    def sample(self, gen: torch.Generator, n: int) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def batch_with_truth(self, index: int) -> tuple[Tensor, Tensor]:
        """Batch number `index` as (activations [B, d], coefficients [B, n_features]); deterministic."""
        if index < 0:
            raise InterplabError(f"batch index must be >= 0, got {index}")
        gen = torch.Generator().manual_seed(self.cfg.seed * 7919 + self.batch_stream + index)
        return self.sample(gen, self.cfg.batch_size)

    def batch(self, index: int) -> Tensor:
        """Batch number `index` [batch_size, d]; the same for the same (config, index)."""
        return self.batch_with_truth(index)[0]

    def __iter__(self) -> Iterator[Tensor]:
        return self

    def __next__(self) -> Tensor:
        x_BD = self.batch(self.position)
        self.position += 1
        return x_BD

    def state_dict(self) -> dict[str, Any]:
        """JSON-safe stream position (plus the config, to refuse resuming a different stream)."""
        return {"position": self.position, "config": self.cfg.to_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a position saved by `state_dict`."""
        saved = state.get("config")
        if saved is not None and saved != self.cfg.to_dict():
            raise InterplabError(self.mismatch_message)
        self.position = int(state["position"])


class ToyFeatureSource(SyntheticStream):
    """A resumable stream of synthetic activation batches [batch_size, d] with ground truth attached.

    Iterate it for training (`next(source)`), or call `batch(i)` for any batch index directly.
    """

    batch_stream = _BATCH_STREAM
    mismatch_message = ("checkpoint was written for a different synthetic stream; resume with the same "
                        "--synthetic settings or start a new run folder")

    def __init__(self, cfg: ToyFeatureConfig):
        cfg.check()
        self.cfg = cfg
        gen = torch.Generator().manual_seed(cfg.seed * 7919 + _DIRECTIONS_STREAM)
        dirs_FD = torch.randn(cfg.n_features, cfg.d, generator=gen, dtype=torch.float64)
        self.features_FD = (dirs_FD / dirs_FD.norm(dim=-1, keepdim=True)).float()
        """Ground-truth unit directions [n_features, d]."""
        self.probs_F = firing_probabilities(cfg.n_features, cfg.mean_active, cfg.decay_ratio).float()
        """Marginal firing probability of each feature."""
        # Firing threshold on a standard normal: P(g > t_i) = p_i.
        normal = torch.distributions.Normal(0.0, 1.0)
        self._thresholds_F = normal.icdf(1 - self.probs_F.double().clamp(1e-12, 1 - 1e-12)).float()
        self._loadings_FK = self._factor_loadings()
        self.position = 0
        """Index of the next batch `__next__` returns."""

    def _factor_loadings(self) -> Tensor | None:
        """Loadings L [F, n_factors] with ‖L_i‖² = correlation, so g = L z + sqrt(1-c) ε has unit variance."""
        if self.cfg.correlation == 0:
            return None
        gen = torch.Generator().manual_seed(self.cfg.seed * 7919 + _CORRELATION_STREAM)
        raw_FK = torch.randn(self.cfg.n_features, self.cfg.n_factors, generator=gen)
        # Each feature loads mostly on one factor, so features form correlated groups.
        raw_FK = raw_FK.pow(4) * raw_FK.sign()
        return raw_FK / raw_FK.norm(dim=-1, keepdim=True) * math.sqrt(self.cfg.correlation)

    def sample(self, gen: torch.Generator, n: int) -> tuple[Tensor, Tensor]:
        """(activations [n, d], feature coefficients [n, n_features]) drawn from `gen`."""
        cfg = self.cfg
        if self._loadings_FK is None:
            fires_NF = torch.rand(n, cfg.n_features, generator=gen) < self.probs_F
        else:
            z_NK = torch.randn(n, cfg.n_factors, generator=gen)
            eps_NF = torch.randn(n, cfg.n_features, generator=gen)
            g_NF = z_NK @ self._loadings_FK.T + math.sqrt(1 - cfg.correlation) * eps_NF
            fires_NF = g_NF > self._thresholds_F
        mags_NF = cfg.magnitude_min + (1 - cfg.magnitude_min) * (1 - torch.rand(n, cfg.n_features, generator=gen))
        coeffs_NF = mags_NF * fires_NF
        return coeffs_NF @ self.features_FD, coeffs_NF
