"""JumpReLU SAE (Rajamanoharan et al. 2024, "Jumping Ahead: Improving Reconstruction Fidelity with
JumpReLU Sparse Autoencoders", arXiv:2407.14435).

1. pre = (x - b_dec·apply) @ W_enc + b_enc; latents f_i = pre_i · H(pre_i - θ_i), θ_i = exp(log θ_i) > 0.
2. loss = ‖x - x_hat‖² + λ Σ_i c_i H(pre_i - θ_i)   (an L0 penalty; c_i as in penalties.py or 1).
3. H has zero gradient almost everywhere, so θ learns through straight-through pseudo-derivatives
   with a rectangle kernel K(u) = 1[|u| < 1/2] of bandwidth ε (the paper's eqs. 11-12):
     ∂/∂θ [pre · H(pre - θ)] := -(θ/ε) K((pre - θ)/ε)
     ∂/∂θ H(pre - θ)         := -(1/ε) K((pre - θ)/ε)
   Gradients with respect to pre are the true ones: H(pre - θ) for JumpReLU, 0 for the step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn
from torch.autograd.function import FunctionCtx

from interplab.common import InterplabError
from interplab.saes.base import SAE, SAEConfig, TrainOutput, TrainState
from interplab.saes.penalties import FrequencyPenaltyFields, latent_costs
from interplab.saes.registry import register_sae


@dataclass
class JumpReLUConfig(FrequencyPenaltyFields, SAEConfig):
    """JumpReLU SAE: the shared fields, the L0 coefficient, the threshold's kernel and start."""

    architecture: ClassVar[str] = "jumprelu"
    saelens_architecture: ClassVar[str] = "jumprelu"
    saelens_reads: ClassVar[tuple[str, ...]] = ("jumprelu",)
    _RENAMED: ClassVar[dict[str, str]] = {"jumprelu_bandwidth": "bandwidth",
                                          "jumprelu_init_threshold": "init_threshold"}

    l0_coeff: float = 1.0
    """Weight of the L0 penalty (JumpReLU's sparsity coefficient)."""
    bandwidth: float = 0.001
    """Width ε of the rectangle kernel in the straight-through threshold gradient."""
    init_threshold: float = 0.001
    """Initial threshold of every latent."""

    def check(self) -> None:
        super().check()
        self.check_penalty()
        if self.init_threshold <= 0 or self.bandwidth <= 0:
            raise InterplabError("JumpReLU needs init_threshold > 0 and bandwidth > 0")


def rectangle(u: Tensor) -> Tensor:
    """K(u) = 1 for |u| < 1/2, else 0."""
    return (u.abs() < 0.5).to(u.dtype)


def _sum_to(grad: Tensor, shape: torch.Size) -> Tensor:
    """Sum a broadcast gradient back to the threshold's shape [d_sae]."""
    return grad.reshape(-1, shape[-1]).sum(0).reshape(shape)


class JumpReLUFn(torch.autograd.Function):
    """pre · H(pre - θ) with the straight-through threshold gradient."""

    @staticmethod
    def forward(ctx: FunctionCtx, pre: Tensor, threshold: Tensor, bandwidth: float) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(pre, threshold)
        ctx.bandwidth = bandwidth  # type: ignore[attr-defined]
        return pre * (pre > threshold)

    @staticmethod
    def backward(ctx: FunctionCtx, grad: Tensor):  # type: ignore[override]
        pre, threshold = ctx.saved_tensors  # type: ignore[attr-defined]
        eps = ctx.bandwidth  # type: ignore[attr-defined]
        d_pre = grad * (pre > threshold)
        d_th = -(threshold / eps) * rectangle((pre - threshold) / eps) * grad
        return d_pre, _sum_to(d_th, threshold.shape), None


class StepFn(torch.autograd.Function):
    """H(pre - θ) with the straight-through threshold gradient (no gradient to pre)."""

    @staticmethod
    def forward(ctx: FunctionCtx, pre: Tensor, threshold: Tensor, bandwidth: float) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(pre, threshold)
        ctx.bandwidth = bandwidth  # type: ignore[attr-defined]
        return (pre > threshold).to(pre.dtype)

    @staticmethod
    def backward(ctx: FunctionCtx, grad: Tensor):  # type: ignore[override]
        pre, threshold = ctx.saved_tensors  # type: ignore[attr-defined]
        eps = ctx.bandwidth  # type: ignore[attr-defined]
        d_th = -(1.0 / eps) * rectangle((pre - threshold) / eps) * grad
        return torch.zeros_like(pre), _sum_to(d_th, threshold.shape), None


@register_sae
class JumpReLUSAE(SAE):
    """Per-latent learned thresholds; L0 penalty trained through straight-through estimators."""

    config_class = JumpReLUConfig
    cfg: JumpReLUConfig

    def __init__(self, cfg: SAEConfig):
        super().__init__(cfg)
        log_th = torch.full((self.cfg.d_sae,), math.log(self.cfg.init_threshold), dtype=self.W_dec.dtype)
        self.log_threshold = nn.Parameter(log_th)

    @property
    def threshold(self) -> Tensor:
        """[d_sae] thresholds θ = exp(log θ)."""
        return self.log_threshold.exp()

    def activation(self, pre: Tensor) -> Tensor:
        return pre * (pre > self.threshold)

    def training_forward(self, x_BD: Tensor, state: TrainState | None = None) -> TrainOutput:
        state = state or TrainState()
        x_BD = x_BD.to(self.dtype)
        pre_BF = self.pre_acts(x_BD)
        theta_F = self.threshold
        eps = self.cfg.bandwidth
        z_BF = JumpReLUFn.apply(pre_BF, theta_F, eps)
        x_hat_BD = self.decode(z_BF)
        mse, fvu = self._reconstruction_stats(x_BD, x_hat_BD)
        step_BF = StepFn.apply(pre_BF, theta_F, eps)
        costs_F = latent_costs(self.cfg, state.freq_F, self.cfg.d_sae)
        if costs_F is not None:
            step_BF = step_BF * costs_F.to(step_BF)
        sparsity = self.cfg.l0_coeff * state.sparsity_scale * step_BF.sum(-1).mean()
        return TrainOutput.from_dense(x_hat_BD, z_BF, mse, fvu, sparsity=sparsity)

    # SAELens stores the threshold itself, not its log.
    def export_tensors(self) -> dict[str, Tensor]:
        return {**super().export_tensors(), "threshold": self.threshold.detach().contiguous()}

    def expected_shapes(self) -> dict[str, tuple[int, ...]]:
        return {**super().expected_shapes(), "threshold": (self.cfg.d_sae,)}

    def _import_one_(self, name: str, t: Tensor) -> None:
        if name != "threshold":
            return super()._import_one_(name, t)
        # Thresholds <= 0 (an untrained peer file) are clamped to a tiny positive value so the
        # log parameter stays finite; pre > 1e-30 and pre > 0 differ only on exact zeros.
        th = t.to(device=self.log_threshold.device, dtype=torch.float64).clamp_min(1e-30)
        self.log_threshold.copy_(th.log().to(self.log_threshold.dtype))
