"""ReLU SAE with the decoder-norm-weighted L1 penalty (Anthropic, "Circuits Updates – April 2024",
https://transformer-circuits.pub/2024/april-update/index.html#training-saes).

1. latents f = ReLU((x - b_dec·apply) @ W_enc + b_enc); x_hat = f @ W_dec + b_dec.
2. loss = ‖x - x_hat‖² + λ Σ_i c_i f_i ‖W_dec_i‖, summed over latents, averaged over the batch.
   The decoder is not constrained to unit norm: weighting the L1 by the row norm removes the
   shortcut of shrinking f while growing W_dec. c_i = 1, or the frequency-weighted cost
   (penalties.py) when `cfg.freq_weighted_sparsity`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from interplab.saes.base import SAE, TrainOutput, TrainState, fire_counts
from interplab.saes.penalties import latent_costs
from interplab.saes.registry import register_sae


@register_sae("relu")
class ReLUSAE(SAE):
    """ReLU latents; L1 weighted by decoder norms (and optionally by firing frequency)."""

    unit_norm_decoder_default = False

    def activation(self, pre: Tensor) -> Tensor:
        return pre.relu()

    def training_forward(self, x_BD: Tensor, state: TrainState | None = None) -> TrainOutput:
        state = state or TrainState()
        x_BD = x_BD.to(self.dtype)
        z_BF = self.encode(x_BD)
        x_hat_BD = self.decode(z_BF)
        mse, fvu = self._reconstruction_stats(x_BD, x_hat_BD)
        weight_F = self.decoder_norms()
        costs_F = latent_costs(self.cfg, state.freq_F)
        if costs_F is not None:
            weight_F = weight_F * costs_F.to(weight_F)
        l1 = (z_BF * weight_F).sum(-1).mean()
        sparsity = self.cfg.l1_coeff * state.sparsity_scale * l1
        with torch.no_grad():
            counts_F = fire_counts(z_BF)
            l0 = (z_BF > 0).sum(-1).float().mean()
        return TrainOutput(
            loss=mse + sparsity, mse_loss=mse, sparsity_loss=sparsity, aux_loss=mse.new_zeros(()),
            x_hat_BD=x_hat_BD, latents_BF=z_BF, top_values_BK=None, top_indices_BK=None,
            fire_counts_F=counts_F, l0=l0, fvu=fvu,
        )
