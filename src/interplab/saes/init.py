"""Data-dependent initialisation: b_dec at the geometric median of a sample (Gao et al. 2024).

The geometric median minimises the sum of Euclidean distances to the points. Unlike the mean it
is not dragged by the few huge-norm activations (e.g. on BOS tokens), so the encoder starts
centred on typical inputs. Computed with Weiszfeld's algorithm (iteratively reweighted means).
"""

from __future__ import annotations

import torch
from torch import Tensor

from interplab.common import InterplabError, get_logger
from interplab.saes.base import SAE

log = get_logger(__name__)


@torch.no_grad()
def geometric_median(points_ND: Tensor, max_iter: int = 200, tol: float = 1e-6) -> Tensor:
    """argmin_m Σ_n ‖points_n - m‖ (Weiszfeld), in float64 for a stable fixed point; returns [D]."""
    if points_ND.ndim != 2 or points_ND.shape[0] == 0:
        raise InterplabError(f"geometric_median needs a non-empty [N, D] sample, got shape {tuple(points_ND.shape)}")
    pts = points_ND.double()
    guess_D = pts.mean(0)
    for _ in range(max_iter):
        # Distances floored so a guess sitting on a data point does not divide by zero.
        w_N = 1.0 / (pts - guess_D).norm(dim=-1).clamp_min(1e-12)
        new_D = (w_N[:, None] * pts).sum(0) / w_N.sum()
        shift = (new_D - guess_D).norm()
        guess_D = new_D
        if shift <= tol * (1.0 + guess_D.norm()):
            break
    return guess_D.to(points_ND.dtype)


@torch.no_grad()
def init_b_dec_geometric_median_(sae: SAE, sample_ND: Tensor, max_iter: int = 200) -> Tensor:
    """Set sae.b_dec to the geometric median of `sample_ND` [N, d_in]; returns the new b_dec."""
    if sample_ND.ndim != 2 or sample_ND.shape[-1] != sae.cfg.d_in:
        raise InterplabError(f"b_dec init needs a sample of shape [N, {sae.cfg.d_in}], got {tuple(sample_ND.shape)}")
    median_D = geometric_median(sample_ND.to(sae.b_dec.device), max_iter=max_iter)
    sae.b_dec.copy_(median_D.to(sae.b_dec.dtype))
    return sae.b_dec


@torch.no_grad()
def init_b_dec_mean_(sae: SAE, sample_ND: Tensor) -> Tensor:
    """Set sae.b_dec to the mean of `sample_ND` (cheaper alternative)."""
    if sample_ND.ndim != 2 or sample_ND.shape[-1] != sae.cfg.d_in:
        raise InterplabError(f"b_dec init needs a sample of shape [N, {sae.cfg.d_in}], got {tuple(sample_ND.shape)}")
    sae.b_dec.copy_(sample_ND.to(sae.b_dec).mean(0))
    return sae.b_dec
