"""The paper's toy experiments as functions of a config: intro (n=5, m=2), sweep (n=20, m=5), dimensionality.

Elhage et al. 2022, "Toy Models of Superposition", https://transformer-circuits.pub/2022/toy_model/

Each experiment:
1. Builds the per-instance feature probabilities p = 1 - S (one instance per sparsity S) and importances.
2. Trains all instances as one batch (`superposition.fit`), with restarts where optima are local.
3. Returns the learned W, b and losses with the sparsities, for metrics, plots and tests.
The phase diagram (n=2, m=1) lives in `phase.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import NamedTuple

import torch
from torch import Tensor

from interplab.common import InterplabError
from interplab.toy.superposition import ToyConfig, ToyFit, fit


def _intro_train() -> ToyConfig:
    return ToyConfig(n_features=5, n_hidden=2, steps=4000, lr=1e-2, restarts=3)


def _sweep_train() -> ToyConfig:
    return ToyConfig(n_features=20, n_hidden=5, steps=3000, lr=1e-2, restarts=2)


def _dim_train() -> ToyConfig:
    # Batch 512 and lr 5e-3: half the CPU of the paper-like 1024 / 3e-3 with the same D* curve (checked).
    return ToyConfig(
        n_features=200, n_hidden=20, steps=3000, batch_size=512, lr=5e-3, restarts=1, eval_samples=4096
    )


@dataclass
class IntroConfig:
    """n=5 features in m=2 dims with importance 0.9^i, one model per sparsity (the paper's first figure)."""

    sparsities: tuple[float, ...] = (0.0, 0.7, 0.9, 0.95, 0.97)
    """Sparsity S per instance; feature probability is 1 - S."""
    importance_decay: float = 0.9
    """Importance of feature i is importance_decay ** i."""
    train: ToyConfig = field(default_factory=_intro_train)
    """Training settings (n_features and n_hidden set the model size)."""


@dataclass
class SweepConfig:
    """n=20 features in m=5 dims with importance 0.7^i, linear vs ReLU across sparsities."""

    sparsities: tuple[float, ...] = (0.0, 0.7, 0.9, 0.97, 0.99, 0.997)
    """Sparsity S per instance."""
    importance_decay: float = 0.7
    """Importance of feature i is importance_decay ** i."""
    train: ToyConfig = field(default_factory=_sweep_train)
    """Training settings, shared by the linear and the ReLU model (activation is overridden)."""


@dataclass
class DimensionalityConfig:
    """Uniform importance, n=200, m=20: dimensions per feature D* = m / ‖W‖_F² versus sparsity."""

    inverse_density: tuple[float, ...] = (
        1.0,
        1.5,
        2.0,
        2.25,
        2.5,
        2.75,
        3.0,
        3.5,
        4.0,
        5.0,
        7.0,
        10.0,
        20.0,
        50.0,
    )
    """1 / (1 - S) per instance (the paper's x-axis); must be >= 1."""
    train: ToyConfig = field(default_factory=_dim_train)
    """Training settings (n_features and n_hidden set the model size)."""


class SparsityRun(NamedTuple):
    """One batch of models, one per sparsity."""

    sparsity_K: Tensor
    """Sparsity S of each instance [K]."""
    importance_N: Tensor
    """Feature importance [n_features]."""
    fit: ToyFit
    """Learned W [K, m, n], b [K, n], held-out loss [K] and training curves."""


class SweepResult(NamedTuple):
    """Linear and ReLU models trained on the same sparsities."""

    linear: SparsityRun
    """x' = WᵀWx + b."""
    relu: SparsityRun
    """x' = ReLU(WᵀWx + b)."""


def _check_sparsities(sparsities: tuple[float, ...]) -> Tensor:
    s = torch.tensor(sparsities, dtype=torch.float32)
    if s.ndim != 1 or len(s) == 0 or not ((s >= 0) & (s < 1)).all():
        raise InterplabError(
            f"sparsities must be a non-empty list of values in [0, 1), got {list(sparsities)}"
        )
    return s


def run_intro(cfg: IntroConfig, progress=None) -> SparsityRun:
    """Train the n=5, m=2 models (one per sparsity)."""
    s_K = _check_sparsities(cfg.sparsities)
    imp_N = cfg.importance_decay ** torch.arange(cfg.train.n_features, dtype=torch.float32)
    return SparsityRun(s_K, imp_N, fit(cfg.train, 1 - s_K, imp_N, progress=progress))


def run_sweep(cfg: SweepConfig, progress=None) -> SweepResult:
    """Train the linear and the ReLU model on every sparsity."""
    s_K = _check_sparsities(cfg.sparsities)
    imp_N = cfg.importance_decay ** torch.arange(cfg.train.n_features, dtype=torch.float32)
    runs = {}
    for act in ("linear", "relu"):
        train = replace(cfg.train, activation=act)
        runs[act] = SparsityRun(s_K, imp_N, fit(train, 1 - s_K, imp_N, progress=progress))
    return SweepResult(runs["linear"], runs["relu"])


def run_dimensionality(cfg: DimensionalityConfig, progress=None) -> SparsityRun:
    """Train the uniform-importance models, one per 1/(1-S)."""
    inv_K = torch.tensor(cfg.inverse_density, dtype=torch.float32)
    if inv_K.ndim != 1 or len(inv_K) == 0 or not (inv_K >= 1).all():
        raise InterplabError(
            f"inverse_density values are 1/(1-S) and must be >= 1, got {list(cfg.inverse_density)}"
        )
    imp_N = torch.ones(cfg.train.n_features)
    return SparsityRun(1 - 1 / inv_K, imp_N, fit(cfg.train, 1 / inv_K, imp_N, progress=progress))
