"""Toy models of superposition: x' = ReLU(WᵀW x + b), trained as a batch of independent instances.

Elhage et al. 2022, "Toy Models of Superposition", https://transformer-circuits.pub/2022/toy_model/

Algorithm (the paper's `Model` with `n_instances`):
1. Each instance i has its own W_i [m, n] (Xavier-normal init) and bias b_i [n] (zeros), its own feature
   probability p_ij = 1 - S (sparsity S) and importance I_ij per feature j.
2. A batch of synthetic inputs: feature j of instance i is uniform on [0, 1] with probability p_ij, else 0.
3. Compress to h = W x (m dims) and reconstruct x' = ReLU(Wᵀ h + b) (or without the ReLU for the linear model).
4. Loss of an instance = mean over batch and features of I_ij (x_j - x'_j)²; the instances' losses are summed
   so one Adam step trains them all independently (no parameter is shared between instances).
5. Restarts are extra instances with the same (p, I); after training, each condition keeps the restart with
   the lowest loss on a large held-out batch (the paper refits and keeps the best where optima are local).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
from torch import Tensor, nn

from interplab.common import InterplabError, get_device, get_logger, seed_everything

log = get_logger(__name__)


@dataclass
class ToyConfig:
    """How to build and train one batch of toy models."""

    n_features: int = 5
    """n: number of input features (and reconstructed outputs)."""
    n_hidden: int = 2
    """m: number of hidden dimensions the features are squeezed into."""
    activation: Literal["relu", "linear"] = "relu"
    """'relu' for x' = ReLU(WᵀWx + b); 'linear' for x' = WᵀWx + b (never superposes)."""
    steps: int = 3000
    """Adam steps. The paper uses 10k at lr 1e-3; 3k at lr 1e-2 with the final decay reach the same
    geometry for the small models (n <= 20) in a third of the CPU time."""
    batch_size: int = 1024
    """Synthetic samples per step (shared by all instances)."""
    lr: float = 1e-2
    """Adam peak learning rate (the paper: 1e-3). Use ~3e-3 for wide models (n = 200), where 1e-2 is noisy."""
    schedule: Literal["constant", "decay"] = "decay"
    """'constant' (the paper's), or 'decay': constant, then linear decay to 0 over the last quarter. Unused
    features shrink at Adam's step size, so the lr stays high most of the run; the final decay removes
    the jitter around 0 that a constant lr leaves, so a few thousand steps give clean geometry."""
    restarts: int = 1
    """Independent initialisations per condition; the lowest held-out loss is kept."""
    seed: int = 0
    """Seeds weight init and data so a run is reproducible."""
    eval_samples: int = 32768
    """Held-out samples used to pick the best restart (large so sparse features are seen often)."""
    device: str | None = None
    """'cpu', 'cuda', ... or None for the default from `interplab.common.get_device`."""
    cpu_threads: int = 1
    """Torch threads while training on CPU. Toy matmuls are too small to split: extra threads only
    spin-wait, which made steps ~20x slower in CPU time on a busy shared machine."""


class ToyOutput(NamedTuple):
    """What `ToyModel.forward` returns."""

    out_IBN: Tensor
    """Reconstruction x' [instances, batch, n_features]."""
    hidden_IBM: Tensor
    """Hidden activations h = W x [instances, batch, n_hidden]."""


class ToyFit(NamedTuple):
    """Result of `fit`: the best restart per condition, moved to CPU."""

    W_IMN: Tensor
    """Weights [conditions, n_hidden, n_features]; column j is feature j's direction W_j."""
    b_IN: Tensor
    """Output biases [conditions, n_features]."""
    loss_I: Tensor
    """Held-out importance-weighted MSE of the kept restart [conditions]."""
    curve_TI: Tensor
    """Training loss of the kept restart, sampled every `steps // 100` steps [points, conditions]."""


class ToyModel(nn.Module):
    """A batch of independent toy models, one per instance."""

    def __init__(
        self,
        n_instances: int,
        n_features: int,
        n_hidden: int,
        activation: str = "relu",
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if activation not in ("relu", "linear"):
            raise InterplabError(f"unknown activation {activation!r}; use 'relu' or 'linear'")
        self.activation = activation
        W_IMN = torch.empty(n_instances, n_hidden, n_features)
        # Xavier-normal scale per instance (std = sqrt(2 / (m + n))), like the paper's code.
        W_IMN.normal_(0.0, (2.0 / (n_hidden + n_features)) ** 0.5, generator=generator)
        self.W_IMN = nn.Parameter(W_IMN)
        self.b_IN = nn.Parameter(torch.zeros(n_instances, n_features))

    def forward(self, x_IBN: Tensor) -> ToyOutput:
        """x [instances, batch, n_features] -> reconstruction and hidden activations.

        Instance-first layout so both products are plain batched matmuls (no permute copies).
        """
        hidden_IBM = torch.bmm(x_IBN, self.W_IMN.transpose(1, 2))
        out_IBN = torch.baddbmm(self.b_IN[:, None, :], hidden_IBM, self.W_IMN)
        if self.activation == "relu":
            out_IBN = torch.relu(out_IBN)
        return ToyOutput(out_IBN, hidden_IBM)


def generate_batch(
    batch_size: int, probability_IN: Tensor, generator: torch.Generator | None = None
) -> Tensor:
    """Sparse synthetic features [instances, batch, n]: uniform [0, 1] with probability p, else exactly 0.

    One uniform draw u per entry does both jobs: the feature is present when u < p, and then u / p is
    uniform on [0, 1) (random numbers are the main cost of a step on CPU, so this halves it).
    """
    n_inst, n_feat = probability_IN.shape
    u_IBN = torch.rand(n_inst, batch_size, n_feat, generator=generator, device=probability_IN.device)
    p_I1N = probability_IN[:, None, :]
    return torch.where(u_IBN < p_I1N, u_IBN / p_I1N, torch.zeros_like(u_IBN))


def weighted_mse(out_IBN: Tensor, x_IBN: Tensor, importance_IN: Tensor) -> Tensor:
    """Importance-weighted MSE per instance [instances]: mean over batch and features of I (x - x')²."""
    return (importance_IN[:, None, :] * (x_IBN - out_IBN) ** 2).mean(dim=(1, 2))


def _as_instance_matrix(t: Tensor, n_conditions: int, n_features: int, name: str) -> Tensor:
    """Broadcast a scalar, [n] or [conditions, n] to [conditions, n]."""
    try:
        return t.expand(n_conditions, n_features).clone()
    except RuntimeError:
        raise InterplabError(
            f"{name} has shape {tuple(t.shape)}; expected it to broadcast to [{n_conditions}, {n_features}]"
        ) from None


def fit(
    cfg: ToyConfig,
    probability: Tensor | list,
    importance: Tensor | list | float = 1.0,
    progress: Callable[[int, int], None] | None = None,
) -> ToyFit:
    """Train one toy model per condition (row of `probability`), `cfg.restarts` times each, keep the best.

    probability: feature probability 1 - S per condition, [conditions] or [conditions, n_features].
    importance: scalar, [n_features] or [conditions, n_features].
    progress: optional callable(step, total) for a progress bar.
    """
    p_CN, imp_CN = _check_inputs(cfg, probability, importance)
    device = get_device(cfg.device)
    gen = seed_everything(cfg.seed)
    R, C = cfg.restarts, p_CN.shape[0]
    # Instance index = restart * C + condition, so a view as [R, C] separates them again.
    p_IN, imp_IN = p_CN.repeat(R, 1).to(device), imp_CN.repeat(R, 1).to(device)
    model = ToyModel(R * C, cfg.n_features, cfg.n_hidden, cfg.activation, generator=gen).to(device)
    with _threads(cfg.cpu_threads if device.type == "cpu" else None):
        curve_TI = _train(model, cfg, p_IN, imp_IN, progress)
        loss_RC = evaluate(model, p_IN, imp_IN, cfg.eval_samples, seed=cfg.seed + 2).view(R, C)
    idx_C = loss_RC.argmin(dim=0) * C + torch.arange(C)
    log.debug("toy fit n=%d m=%d: best held-out loss %s", cfg.n_features, cfg.n_hidden, loss_RC.min(0).values)
    return ToyFit(
        model.W_IMN.detach().cpu()[idx_C],
        model.b_IN.detach().cpu()[idx_C],
        loss_RC.min(0).values,
        curve_TI[:, idx_C],
    )


def _check_inputs(
    cfg: ToyConfig, probability: Tensor | list, importance: Tensor | list | float
) -> tuple[Tensor, Tensor]:
    """Validate settings; return probability and importance as [conditions, n_features]."""
    if cfg.restarts < 1 or cfg.steps < 1 or cfg.batch_size < 1 or cfg.eval_samples < 1:
        raise InterplabError("steps, restarts, batch_size and eval_samples must be at least 1")
    if cfg.activation not in ("relu", "linear"):
        raise InterplabError(f"unknown activation {cfg.activation!r}; use 'relu' or 'linear'")
    _lr_lambda(cfg.schedule, cfg.steps)  # fails early on an unknown schedule
    p = torch.as_tensor(probability, dtype=torch.float32)
    # A 1-D probability is one value per condition (all features equally sparse), never per feature.
    p = p.reshape(-1, 1) if p.ndim < 2 else p
    p_CN = _as_instance_matrix(p, p.shape[0], cfg.n_features, "probability")
    imp_CN = _as_instance_matrix(
        torch.as_tensor(importance, dtype=torch.float32), p.shape[0], cfg.n_features, "importance"
    )
    if not ((p_CN > 0) & (p_CN <= 1)).all():
        raise InterplabError("feature probability (1 - S) must be in (0, 1]; pass sparsity S < 1")
    return p_CN, imp_CN


def _train(
    model: ToyModel, cfg: ToyConfig, p_IN: Tensor, imp_IN: Tensor, progress: Callable[[int, int], None] | None
) -> Tensor:
    """Adam on the summed per-instance losses; returns the loss curve [points, instances] (CPU)."""
    data_gen = torch.Generator(device=p_IN.device).manual_seed(cfg.seed + 1)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(cfg.schedule, cfg.steps))
    every = max(1, cfg.steps // 100)
    curve = []
    for step in range(cfg.steps):
        x_IBN = generate_batch(cfg.batch_size, p_IN, data_gen)
        loss_I = weighted_mse(model(x_IBN).out_IBN, x_IBN, imp_IN)
        opt.zero_grad(set_to_none=True)
        loss_I.sum().backward()
        opt.step()
        sched.step()
        if step % every == 0 or step == cfg.steps - 1:
            curve.append(loss_I.detach().cpu())
        if progress is not None:
            progress(step + 1, cfg.steps)
    return torch.stack(curve)


@contextmanager
def _threads(n: int | None) -> Iterator[None]:
    """Temporarily use `n` torch CPU threads (None: leave as is); restored even on error."""
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _lr_lambda(schedule: str, steps: int):
    if schedule == "constant":
        return lambda step: 1.0
    if schedule == "decay":
        start = 0.75 * steps
        return lambda step: min(1.0, (steps - step) / (steps - start))
    raise InterplabError(f"unknown schedule {schedule!r}; use 'constant' or 'decay'")


@torch.no_grad()
def evaluate(
    model: ToyModel, p_IN: Tensor, imp_IN: Tensor, n_samples: int, seed: int = 0, chunk: int = 8192
) -> Tensor:
    """Held-out importance-weighted MSE per instance [instances] (on CPU), averaged over `n_samples`."""
    gen = torch.Generator(device=p_IN.device).manual_seed(seed)
    total_I = torch.zeros(p_IN.shape[0], device=p_IN.device)
    done = 0
    while done < n_samples:
        bs = min(chunk, n_samples - done)
        x_IBN = generate_batch(bs, p_IN, gen)
        total_I += weighted_mse(model(x_IBN).out_IBN, x_IBN, imp_IN) * bs
        done += bs
    return (total_I / n_samples).cpu()
