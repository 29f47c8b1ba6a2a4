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

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from interplab.common import InterplabError
from interplab.saes.base import SAE, SAEConfig, TrainOutput, TrainState
from interplab.saes.registry import register_sae
from interplab.saes.sparse_ops import (
    SparseDecode,
    encode_topk,
    sparse_decode_plain,
    topk_among_dead,
    topk_train_forward,
)


@dataclass
class AuxKFields(SAEConfig):
    """Fields of the k-sparse architectures with the AuxK dead-latent loss (TopK, BatchTopK, ...)."""

    normalize_decoder: bool = True
    """Keep decoder rows at unit norm during training (Gao et al. 2024)."""
    init_encoder_scale: float = 0.5
    """W_enc starts as this multiple of W_dec.T (see SAEConfig; 0.5 ≈ sparsify's implicit start,
    keeps ground-truth recovery at a dictionary as large as the true feature count)."""
    k: int = 32
    """Latents kept per token (BatchTopK: on average over the batch)."""
    auxk_alpha: float = 1 / 32
    """Weight of the AuxK dead-latent loss (Gao et al. 2024 use 1/32)."""
    k_aux: int | None = None
    """Dead latents used by AuxK per token; None means d_in // 2."""

    @property
    def k_aux_eff(self) -> int:
        """The AuxK width actually used."""
        return self.k_aux if self.k_aux is not None else max(1, self.d_in // 2)

    def check(self) -> None:
        super().check()
        if not 0 < self.k <= self.d_sae:
            raise InterplabError(f"{self.architecture} needs 0 < k <= d_sae, got k={self.k}, d_sae={self.d_sae}")


@dataclass
class TopKConfig(AuxKFields):
    """TopK SAE: the shared fields, k and AuxK, and the choice of training kernel."""

    architecture: ClassVar[str] = "topk"
    saelens_architecture: ClassVar[str] = "topk"
    saelens_reads: ClassVar[tuple[str, ...]] = ("topk",)

    sparse_kernel: bool = True
    """Train through the sparse autograd kernel (sparse_ops.py); False runs the plain dense reference."""

    def saelens_fields(self) -> dict[str, Any]:
        return {"k": self.k, "rescale_acts_by_decoder_norm": False}

    @classmethod
    def fields_from_saelens(cls, raw: dict[str, Any]) -> dict[str, Any]:
        k = raw.get("k", (raw.get("activation_fn_kwargs") or {}).get("k"))
        if k is None:
            raise InterplabError("TopK cfg.json lacks 'k'")
        return {"k": int(k)}


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
    cfg: Any = sae.cfg  # an AuxKFields config
    scale = min(n_dead / cfg.k_aux_eff, 1.0)
    return cfg.auxk_alpha * scale * (e_hat_BD - err_BD).pow(2).sum(-1).mean()


def dead_indices(sae: SAE, state: TrainState, device: torch.device) -> Tensor:
    """Long indices of the dead latents in `state` (empty without a mask). One host sync."""
    if state.dead_mask_F is None:
        return torch.zeros(0, dtype=torch.long, device=device)
    mask = state.dead_mask_F.to(device=device, dtype=torch.bool)
    if mask.shape != (sae.cfg.d_sae,):
        raise InterplabError(f"dead_mask_F must have shape ({sae.cfg.d_sae},), got {tuple(mask.shape)}")
    return mask.nonzero().squeeze(-1)


@register_sae
class TopKSAE(SAE):
    """ReLU of the k largest pre-activations per token; unit-norm decoder; AuxK dead-latent loss."""

    config_class = TopKConfig
    cfg: TopKConfig

    def activation(self, pre: Tensor) -> Tensor:
        values, idx = pre.topk(self.cfg.k, dim=-1, sorted=False)
        return torch.zeros_like(pre).scatter(-1, idx, values.relu())

    def encode_sparse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(values [..., k], indices [..., k]) of the kept latents (ReLU applied, unsorted), without the
        dense [.., d_sae] output. Without gradients it runs the training kernel's encoder (row blocks on
        CPU, exact group-maxima top-k): the same values as `encode`, up to an ulp of the matmul."""
        sae_in = self.sae_input(x)
        if torch.is_grad_enabled() and (sae_in.requires_grad or self.W_enc.requires_grad):
            values, idx = (sae_in @ self.W_enc + self.b_enc).topk(self.cfg.k, dim=-1, sorted=False)
            return values.relu(), idx
        flat_ND = sae_in.reshape(-1, self.cfg.d_in)
        no_dead = torch.zeros(0, dtype=torch.long, device=flat_ND.device)
        values, idx, _, _ = encode_topk(flat_ND, self.W_enc, self.b_enc, self.cfg.k, no_dead, 0)
        shape = (*sae_in.shape[:-1], self.cfg.k)
        return values.view(shape), idx.view(shape)

    def training_forward(self, x_BD: Tensor, state: TrainState | None = None) -> TrainOutput:
        state = state or TrainState()
        self._check_input(x_BD)
        x_BD = x_BD.to(self.dtype)
        dead_N = dead_indices(self, state, x_BD.device)
        n_dead = dead_N.numel()
        k, k_aux = self.cfg.k, self.cfg.k_aux_eff
        if self.cfg.sparse_kernel:
            out = topk_train_forward(x_BD, self.b_dec, self.W_enc, self.b_enc, self.W_dec, k, dead_N, k_aux,
                                     self.cfg.apply_b_dec_to_input)
            mse, x_hat_BD, resid_BD = out.mse, out.x_hat_BD, out.resid_BD
            values, idx, aux_v, aux_i = out.values_BK, out.idx_BK, out.aux_values_BA, out.aux_idx_BA
            fvu = mse.detach() * x_BD.shape[0] / out.total.clamp_min(1e-12)
        else:
            pre_BF = self.pre_acts(x_BD)
            values, idx = pre_BF.topk(k, dim=-1, sorted=False)
            values = values.relu()
            aux_v, aux_i = topk_among_dead(pre_BF, dead_N, k_aux)
            x_hat_BD = self.decode(dense_from_sparse(values, idx, self.cfg.d_sae))
            mse, fvu = self._reconstruction_stats(x_BD, x_hat_BD)
            resid_BD = (x_BD - x_hat_BD).detach()
        aux = auxk_loss(self, resid_BD, aux_v, aux_i, n_dead, self.cfg.sparse_kernel)
        return TrainOutput.from_topk(x_hat_BD, values, idx, self.cfg.d_sae, mse, fvu, aux)


# keep sparse_decode_plain importable from here for callers decoding (values, indices) pairs
__all__ = ["TopKSAE", "auxk_loss", "dense_from_sparse", "sparse_decode_plain"]
