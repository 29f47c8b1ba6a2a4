"""ReLU SAE with the decoder-norm-weighted L1 penalty (Anthropic, "Circuits Updates – April 2024",
https://transformer-circuits.pub/2024/april-update/index.html#training-saes).

1. latents f = ReLU((x - b_dec·apply) @ W_enc + b_enc); x_hat = f @ W_dec + b_dec.
2. loss = ‖x - x_hat‖² + λ Σ_i c_i f_i ‖W_dec_i‖, summed over latents, averaged over the batch.
   The decoder is not constrained to unit norm: weighting the L1 by the row norm removes the
   shortcut of shrinking f while growing W_dec. c_i = 1, or the frequency-weighted cost
   (penalties.py) when `cfg.freq_weighted_sparsity`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from torch import Tensor

from interplab.saes.base import SAE, SAEConfig, TrainOutput, TrainState
from interplab.saes.penalties import FrequencyPenaltyFields, latent_costs
from interplab.saes.registry import register_sae


@dataclass
class ReLUConfig(FrequencyPenaltyFields, SAEConfig):
    """ReLU SAE: the shared fields, the L1 coefficient and the frequency-weighted penalty."""

    architecture: ClassVar[str] = "relu"
    saelens_architecture: ClassVar[str] = "standard"
    saelens_reads: ClassVar[tuple[str, ...]] = ("standard",)

    l1_coeff: float = 5.0
    """Weight of the decoder-norm-weighted L1 penalty (Anthropic April 2024 uses ~5 on inputs
    scaled to E‖x‖² = d_in)."""

    def check(self) -> None:
        super().check()
        self.check_penalty()


@register_sae
class ReLUSAE(SAE):
    """ReLU latents; L1 weighted by decoder norms (and optionally by firing frequency)."""

    config_class = ReLUConfig
    cfg: ReLUConfig

    def activation(self, pre: Tensor) -> Tensor:
        return pre.relu()

    def training_forward(self, x_BD: Tensor, state: TrainState | None = None) -> TrainOutput:
        state = state or TrainState()
        x_BD = x_BD.to(self.dtype)
        z_BF = self.encode(x_BD)
        x_hat_BD = self.decode(z_BF)
        mse, fvu = self._reconstruction_stats(x_BD, x_hat_BD)
        weight_F = self.decoder_norms()
        costs_F = latent_costs(self.cfg, state.freq_F, self.cfg.d_sae)
        if costs_F is not None:
            weight_F = weight_F * costs_F.to(weight_F)
        l1 = (z_BF * weight_F).sum(-1).mean()
        sparsity = self.cfg.l1_coeff * state.sparsity_scale * l1
        return TrainOutput.from_dense(x_hat_BD, z_BF, mse, fvu, sparsity=sparsity)
