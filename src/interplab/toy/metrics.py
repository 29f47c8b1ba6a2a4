"""Geometry of a toy model's features: norms, superposition, dimensionality.

Elhage et al. 2022, "Toy Models of Superposition", https://transformer-circuits.pub/2022/toy_model/

Definitions (W_i is column i of W [m, n], Ŵ_i = W_i / ‖W_i‖):
1. ‖W_i‖: how much feature i is represented (≈1 learned, ≈0 ignored).
2. Superposition score Σ_{j≠i} (Ŵ_i · W_j)²: how much other features interfere along feature i's direction
   (0 = feature i has a dedicated, orthogonal dimension).
3. Feature dimensionality D_i = ‖W_i‖² / Σ_j (Ŵ_i · W_j)² (the j = i term included): the fraction of a
   dimension feature i gets. 1 = dedicated, 1/2 = antipodal pair, 2/5 = pentagon, 0 = not learned.
4. Dimensions per feature D* = m / ‖W‖_F²: hidden dimensions per (norm-weighted) learned feature.
"""

from __future__ import annotations

import torch
from torch import Tensor

# Below this norm a feature counts as not learned: its direction is noise, so we report D_i = 0.
_EPS = 1e-6


def feature_norms(W_IMN: Tensor) -> Tensor:
    """‖W_i‖ for every feature [instances, n]."""
    return W_IMN.norm(dim=-2)


def _overlaps(W_IMN: Tensor) -> Tensor:
    """(Ŵ_i · W_j)² [instances, n(i), n(j)]."""
    norms_IN = feature_norms(W_IMN)
    unit_IMN = W_IMN / norms_IN.clamp_min(_EPS)[:, None, :]
    return torch.einsum("imn,imk->ink", unit_IMN, W_IMN) ** 2


def superposition(W_IMN: Tensor) -> Tensor:
    """Σ_{j≠i} (Ŵ_i · W_j)² for every feature [instances, n]."""
    sq_INN = _overlaps(W_IMN)
    return sq_INN.sum(-1) - torch.diagonal(sq_INN, dim1=-2, dim2=-1)


def dimensionality(W_IMN: Tensor) -> Tensor:
    """D_i = ‖W_i‖² / Σ_j (Ŵ_i · W_j)² [instances, n]; 0 for features with (near) zero norm."""
    norms_IN = feature_norms(W_IMN)
    D_IN = norms_IN**2 / _overlaps(W_IMN).sum(-1).clamp_min(_EPS)
    return torch.where(norms_IN > _EPS**0.5, D_IN, torch.zeros_like(D_IN))


def dims_per_feature(W_IMN: Tensor) -> Tensor:
    """D* = m / ‖W‖_F² [instances]."""
    return W_IMN.shape[-2] / (W_IMN**2).sum(dim=(-2, -1))
