"""Training the Dyck transformer from scratch (a straight loop: the model is tiny and a run takes a minute or two).

Per step:
1. Take a batch of rows of the training set (a seeded permutation per epoch; the step says which rows).
2. Loss = balanced cross-entropy + `depth_weight` × per-token depth cross-entropy
   + `head_penalty` × Σ over heads of the mean L2 norm of the head's output (a group-lasso push towards
   few heads, so the circuit that remains is small enough to read off with ablations).
3. AdamW step with the learning rate from `training.lr_at` (warm-up, constant, linear decay at the end).
No checkpoints: a run is shorter than the time a resume would save.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from interplab.common import InterplabError, cpu_threads, seed_everything
from interplab.data.synthetic.dyck import DyckSet
from interplab.dyck.model import DyckModelConfig, DyckTransformer, losses
from interplab.training import lr_at

StepCallback = Callable[[int, int, dict[str, float]], None]


@dataclass
class DyckTrainConfig:
    """How the Dyck transformer is trained."""

    steps: int = 1200
    """Optimiser steps."""
    batch_size: int = 128
    """Strings per step."""
    lr: float = 3e-3
    """Peak AdamW learning rate."""
    warmup_steps: int = 100
    """Linear learning-rate warm-up steps."""
    weight_decay: float = 0.01
    """AdamW weight decay."""
    depth_weight: float = 0.5
    """Weight of the per-token depth loss next to the balanced loss."""
    head_penalty: float = 0.1
    """Group-lasso weight on each head's output norm (0: off). Without it the count is shared by two heads
    (ablations cost 22 and 6 points; with it, one head carries it: see docs/labs/dyck.md)."""
    seed: int = 0
    """Seed of initialisation and batch order."""
    threads: int | None = None
    """CPU threads (None: the cores not busy with other work)."""


def _batch_rows(n: int, step: int, size: int, seed: int) -> Tensor:
    per_epoch = max(1, n // size)
    epoch, index = divmod(step, per_epoch)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
    return order[index * size:(index + 1) * size]


def train_dyck_model(data: DyckSet, model_cfg: DyckModelConfig, cfg: DyckTrainConfig,
                     on_step: StepCallback | None = None) -> DyckTransformer:
    """A Dyck transformer trained on `data` (CPU); `on_step(step, total, metrics)` after every step."""
    if len(data) < cfg.batch_size:
        raise InterplabError(f"{len(data)} training strings are fewer than one batch of {cfg.batch_size}")
    seed_everything(cfg.seed)
    model = DyckTransformer(model_cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    norms: list[Tensor] = []

    def record(layer: int, z_BHTd: Tensor) -> Tensor:
        norms.append(z_BHTd.norm(dim=-1).mean(dim=(0, 2)).sum())
        return z_BHTd

    with cpu_threads("cpu", cfg.threads):  # the Dyck model trains on the CPU
        model.train()
        for step in range(cfg.steps):
            rows = _batch_rows(len(data), step, cfg.batch_size, cfg.seed)
            mask = data.mask_BT[rows]
            norms.clear()
            out = model(data.tokens_BT[rows], mask, record if cfg.head_penalty else None)
            cls, depth = losses(out, data.balanced_B[rows], data.depth_BT[rows], mask, model_cfg.max_depth)
            loss = cls + cfg.depth_weight * depth
            if cfg.head_penalty:
                loss = loss + cfg.head_penalty * torch.stack(norms).sum()
            for group in opt.param_groups:
                group["lr"] = lr_at(step, cfg.steps, cfg.lr, cfg.warmup_steps, "linear")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if on_step is not None:
                on_step(step + 1, cfg.steps, {"loss": float(loss.detach()), "balanced_loss": float(cls.detach()),
                                              "depth_loss": float(depth.detach())})
    return model.eval()
