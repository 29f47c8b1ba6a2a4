"""Synthetic activations with a feature hierarchy, the setting of feature absorption (Chanin et al.
2024, "A is for Absorption", arXiv:2409.14507; Nabeshima 2024, "Matryoshka Sparse Autoencoders").

1. Features are parents (first `n_parents`), their children (`children_per_parent` each, parent by
   parent), then independent features. Directions are random unit vectors, orthonormal when d allows.
2. A parent fires with probability `parent_prob`; when it fires, one of its children (uniform) fires
   too with probability `child_given_parent`. A child never fires without its parent, so "child"
   implies "parent", exactly the structure a sparsity penalty exploits by folding the parent's
   direction into each child's latent (the parent latent then goes silent on those samples).
3. Independent features fire with probability `independent_prob` each.
4. Magnitudes are Uniform(`magnitude_min`, 1]; x = Σ_i m_i f_i.

Batches are a pure function of (seed, batch index), like `ToyFeatureSource`, so a stream resumes at
any position and held-out batches are just large indices.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor

from interplab.common import InterplabError
from interplab.data.synthetic.toy_features import SyntheticStream

_BATCH_STREAM = 2_000_003


@dataclass
class HierarchyConfig:
    """Shape and statistics of a parent/child feature hierarchy."""

    n_parents: int = 16
    """Number of parent features."""
    children_per_parent: int = 4
    """Children per parent; a child only ever fires together with its parent."""
    n_independent: int = 0
    """Extra features outside the hierarchy, firing independently."""
    parent_prob: float = 0.1
    """Probability that a parent fires."""
    child_given_parent: float = 0.9
    """Probability that one of its children fires too when a parent fires (the rest: parent alone)."""
    independent_prob: float = 0.05
    """Firing probability of each independent feature."""
    d: int = 128
    """Dimension of the activations."""
    magnitude_min: float = 0.5
    """Firing magnitudes are Uniform(magnitude_min, 1]."""
    batch_size: int = 1024
    """Samples per batch."""
    seed: int = 0
    """Seed of the directions and of every batch."""

    @property
    def n_children(self) -> int:
        return self.n_parents * self.children_per_parent

    @property
    def n_features(self) -> int:
        return self.n_parents + self.n_children + self.n_independent

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def check(self) -> None:
        """Raise a one-line InterplabError naming the bad field."""
        if self.n_parents < 1 or self.children_per_parent < 1 or self.n_independent < 0:
            raise InterplabError("a hierarchy needs n_parents >= 1, children_per_parent >= 1, n_independent >= 0")
        for name in ("parent_prob", "child_given_parent", "independent_prob", "magnitude_min"):
            if not 0 <= getattr(self, name) <= 1:
                raise InterplabError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.d < 1 or self.batch_size < 1:
            raise InterplabError("d and batch_size must be >= 1")


class HierarchySource(SyntheticStream):
    """A resumable stream of batches [batch_size, d] from a feature hierarchy, with ground truth."""

    batch_stream = _BATCH_STREAM
    mismatch_message = ("checkpoint was written for a different hierarchy stream; resume with the same "
                        "settings or start a new run folder")

    def __init__(self, cfg: HierarchyConfig):
        cfg.check()
        self.cfg = cfg
        gen = torch.Generator().manual_seed(cfg.seed * 7919)
        raw_DF = torch.randn(cfg.d, cfg.n_features, generator=gen, dtype=torch.float64)
        if cfg.n_features <= cfg.d:  # orthonormal: absorption is then the only way latents can mix
            raw_DF = torch.linalg.qr(raw_DF).Q
        self.features_FD = torch.nn.functional.normalize(raw_DF.T, dim=-1).float()
        """Ground-truth unit directions [n_features, d]: parents, children, independent."""
        self.parent_of_C = torch.arange(cfg.n_children) // cfg.children_per_parent
        """Parent index of each child [n_children] (child c is feature n_parents + c)."""
        self.position = 0
        """Index of the next batch `__next__` returns."""

    @property
    def parents(self) -> range:
        """Feature indices of the parents."""
        return range(self.cfg.n_parents)

    def children_of(self, parent: int) -> range:
        """Feature indices of a parent's children."""
        start = self.cfg.n_parents + parent * self.cfg.children_per_parent
        return range(start, start + self.cfg.children_per_parent)

    def sample(self, gen: torch.Generator, n: int) -> tuple[Tensor, Tensor]:
        """(activations [n, d], coefficients [n, n_features]) drawn from `gen`."""
        cfg = self.cfg
        parent_NP = torch.rand(n, cfg.n_parents, generator=gen) < cfg.parent_prob
        has_child_NP = parent_NP & (torch.rand(n, cfg.n_parents, generator=gen) < cfg.child_given_parent)
        which_NP = torch.randint(cfg.children_per_parent, (n, cfg.n_parents), generator=gen)
        child_NPC = torch.nn.functional.one_hot(which_NP, cfg.children_per_parent).bool() & has_child_NP[..., None]
        indep_NI = torch.rand(n, cfg.n_independent, generator=gen) < cfg.independent_prob
        fires_NF = torch.cat([parent_NP, child_NPC.reshape(n, -1), indep_NI], dim=1)
        mags_NF = cfg.magnitude_min + (1 - cfg.magnitude_min) * (1 - torch.rand(n, cfg.n_features, generator=gen))
        coeffs_NF = mags_NF * fires_NF
        return coeffs_NF @ self.features_FD, coeffs_NF
