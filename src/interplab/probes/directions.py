"""Cosine geometry of probe directions: across datasets, and against SAE decoder directions.

- probe-probe: cos(w_A, w_B) for probes trained on datasets A and B at the same hook; high cosine
  with poor transfer (or the reverse) is the interesting case.
- probe-decoder, single: which decoder rows W_dec[f] point along a residual probe direction.
- probe-decoder, combined: an SAE-feature probe with weights a_k on latents f_k reads the residual
  stream through the decoder as sum_k a_k W_dec[f_k]; its cosine with the residual probe says whether
  the two probes found the same direction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from interplab.common import InterplabError


def _unit_rows(X_KD: Tensor) -> Tensor:
    X_KD = X_KD.double()
    return X_KD / X_KD.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def cosine_matrix(A_KD: Tensor, B_MD: Tensor) -> Tensor:
    """Cosine similarity of every row of A [k, d] with every row of B [m, d] -> [k, m] (float64)."""
    if A_KD.ndim != 2 or B_MD.ndim != 2 or A_KD.shape[1] != B_MD.shape[1]:
        raise InterplabError(
            f"cosine_matrix needs [k, d] and [m, d] with the same d, got {tuple(A_KD.shape)} and {tuple(B_MD.shape)}"
        )
    return _unit_rows(A_KD) @ _unit_rows(B_MD.to(A_KD.device)).T


def probe_cosines(directions: Mapping[str, Tensor]) -> tuple[list[str], Tensor]:
    """Names and the [k, k] cosine matrix between named directions (e.g. one probe per dataset)."""
    names = list(directions)
    if not names:
        raise InterplabError("no probe directions to compare")
    stacked_KD = torch.stack([directions[n].detach().cpu().double() for n in names])
    return names, cosine_matrix(stacked_KD, stacked_KD)


class DecoderAlignment(NamedTuple):
    """The decoder rows most aligned with one direction."""

    latents: list[int]
    """Latent indices, largest |cosine| first."""
    cosines: list[float]
    """Their signed cosines with the direction."""
    max_abs_cosine: float
    """The largest |cosine| over all latents."""


def decoder_alignment(direction_D: Tensor, W_dec_FD: Tensor, top_n: int = 10) -> DecoderAlignment:
    """Which single decoder directions W_dec[f] [d_sae, d] point along `direction_D` [d]."""
    if direction_D.ndim != 1 or W_dec_FD.shape[-1] != direction_D.shape[0]:
        raise InterplabError(
            f"direction has d={direction_D.shape[-1]} but the decoder rows have d={W_dec_FD.shape[-1]}; "
            "use the SAE trained at the probe's hook"
        )
    cos_F = cosine_matrix(direction_D[None].detach().cpu(), W_dec_FD.detach().cpu())[0]
    top = cos_F.abs().topk(min(top_n, cos_F.numel())).indices
    return DecoderAlignment(top.tolist(), cos_F[top].tolist(), float(cos_F.abs().max()))


def combined_decoder_direction(latents: Sequence[int], weights: Tensor, W_dec_FD: Tensor) -> Tensor:
    """Unit-norm sum_k weights[k] * W_dec[latents[k]] [d]: a latent-space probe mapped into the residual stream."""
    if len(latents) != weights.numel():
        raise InterplabError(
            f"{len(latents)} latents but {weights.numel()} weights; pass one weight per latent"
        )
    if len(latents) == 0:
        raise InterplabError("no latents given for the combined decoder direction")
    index = torch.as_tensor(list(latents), dtype=torch.long)
    combined_D = weights.detach().cpu().double() @ W_dec_FD.detach().cpu().double()[index]
    return combined_D / combined_D.norm().clamp_min(1e-12)
