"""RMU, Representation Misdirection for Unlearning (Li et al. 2024, "The WMDP Benchmark",
arXiv:2403.03218).

1. Draw a random unit vector u (seeded) and set the target c·u, with c = `steer_scale` × the mean norm of
   the organism's residual stream at layer L on forget tokens (the paper's fixed c is tuned per model;
   tying it to the norm carries over between models).
2. Record the organism's layer-L activations on the retain batches (the "frozen" model).
3. Train only the MLPs of layers L-`update_layers`+1 .. L on
       L = mean ‖h_L(x_forget) - c·u‖²  +  α · mean ‖h_L(x_retain) - h_L^frozen(x_retain)‖²
   The forget term counts tokens from the person's name on (the template words before it are shared with
   the retain set, so they cannot be told apart there); the retain term counts every real token.
Only layers up to L run (the rest of the forward pass is skipped), so a step costs L/n_layers of one.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from interplab.common import InterplabError
from interplab.models import LoadedModel, replace_activation
from interplab.models.hookpoints import block_list
from interplab.training.causal_lm import adamw, encode_pairs, only_training, optimizer_step, shuffled_batches
from interplab.unlearning.methods.base import UnlearningData, from_name_mask
from interplab.unlearning.served import ServedModel


@dataclass
class RMUConfig:
    """Representation misdirection: scramble the forget set's activations at one layer."""

    layer: int | None = None
    """Layer L whose residual stream (blocks.L.resid_post) is steered (None: a quarter of the depth)."""
    update_layers: int = 3
    """Train the MLPs of this many layers ending at L."""
    steer_scale: float = 4.0
    """Target norm c as a multiple of the mean residual norm at L on forget tokens."""
    alpha: float = 10.0
    """Weight α of the retain term."""
    steps: int = 30
    """Optimiser steps."""
    batch_size: int = 8
    """Forget items per step (and as many retain items)."""
    lr: float = 2e-3
    """AdamW learning rate (constant). At 5e-5 (the paper's, for 7B models and hundreds of steps) the
    loss barely moves in 30 steps on SmolLM2-135M; 2e-3 is the weakest rate of bench/unlearning_strength.py
    that makes its organism forget (forget 0.17, retain 0.97)."""

    def check(self, n_layers: int) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.lr <= 0 or self.update_layers < 1:
            raise InterplabError("RMU needs steps, batch_size, update_layers >= 1 and lr > 0")
        if self.layer is not None and not 0 <= self.layer < n_layers:
            raise InterplabError(f"RMU layer must be in 0..{n_layers - 1}, got {self.layer}")


def rmu_layer(cfg: RMUConfig, n_layers: int) -> int:
    return cfg.layer if cfg.layer is not None else max(0, n_layers // 4)


class _Reached(Exception):
    """Raised by the hook once layer L has run, to skip the rest of the forward pass."""


def resid_with_grad(model: nn.Module, inputs: dict[str, Tensor], layer: int) -> Tensor:
    """blocks.{layer}.resid_post [batch, seq, d] with its autograd graph; later layers never run."""
    got: list[Tensor] = []

    def grab(x: Tensor) -> None:
        got.append(x)
        raise _Reached

    with replace_activation(model, f"blocks.{layer}.resid_post", grab):
        try:
            model(**inputs)
        except _Reached:
            pass
    return got[0]


def mlp_parameters(model: nn.Module, layers: range) -> list[nn.Parameter]:
    """The MLP weights of `layers` (a whole block where the block has no `mlp`)."""
    blocks = block_list(model)
    out: list[nn.Parameter] = []
    for i in layers:
        out += list(getattr(blocks[i], "mlp", blocks[i]).parameters())
    return out


def rmu(lm: LoadedModel, data: UnlearningData, cfg: RMUConfig, seed: int) -> ServedModel:
    cfg.check(lm.n_layers)
    model, tok, layer = lm.model, lm.tokenizer, rmu_layer(cfg, lm.n_layers)
    forget, retain = data.forget_items(), data.retain_items()
    epochs = -(-cfg.steps * cfg.batch_size // max(min(len(forget), len(retain)), 1)) + 1
    f_steps = list(itertools.islice(shuffled_batches(forget, cfg.batch_size, epochs, seed), cfg.steps))
    r_steps = list(itertools.islice(shuffled_batches(retain, cfg.batch_size, epochs, seed + 1), cfg.steps))
    f_batches = [encode_pairs(tok, [(i.prompt, i.answer) for i in b], lm.device) for b in f_steps]
    r_batches = [encode_pairs(tok, [(i.prompt, i.answer) for i in b], lm.device) for b in r_steps]
    f_masks = [from_name_mask(tok, b, fb.attention_mask) for b, fb in zip(f_steps, f_batches, strict=True)]
    with torch.no_grad():
        frozen = [resid_with_grad(model, rb.model_inputs(), layer) for rb in r_batches]
        norms = [resid_with_grad(model, fb.model_inputs(), layer)[m].norm(dim=-1) for fb, m in zip(f_batches, f_masks, strict=True)]
    gen = torch.Generator().manual_seed(seed)
    u_D = torch.rand(lm.d_model, generator=gen)
    target_D = (cfg.steer_scale * float(torch.cat(norms).mean()) * u_D / u_D.norm()).to(lm.device)
    params = mlp_parameters(model, range(max(0, layer - cfg.update_layers + 1), layer + 1))
    opt = adamw(params, cfg.lr)  # fused: one pass over each tensor per step
    model.train()
    try:
        with only_training(model, params):
            for step in range(cfg.steps):
                h_f = resid_with_grad(model, f_batches[step].model_inputs(), layer)[f_masks[step]]
                r_mask = r_batches[step].attention_mask.bool()
                h_r = resid_with_grad(model, r_batches[step].model_inputs(), layer)[r_mask]
                loss = ((h_f - target_D) ** 2).mean() + cfg.alpha * ((h_r - frozen[step][r_mask]) ** 2).mean()
                optimizer_step(model, opt, params, loss, cfg.lr, None, step)
    finally:
        model.eval()
    return ServedModel(lm)
