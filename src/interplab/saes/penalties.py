"""Per-latent sparsity costs, including the frequency-weighted penalty (ours; no peer ships it).

Plain L1/L0 charges every latent the same per activation. The frequency-weighted penalty charges
latent i a cost c_i that falls as its running firing frequency p_i rises:

    c_i = clip( (p_i + eps)^-β / Z , cost_min, cost_max ),   Z = Σ_j p_j (p_j + eps)^-β / Σ_j p_j

Why decreasing, not increasing:

1. Description length. Sending "latent i fired" costs about -log p_i bits, so a rare latent is
   genuinely more expensive to mention than a common one; a cost that falls with p_i makes the
   sparsity term a smooth stand-in for the code length (the MDL view of SAEs, Ayonrinde et al. 2024).
2. Feature absorption (Chanin et al. 2024). Under a flat penalty a general latent ("starts with
   S") that would co-fire with a specific one ("snake") costs extra, so training folds the general
   direction into the specific latent and the general latent goes silent on exactly those tokens.
   Making frequent, general latents cheap makes co-firing cheap, so they keep firing.
3. The normaliser Z makes the frequency-weighted mean cost 1: for the current firing pattern the
   expected penalty equals the plain one, so the sparsity coefficient keeps its meaning.

The risk is the reverse of the benefit: rare latents pay more, so they die more easily, and
frequent latents pay less, so dense latents are cheaper. The clip [cost_min, cost_max] bounds
both effects; dead-latent resampling or AuxK still applies on top. With β = 0 all costs are 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from interplab.common import InterplabError


@dataclass
class FrequencyPenaltyFields:
    """Config fields of the frequency-weighted sparsity penalty (mixed into ReLU and JumpReLU configs)."""

    freq_weighted_sparsity: bool = False
    """Scale each latent's sparsity cost by a decreasing function of its firing frequency (see
    `frequency_weighted_costs`)."""
    freq_beta: float = 0.5
    """Exponent β of the frequency-weighted cost c_i ∝ (freq_i + eps)^-β; 0 gives the plain penalty."""
    freq_eps: float = 1e-4
    """Frequency floor in the cost, so never-seen latents get a finite cost."""
    freq_cost_min: float = 0.25
    """Lower clip of the per-latent cost (after normalisation)."""
    freq_cost_max: float = 4.0
    """Upper clip of the per-latent cost (after normalisation): bounds how hard rare latents are pushed."""

    def check_penalty(self) -> None:
        """Raise for clip bounds that cannot hold."""
        if self.freq_cost_min > self.freq_cost_max or self.freq_cost_min < 0:
            raise InterplabError(
                f"need 0 <= freq_cost_min <= freq_cost_max, got {self.freq_cost_min}, {self.freq_cost_max}"
            )


def frequency_weighted_costs(freq_F: Tensor, beta: float, eps: float, cost_min: float, cost_max: float) -> Tensor:
    """[d_sae] per-latent cost, non-increasing in freq_F, frequency-weighted mean 1 before clipping."""
    if cost_min > cost_max or cost_min < 0:
        raise InterplabError(f"need 0 <= freq_cost_min <= freq_cost_max, got {cost_min}, {cost_max}")
    freq_F = freq_F.detach().float().clamp(0, 1)
    raw_F = (freq_F + eps).pow(-beta)
    total = freq_F.sum()
    if total <= 0:  # no firing information yet: plain penalty
        return torch.ones_like(freq_F)
    z = (freq_F * raw_F).sum() / total
    return (raw_F / z).clamp(cost_min, cost_max)


def latent_costs(cfg: FrequencyPenaltyFields, freq_F: Tensor | None, d_sae: int) -> Tensor | None:
    """The costs to apply for this config and state, or None for the plain (uniform) penalty."""
    if not cfg.freq_weighted_sparsity or freq_F is None:
        return None
    if freq_F.shape != (d_sae,):
        raise InterplabError(f"freq_F must have shape ({d_sae},), got {tuple(freq_F.shape)}")
    return frequency_weighted_costs(freq_F, cfg.freq_beta, cfg.freq_eps, cfg.freq_cost_min, cfg.freq_cost_max)
