"""Recovery of known features: how well an SAE's decoder finds the true directions (Sharkey et al. 2022).

MMCS (mean max cosine similarity) = mean over true features f_i of max_j cos(f_i, d_j), where d_j are
the decoder rows. 1.0 means every true direction has a latent pointing exactly along it. Extra or
duplicated latents do not lower it; use `per_feature_recovery` to see which features were missed.
"""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor

from interplab.common import InterplabError


class Recovery(NamedTuple):
    """Per-true-feature match against a dictionary."""

    max_cos_F: Tensor
    """[n_true] best cosine of each true feature with any decoder row."""
    best_latent_F: Tensor
    """[n_true] index of that decoder row."""
    mmcs: float
    """Mean of max_cos_F."""
    frac_recovered: float
    """Share of true features whose best cosine is at least the threshold."""


def _unit_rows(w_ND: Tensor) -> Tensor:
    return w_ND / w_ND.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def cosine_matrix(true_FD: Tensor, dec_LD: Tensor) -> Tensor:
    """[n_true, n_latents] cosine similarities between rows (computed in float32)."""
    if true_FD.ndim != 2 or dec_LD.ndim != 2 or true_FD.shape[1] != dec_LD.shape[1]:
        raise InterplabError(
            f"ground-truth directions {tuple(true_FD.shape)} and decoder {tuple(dec_LD.shape)} must both be "
            "[n, d] with the same d; pass the decoder as W_dec [d_sae, d_in]"
        )
    return _unit_rows(true_FD.float()) @ _unit_rows(dec_LD.detach().float().to(true_FD.device)).T


def per_feature_recovery(true_FD: Tensor, dec_LD: Tensor, threshold: float = 0.9) -> Recovery:
    """Best-matching decoder row for each true feature, and the share matched above `threshold`."""
    max_cos_F, best_F = cosine_matrix(true_FD, dec_LD).max(dim=1)
    return Recovery(
        max_cos_F=max_cos_F,
        best_latent_F=best_F,
        mmcs=float(max_cos_F.mean()),
        frac_recovered=float((max_cos_F >= threshold).float().mean()),
    )


def mmcs(true_FD: Tensor, dec_LD: Tensor) -> float:
    """Mean over true features of the max cosine with any decoder row."""
    return per_feature_recovery(true_FD, dec_LD).mmcs
