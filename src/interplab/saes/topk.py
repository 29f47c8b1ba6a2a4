"""TopK SAE (Gao et al. 2024, "Scaling and evaluating sparse autoencoders", arXiv:2406.04093).

1. pre = (x - b_dec) @ W_enc + b_enc; keep the k largest per token, ReLU them, zero the rest.
2. x_hat = latents @ W_dec + b_dec, with decoder rows kept at unit norm by the trainer
   (`set_decoder_norm_to_unit_` after each step, `remove_gradient_parallel_to_decoder_` before it).
3. loss = ‖x - x_hat‖² + α · AuxK, where AuxK reconstructs the residual e = x - x_hat (detached)
   from the top-k_aux pre-activations among dead latents only, so dead latents get gradient again.

Training runs through the sparse kernel in sparse_ops.py unless `cfg.sparse_kernel` is False, which
selects the plain dense reference kept for testing.
"""

from __future__ import annotations

import torch
from torch import Tensor

from interplab.common import InterplabError
from interplab.saes.base import SAE, SAEConfig, TrainOutput, TrainState
from interplab.saes.registry import register_sae
from interplab.saes.sparse_ops import SparseDecode, TopKTrainKernel, sparse_decode_plain, topk_among_dead


def dense_from_sparse(values_BK: Tensor, idx_BK: Tensor, d_sae: int) -> Tensor:
    """Scatter (values, indices) into a dense [B, d_sae] matrix."""
    out = values_BK.new_zeros(values_BK.shape[0], d_sae)
    return out.scatter(1, idx_BK, values_BK)


def auxk_loss(
    sae: SAE, err_BD: Tensor, aux_values_BA: Tensor, aux_idx_BA: Tensor, n_dead: int, sparse: bool
) -> Tensor:
    """α · min(n_dead / k_aux, 1) · ‖e - ê‖² (summed over d_in, batch mean), ê decoded from dead latents.

    `err_BD` must already be detached. The dead-fraction scale (as in sparsify and SAELens) keeps
    the term small when only a handful of latents are dead.
    """
    if aux_values_BA.shape[1] == 0:
        return err_BD.new_zeros(())
    if sparse:
        e_hat_BD = SparseDecode.apply(aux_values_BA, aux_idx_BA, sae.W_dec)
    else:
        e_hat_BD = dense_from_sparse(aux_values_BA, aux_idx_BA, sae.cfg.d_sae) @ sae.W_dec
    scale = min(n_dead / sae.cfg.k_aux_eff, 1.0)
    return sae.cfg.auxk_alpha * scale * (e_hat_BD - err_BD).pow(2).sum(-1).mean()


def dead_indices(sae: SAE, state: TrainState, device: torch.device) -> Tensor:
    """Long indices of the dead latents in `state` (empty without a mask). One host sync."""
    if state.dead_mask_F is None:
        return torch.zeros(0, dtype=torch.long, device=device)
    mask = state.dead_mask_F.to(device=device, dtype=torch.bool)
    if mask.shape != (sae.cfg.d_sae,):
        raise InterplabError(f"dead_mask_F must have shape ({sae.cfg.d_sae},), got {tuple(mask.shape)}")
    return mask.nonzero().squeeze(-1)


def sparse_fire_counts(values_BK: Tensor, idx_BK: Tensor, d_sae: int) -> Tensor:
    """[d_sae] rows in which each latent fired, from a (values, indices) pair (no host sync)."""
    fired = (values_BK > 0).reshape(-1).long()
    return torch.zeros(d_sae, dtype=torch.long, device=idx_BK.device).index_add_(0, idx_BK.reshape(-1), fired)


@register_sae("topk")
class TopKSAE(SAE):
    """ReLU of the k largest pre-activations per token; unit-norm decoder; AuxK dead-latent loss."""

    unit_norm_decoder_default = True
    encoder_init_scale_default = 0.5  # see SAEConfig.init_encoder_scale

    def __init__(self, cfg: SAEConfig):
        if not 0 < cfg.k <= cfg.d_sae:
            raise InterplabError(f"TopK needs 0 < k <= d_sae, got k={cfg.k}, d_sae={cfg.d_sae}")
        super().__init__(cfg)

    def activation(self, pre: Tensor) -> Tensor:
        values, idx = pre.topk(self.cfg.k, dim=-1, sorted=False)
        return torch.zeros_like(pre).scatter(-1, idx, values.relu())

    def encode_sparse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(values [..., k], indices [..., k]) of the kept latents, without the dense [.., d_sae] output."""
        values, idx = self.pre_acts(x).topk(self.cfg.k, dim=-1, sorted=False)
        return values.relu(), idx

    def training_forward(self, x_BD: Tensor, state: TrainState | None = None) -> TrainOutput:
        state = state or TrainState()
        self._check_input(x_BD)
        x_BD = x_BD.to(self.dtype)
        dead_N = dead_indices(self, state, x_BD.device)
        n_dead = dead_N.numel()
        k, k_aux = self.cfg.k, self.cfg.k_aux_eff
        if self.cfg.sparse_kernel:
            mse, x_hat_BD, resid_BD, values, idx, aux_v, aux_i, total = TopKTrainKernel.apply(
                x_BD, self.b_dec, self.W_enc, self.b_enc, self.W_dec, k, dead_N, k_aux,
                self.cfg.apply_b_dec_to_input,
            )
            fvu = mse.detach() * x_BD.shape[0] / total.clamp_min(1e-12)
        else:
            pre_BF = self.pre_acts(x_BD)
            values, idx = pre_BF.topk(k, dim=-1, sorted=False)
            values = values.relu()
            aux_v, aux_i = topk_among_dead(pre_BF, dead_N, k_aux)
            x_hat_BD = self.decode(dense_from_sparse(values, idx, self.cfg.d_sae))
            mse, fvu = self._reconstruction_stats(x_BD, x_hat_BD)
            resid_BD = (x_BD - x_hat_BD).detach()
        aux = auxk_loss(self, resid_BD, aux_v, aux_i, n_dead, self.cfg.sparse_kernel)
        with torch.no_grad():
            counts_F = sparse_fire_counts(values, idx, self.cfg.d_sae)
            l0 = (values > 0).sum(1).float().mean()
        zero = mse.new_zeros(())
        return TrainOutput(
            loss=mse + aux, mse_loss=mse, sparsity_loss=zero, aux_loss=aux, x_hat_BD=x_hat_BD,
            latents_BF=None, top_values_BK=values, top_indices_BK=idx,
            fire_counts_F=counts_F, l0=l0, fvu=fvu,
        )


# keep sparse_decode_plain importable from here for callers decoding (values, indices) pairs
__all__ = ["TopKSAE", "auxk_loss", "dense_from_sparse", "sparse_decode_plain"]
