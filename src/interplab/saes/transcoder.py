"""Transcoders and skip-transcoders: sparse layers that read one activation and predict another.

Transcoders (Dunefsky, Chlenski & Nanda 2024, "Transcoders find interpretable LLM feature circuits",
arXiv:2406.11944) read an MLP's input and predict its output, so their latents connect linearly
across layers; skip-transcoders (Paulo, Shabalin & Belrose 2025, "Transcoders beat sparse
autoencoders for interpretability", arXiv:2501.18823) add a dense linear path that takes the part of
the MLP that is linear, leaving the latents for the rest.

1. pre = x @ W_enc + b_enc (no b_dec subtraction: b_dec lives in the output space).
2. latents z = TopK-ReLU(pre) or JumpReLU(pre) (the architecture this file's classes extend).
3. y_hat = z @ W_dec + b_dec (+ x @ W_skip.T for skip-transcoders; W_skip [d_out, d_in] starts at 0).
4. loss = ‖y - y_hat‖² (+ AuxK for TopK, + λ·L0 for JumpReLU), y the target batch the trainer
   passes as `target_BD` (when it is None the transcoder reconstructs its input, like an SAE).

Layout on disk is SAELens v6's (`W_dec` [d_sae, d_out], `b_dec` [d_out], `W_skip` [d_out, d_in],
JumpReLU `threshold`): `jumprelu_transcoder` / `jumprelu_skip_transcoder` load in SAELens;
SAELens has no TopK transcoder, so those write sparsify's layout too (transcoder_io.py).

TopK transcoders train through `TranscoderTopKKernel` below (sparse decode and sparse weight
gradients, as in sparse_ops.py) unless `cfg.sparse_kernel` is False (the dense reference).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn
from torch.autograd.function import FunctionCtx

from interplab.common import InterplabError
from interplab.saes.base import SAEConfig, SAEOutput, TrainOutput, TrainState
from interplab.saes.jumprelu import JumpReLUConfig, JumpReLUFn, JumpReLUSAE, StepFn
from interplab.saes.penalties import latent_costs
from interplab.saes.registry import register_sae
from interplab.saes.sparse_ops import (
    encode_topk,
    sampled_dot,
    scatter_outer,
    sparse_decode_plain,
    topk_among_dead,
)
from interplab.saes.topk import TopKConfig, TopKSAE, auxk_loss, dead_indices, dense_from_sparse


@dataclass
class TranscoderFields(SAEConfig):
    """Fields every transcoder adds: the output width. Skip or not is the architecture (a ClassVar)."""

    skip: ClassVar[bool] = False
    """Whether the architecture has the linear skip path W_skip."""

    apply_b_dec_to_input: bool = False
    """Must stay False: b_dec is an output-space bias (SAELens refuses True for transcoders too)."""
    d_out: int | None = None
    """Width of the target activation; None means d_in (an MLP's input and output are both d_model)."""

    @property
    def d_target(self) -> int:
        """The output width actually used."""
        return self.d_out if self.d_out is not None else self.d_in

    def check(self) -> None:
        super().check()
        if self.apply_b_dec_to_input:
            raise InterplabError("transcoders cannot subtract b_dec from their input (it is an output bias)")
        if self.d_out is not None and self.d_out <= 0:
            raise InterplabError(f"transcoder d_out must be positive, got {self.d_out}")

    def saelens_fields(self) -> dict[str, Any]:
        return {**super().saelens_fields(), "d_out": self.d_target}

    @classmethod
    def fields_from_saelens(cls, raw: dict[str, Any]) -> dict[str, Any]:
        d_out = raw.get("d_out")
        return {**super().fields_from_saelens(raw), "apply_b_dec_to_input": False,
                "d_out": int(d_out) if d_out is not None else None}


@dataclass
class TopKTranscoderConfig(TranscoderFields, TopKConfig):
    """TopK transcoder (no SAELens class; saved SAELens-style with our config, and sparsify-style)."""

    architecture: ClassVar[str] = "topk_transcoder"
    saelens_architecture: ClassVar[str] = "topk_transcoder"
    saelens_reads: ClassVar[tuple[str, ...]] = ()


@dataclass
class TopKSkipTranscoderConfig(TopKTranscoderConfig):
    """TopK skip-transcoder (sparsify's `transcode=True, skip_connection=True`)."""

    architecture: ClassVar[str] = "topk_skip_transcoder"
    saelens_architecture: ClassVar[str] = "topk_skip_transcoder"
    saelens_reads: ClassVar[tuple[str, ...]] = ()
    skip: ClassVar[bool] = True


@dataclass
class JumpReLUTranscoderConfig(TranscoderFields, JumpReLUConfig):
    """JumpReLU transcoder (SAELens `jumprelu_transcoder`)."""

    architecture: ClassVar[str] = "jumprelu_transcoder"
    saelens_architecture: ClassVar[str] = "jumprelu_transcoder"
    saelens_reads: ClassVar[tuple[str, ...]] = ("jumprelu_transcoder",)


@dataclass
class JumpReLUSkipTranscoderConfig(JumpReLUTranscoderConfig):
    """JumpReLU skip-transcoder (SAELens `jumprelu_skip_transcoder`)."""

    architecture: ClassVar[str] = "jumprelu_skip_transcoder"
    saelens_architecture: ClassVar[str] = "jumprelu_skip_transcoder"
    saelens_reads: ClassVar[tuple[str, ...]] = ("jumprelu_skip_transcoder",)
    skip: ClassVar[bool] = True


class TranscoderMixin:
    """Output-space decoder, optional skip path and (input, target) training; mixed before an SAE class."""

    cfg: Any
    W_dec: nn.Parameter
    b_dec: nn.Parameter

    def _init_transcoder(self) -> None:
        cfg = self.cfg
        if cfg.d_target != cfg.d_in:  # the base class built a [d_sae, d_in] decoder; rebuild it
            gen = torch.Generator().manual_seed(cfg.seed + 1)
            w_FO = torch.randn(cfg.d_sae, cfg.d_target, generator=gen, dtype=self.W_dec.dtype)
            norm = 1.0 if cfg.normalize_decoder else 0.1
            self.W_dec = nn.Parameter(w_FO / w_FO.norm(dim=-1, keepdim=True) * norm)
            self.b_dec = nn.Parameter(torch.zeros(cfg.d_target, dtype=self.W_dec.dtype))
        if cfg.skip:
            self.W_skip = nn.Parameter(torch.zeros(cfg.d_target, cfg.d_in, dtype=self.W_dec.dtype))

    def skip_out(self, x: Tensor) -> Tensor | None:
        """x @ W_skip.T [..., d_out], or None without a skip path."""
        if not self.cfg.skip:
            return None
        return x.to(self.W_skip.dtype) @ self.W_skip.T

    def forward(self, x: Tensor) -> SAEOutput:
        z = self.encode(x)  # type: ignore[attr-defined]
        y_hat = self.decode(z)  # type: ignore[attr-defined]
        skip = self.skip_out(x)
        return SAEOutput(x_hat=y_hat if skip is None else y_hat + skip, latents=z)

    def _target(self, x_BD: Tensor, target_BD: Tensor | None) -> Tensor:
        y_BD = x_BD if target_BD is None else target_BD
        if y_BD.shape[-1] != self.cfg.d_target or y_BD.shape[0] != x_BD.shape[0]:
            raise InterplabError(f"transcoder target has shape {tuple(y_BD.shape)}; expected "
                                 f"[{x_BD.shape[0]}, {self.cfg.d_target}]")
        return y_BD.to(self.W_dec.dtype)

    def export_tensors(self) -> dict[str, Tensor]:
        out = super().export_tensors()  # type: ignore[misc]
        if self.cfg.skip:
            out["W_skip"] = self.W_skip.detach().contiguous()
        return out

    def expected_shapes(self) -> dict[str, tuple[int, ...]]:
        d, f, o = self.cfg.d_in, self.cfg.d_sae, self.cfg.d_target
        shapes = {**super().expected_shapes(), "W_dec": (f, o), "b_dec": (o,)}  # type: ignore[misc]
        if self.cfg.skip:
            shapes["W_skip"] = (o, d)
        return shapes


def _fvu(err_sq: Tensor, y_BD: Tensor) -> Tensor:
    total = (y_BD - y_BD.mean(0)).pow(2).sum().clamp_min(1e-12)
    return err_sq.detach() / total


class TranscoderTopKKernel(torch.autograd.Function):
    """TopK transcoder step as one autograd node: encode x, top-k, decode, squared error to y.

    Inputs: x_BD (data, no grad), y_BD (target; gets a gradient, so a skip path feeding it trains),
    w_enc_DF, b_enc_F, w_dec_FO, b_dec_O, k, dead_idx_N, k_aux. Returns mse (Σ over d_out, mean over
    rows), y_hat_BO (no grad), values_BK, idx_BK, aux_values_BA, aux_idx_BA. Backward follows
    sparse_ops.TopKTrainKernel with the target separate from the input.
    """

    @staticmethod
    def forward(ctx: FunctionCtx, x_BD: Tensor, y_BO: Tensor, w_enc_DF: Tensor, b_enc_F: Tensor,  # type: ignore[override]
                w_dec_FO: Tensor, b_dec_O: Tensor, k: int, dead_idx_N: Tensor, k_aux: int):
        values_BK, idx_BK, aux_v, aux_i = encode_topk(x_BD, w_enc_DF, b_enc_F, k, dead_idx_N, k_aux)
        y_hat_BO = sparse_decode_plain(values_BK, idx_BK, w_dec_FO).add_(b_dec_O)
        resid_BO = y_BO - y_hat_BO
        mse = torch.linalg.vector_norm(resid_BO).square() / x_BD.shape[0]
        ctx.set_materialize_grads(False)
        ctx.mark_non_differentiable(y_hat_BO, idx_BK, aux_i)
        ctx.save_for_backward(x_BD, resid_BO, w_enc_DF, w_dec_FO, values_BK, idx_BK, aux_v, aux_i)
        return mse, y_hat_BO, values_BK, idx_BK, aux_v, aux_i

    @staticmethod
    def backward(ctx: FunctionCtx, g_mse, _g_yhat, g_values, _g_idx, g_aux, _g_aux_idx):  # type: ignore[override]
        x_BD, resid_BO, w_enc_DF, w_dec_FO, values_BK, idx_BK, aux_v, aux_i = ctx.saved_tensors  # type: ignore[attr-defined]
        F = w_enc_DF.shape[1]
        d_yhat_BO = resid_BO * (-2.0 / resid_BO.shape[0] * g_mse) if g_mse is not None else torch.zeros_like(resid_BO)
        d_v_BK = sampled_dot(d_yhat_BO, w_dec_FO, idx_BK).to(values_BK.dtype)
        if g_values is not None:
            d_v_BK = d_v_BK + g_values
        g_BK = d_v_BK * (values_BK > 0)  # the ReLU after the top-k
        g_all, i_all = g_BK, idx_BK
        if aux_i.shape[1] and g_aux is not None:
            g_all, i_all = torch.cat([g_BK, g_aux * (aux_v > 0)], 1), torch.cat([idx_BK, aux_i], 1)
        d_w_dec = scatter_outer(idx_BK, values_BK, d_yhat_BO, F).to(w_dec_FO.dtype)
        d_w_enc = scatter_outer(i_all, g_all, x_BD, F).T.to(w_enc_DF.dtype)
        acc = torch.promote_types(g_all.dtype, torch.float32)
        d_b_enc = torch.zeros(F, dtype=acc, device=g_all.device).index_add_(
            0, i_all.reshape(-1), g_all.reshape(-1).to(acc)).to(w_enc_DF.dtype)
        d_y = -d_yhat_BO if ctx.needs_input_grad[1] else None  # type: ignore[attr-defined]
        return None, d_y, d_w_enc, d_b_enc, d_w_dec, d_yhat_BO.sum(0), None, None, None


@register_sae
class TopKTranscoder(TranscoderMixin, TopKSAE):
    """TopK transcoder: TopK-ReLU latents, unit-norm decoder rows, AuxK for dead latents."""

    config_class = TopKTranscoderConfig
    cfg: TopKTranscoderConfig

    def __init__(self, cfg: SAEConfig):
        super().__init__(cfg)
        self._init_transcoder()

    def training_forward(self, x_BD: Tensor, state: TrainState | None = None,
                         target_BD: Tensor | None = None) -> TrainOutput:
        state = state or TrainState()
        self._check_input(x_BD)
        y_BO = self._target(x_BD, target_BD)
        x_BD = x_BD.to(self.dtype)
        dead_N = dead_indices(self, state, x_BD.device)
        skip_BO = self.skip_out(x_BD)
        fit_BO = y_BO if skip_BO is None else y_BO - skip_BO  # what the latents must explain
        k, k_aux = self.cfg.k, self.cfg.k_aux_eff
        if self.cfg.sparse_kernel:
            mse, y_hat_BO, values, idx, aux_v, aux_i = TranscoderTopKKernel.apply(
                x_BD, fit_BO, self.W_enc, self.b_enc, self.W_dec, self.b_dec, k, dead_N, k_aux)
            resid_BO = (fit_BO - y_hat_BO).detach()
        else:
            pre_BF = self.pre_acts(x_BD)
            values, idx = pre_BF.topk(k, dim=-1, sorted=False)
            values = values.relu()
            y_hat_BO = self.decode(dense_from_sparse(values, idx, self.cfg.d_sae))
            mse = (fit_BO - y_hat_BO).pow(2).sum(-1).mean()
            resid_BO = (fit_BO - y_hat_BO).detach()
            aux_v, aux_i = topk_among_dead(pre_BF, dead_N, k_aux)
        aux = auxk_loss(self, resid_BO, aux_v, aux_i, dead_N.numel(), self.cfg.sparse_kernel)
        full_BO = y_hat_BO.detach() if skip_BO is None else y_hat_BO.detach() + skip_BO.detach()
        fvu = _fvu(mse * x_BD.shape[0], y_BO)
        return TrainOutput.from_topk(full_BO, values, idx, self.cfg.d_sae, mse, fvu, aux)


@register_sae
class TopKSkipTranscoder(TopKTranscoder):
    """TopK transcoder plus a linear skip path."""

    config_class = TopKSkipTranscoderConfig
    cfg: TopKSkipTranscoderConfig


@register_sae
class JumpReLUTranscoder(TranscoderMixin, JumpReLUSAE):
    """JumpReLU transcoder: per-latent thresholds, L0 penalty through straight-through gradients."""

    config_class = JumpReLUTranscoderConfig
    cfg: JumpReLUTranscoderConfig

    def __init__(self, cfg: SAEConfig):
        super().__init__(cfg)
        self._init_transcoder()

    def training_forward(self, x_BD: Tensor, state: TrainState | None = None,
                         target_BD: Tensor | None = None) -> TrainOutput:
        state = state or TrainState()
        self._check_input(x_BD)
        y_BO = self._target(x_BD, target_BD)
        x_BD = x_BD.to(self.dtype)
        pre_BF = self.pre_acts(x_BD)
        theta_F, eps = self.threshold, self.cfg.bandwidth
        z_BF = JumpReLUFn.apply(pre_BF, theta_F, eps)
        y_hat_BO = self.decode(z_BF)
        skip_BO = self.skip_out(x_BD)
        if skip_BO is not None:
            y_hat_BO = y_hat_BO + skip_BO
        mse, fvu = self._reconstruction_stats(y_BO, y_hat_BO)
        step_BF = StepFn.apply(pre_BF, theta_F, eps)
        costs_F = latent_costs(self.cfg, state.freq_F, self.cfg.d_sae)
        if costs_F is not None:
            step_BF = step_BF * costs_F.to(step_BF)
        sparsity = self.cfg.l0_coeff * state.sparsity_scale * step_BF.sum(-1).mean()
        return TrainOutput.from_dense(y_hat_BO, z_BF, mse, fvu, sparsity=sparsity)


@register_sae
class JumpReLUSkipTranscoder(JumpReLUTranscoder):
    """JumpReLU transcoder plus a linear skip path."""

    config_class = JumpReLUSkipTranscoderConfig
    cfg: JumpReLUSkipTranscoderConfig


@torch.no_grad()
def fold_transcoder_scales_(tc: Any, in_scale: float, out_scale: float) -> None:
    """Make a transcoder trained on (in_scale·x, out_scale·y) read x and predict y, exactly.

    pre = (s_in x) W_enc + b_enc, so W_enc ← s_in W_enc (pre-activations, thresholds and top-k are
    unchanged); y = y'/s_out, so W_dec, b_dec ← /s_out and W_skip ← W_skip · s_in / s_out. The decoder
    rows then have norm 1/s_out (SAELens folds its activation-norm scaling factor the same way).
    """
    if not is_transcoder(tc):
        raise InterplabError("only transcoders fold input and output scales")
    tc.W_enc.mul_(in_scale)
    tc.W_dec.div_(out_scale)
    tc.b_dec.div_(out_scale)
    if tc.cfg.skip:
        tc.W_skip.mul_(in_scale / out_scale)


def is_transcoder(sae: Any) -> bool:
    """True for the transcoder classes of this file (they take (input, target) pairs)."""
    return isinstance(sae, TranscoderMixin)
