"""Matryoshka BatchTopK SAE (Bussmann, Nabeshima, Karvonen & Nanda 2025, "Learning Multi-Level Features
with Matryoshka Sparse Autoencoders", arXiv:2503.17547; Nabeshima 2024, "Matryoshka Sparse Autoencoders").

1. Latents come from BatchTopK exactly as in batchtopk.py (k·B largest ReLU pre-activations of the
   batch in training; a learned global threshold θ at inference).
2. The dictionary is cut into nested prefixes of widths m_1 < m_2 < ... < m_n = d_sae. Prefix i
   reconstructs alone: x̂_i = z[:, :m_i] @ W_dec[:m_i] + b_dec.
3. loss = Σ_i ‖x - x̂_i‖² + α · AuxK   (the last term of the sum is the ordinary reconstruction).
   The first latents must explain x without help from later ones, so a general direction ("starts
   with S") keeps its own early latent instead of being folded into many specific late latents:
   the absorption that a flat sparsity budget rewards is penalised by the short prefixes.
4. Inference is plain BatchTopK: pre·1[pre > θ] after ReLU, the same rule as a JumpReLU with θ in every
   latent, so the saved folder is a SAELens "jumprelu" folder (as SAELens saves its own
   MatryoshkaBatchTopK SAEs) and loads there with identical outputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from torch import Tensor

from interplab.common import InterplabError
from interplab.saes.base import TrainOutput, TrainState
from interplab.saes.batchtopk import BatchTopKConfig, BatchTopKSAE
from interplab.saes.registry import register_sae
from interplab.saes.sparse_ops import topk_among_dead
from interplab.saes.topk import auxk_loss, dead_indices


@dataclass
class MatryoshkaConfig(BatchTopKConfig):
    """Matryoshka BatchTopK SAE: the BatchTopK fields and the nested prefix widths."""

    architecture: ClassVar[str] = "matryoshka"
    saelens_architecture: ClassVar[str] = "jumprelu"  # the inference rule; SAELens saves its own this way
    saelens_reads: ClassVar[tuple[str, ...]] = ("matryoshka_batchtopk",)

    prefixes: tuple[int, ...] | None = None
    """Nested dictionary widths, strictly increasing, the last equal to d_sae (e.g. 128,512,2048,8192).
    None: d_sae/8, d_sae/4, d_sae/2, d_sae (the widths that are at least 1)."""

    @property
    def widths(self) -> tuple[int, ...]:
        """The prefix widths actually used, ending with d_sae."""
        if self.prefixes is not None:
            return tuple(self.prefixes)
        halves = [self.d_sae // 8, self.d_sae // 4, self.d_sae // 2]
        return tuple(dict.fromkeys(w for w in halves if w >= 1)) + (self.d_sae,)

    def check(self) -> None:
        super().check()
        w = self.widths
        if not w or w[-1] != self.d_sae or any(a >= b for a, b in zip(w, w[1:], strict=False)) or w[0] < 1:
            raise InterplabError(f"matryoshka prefixes must increase strictly from >= 1 and end at d_sae="
                                 f"{self.d_sae}, got {list(w)}")


@register_sae
class MatryoshkaSAE(BatchTopKSAE):
    """BatchTopK latents trained so that every prefix of the dictionary reconstructs on its own."""

    config_class = MatryoshkaConfig
    cfg: MatryoshkaConfig

    def prefix_reconstructions(self, z_BF: Tensor) -> list[Tensor]:
        """x̂_i [B, d_in] of every prefix, shortest first (the last is the full reconstruction).

        Group by group: prefix i adds the decode of latents m_{i-1}..m_i to prefix i-1, so all of
        them together cost one full decode.
        """
        out, acc_BD, start = [], self.b_dec.expand(z_BF.shape[0], -1), 0
        for width in self.cfg.widths:
            acc_BD = acc_BD + z_BF[:, start:width] @ self.W_dec[start:width]
            out.append(acc_BD)
            start = width
        return out

    def training_forward(self, x_BD: Tensor, state: TrainState | None = None) -> TrainOutput:
        state = state or TrainState()
        self._check_input(x_BD)
        x_BD = x_BD.to(self.dtype)
        dead_N = dead_indices(self, state, x_BD.device)
        pre_BF = self.pre_acts(x_BD)
        z_BF = self.batch_topk(pre_BF)
        if self.training:
            self.update_threshold_(z_BF.detach())
        *inner, x_hat_BD = self.prefix_reconstructions(z_BF)
        mse, fvu = self._reconstruction_stats(x_BD, x_hat_BD)
        inner_mse = sum(((x_i - x_BD).pow(2).sum(-1).mean() for x_i in inner), start=mse.new_zeros(()))
        aux_v, aux_i = topk_among_dead(pre_BF, dead_N, self.cfg.k_aux_eff)
        aux = auxk_loss(self, (x_BD - x_hat_BD).detach(), aux_v, aux_i, dead_N.numel(), sparse=False)
        out = TrainOutput.from_dense(x_hat_BD, z_BF, mse, fvu, aux=aux)
        return out._replace(loss=out.loss + inner_mse)
