"""BatchTopK SAE (Bussmann, Leask & Nanda 2024, "BatchTopK Sparse Autoencoders", arXiv:2412.06410).

1. Training: keep the k·B largest ReLU pre-activations of the whole batch [B, d_sae] (so easy
   tokens use fewer latents than hard ones, k on average), zero the rest.
2. Inference must not depend on the other tokens of a batch, so the SAE tracks a global threshold
   θ: an exponential moving average of the smallest kept activation of each training batch.
   encode() then keeps latents with pre > θ, per token. Before any training step θ is unknown
   and encode() falls back to per-token TopK.
3. Decoder rows at unit norm and the AuxK dead-latent loss, as for TopK.
Saved files use the SAELens "jumprelu" layout with θ copied to every latent, which is the same rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from interplab.common import InterplabError, get_logger
from interplab.saes.base import SAE, SAEConfig, TrainOutput, TrainState
from interplab.saes.registry import register_sae
from interplab.saes.sparse_ops import topk_among_dead
from interplab.saes.topk import AuxKFields, auxk_loss, dead_indices

log = get_logger(__name__)


@dataclass
class BatchTopKConfig(AuxKFields):
    """BatchTopK SAE: the TopK fields and the momentum of the learned inference threshold."""

    architecture: ClassVar[str] = "batchtopk"
    saelens_architecture: ClassVar[str] = "jumprelu"  # the global threshold copied to every latent
    saelens_reads: ClassVar[tuple[str, ...]] = ("batchtopk",)

    threshold_momentum: float = 0.99
    """EMA momentum of the inference threshold estimated during training."""


@register_sae
class BatchTopKSAE(SAE):
    """Top k·B activations per batch in training; a learned global threshold at inference."""

    config_class = BatchTopKConfig
    cfg: BatchTopKConfig

    def __init__(self, cfg: SAEConfig):
        super().__init__(cfg)
        # NaN = not estimated yet (see encode).
        self.register_buffer("threshold", torch.tensor(float("nan"), dtype=self.W_dec.dtype))

    def activation(self, pre: Tensor) -> Tensor:
        if torch.isnan(self.threshold):
            values, idx = pre.topk(self.cfg.k, dim=-1)
            return torch.zeros_like(pre).scatter(-1, idx, values.relu())
        return pre.relu() * (pre > self.threshold)

    def batch_topk(self, pre_BF: Tensor) -> Tensor:
        """Dense latents keeping the k·B largest ReLU activations of the batch."""
        acts_BF = pre_BF.relu()
        n_keep = min(self.cfg.k * acts_BF.shape[0], acts_BF.numel())
        values, flat_idx = acts_BF.flatten().topk(n_keep, sorted=False)
        return torch.zeros_like(acts_BF).flatten().scatter(0, flat_idx, values).view_as(acts_BF)

    @torch.no_grad()
    def update_threshold_(self, z_BF: Tensor) -> None:
        """Fold this batch's smallest kept activation into the EMA threshold."""
        positive = z_BF[z_BF > 0]
        if positive.numel() == 0:
            return
        batch_min = positive.min().to(self.threshold.dtype)
        if torch.isnan(self.threshold):
            self.threshold.copy_(batch_min)
        else:
            m = self.cfg.threshold_momentum
            self.threshold.mul_(m).add_((1 - m) * batch_min)

    def training_forward(self, x_BD: Tensor, state: TrainState | None = None) -> TrainOutput:
        state = state or TrainState()
        x_BD = x_BD.to(self.dtype)
        dead_N = dead_indices(self, state, x_BD.device)
        n_dead = dead_N.numel()
        pre_BF = self.pre_acts(x_BD)
        z_BF = self.batch_topk(pre_BF)
        if self.training:
            self.update_threshold_(z_BF.detach())
        x_hat_BD = self.decode(z_BF)
        mse, fvu = self._reconstruction_stats(x_BD, x_hat_BD)
        aux_v, aux_i = topk_among_dead(pre_BF, dead_N, self.cfg.k_aux_eff)
        aux = auxk_loss(self, (x_BD - x_hat_BD).detach(), aux_v, aux_i, n_dead, sparse=False)
        return TrainOutput.from_dense(x_hat_BD, z_BF, mse, fvu, aux=aux)

    def export_tensors(self) -> dict[str, Tensor]:
        th = self.threshold.detach()
        if torch.isnan(th):
            log.warning("BatchTopK threshold not estimated yet (no training step); saving threshold 0")
            th = torch.zeros_like(th)
        return {**super().export_tensors(), "threshold": th.expand(self.cfg.d_sae).contiguous()}

    def expected_shapes(self) -> dict[str, tuple[int, ...]]:
        return {**super().expected_shapes(), "threshold": (self.cfg.d_sae,)}

    def _import_one_(self, name: str, t: Tensor) -> None:
        if name != "threshold":
            return super()._import_one_(name, t)
        if t.numel() and not torch.all(t == t.flatten()[0]):
            raise InterplabError("BatchTopK expects one global threshold, but the file's 'threshold' varies "
                                 "by latent; load it as architecture 'jumprelu' instead")
        self.threshold.copy_(t.flatten()[0].to(self.threshold.dtype))
