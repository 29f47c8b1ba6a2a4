"""Multinomial (softmax) logistic-regression probes for labels with more than two values (e.g. nesting depth).

Objective, as scikit-learn's `LogisticRegression(C=C)` with the multinomial loss:

    C * sum_i crossentropy(y_i, W z_i + b) + 0.5 * ||W||^2        (bias not penalised)

with z the standardised features (train mean/std), minimised divided by C*n with full-batch LBFGS (the
binary probe's recipe in probes/linear.py, one logit per class).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn import functional as F

from interplab.common import InterplabError
from interplab.probes.linear import LinearProbeConfig


@dataclass
class SoftmaxProbe:
    """A fitted probe: logits(x) = ((x - mean) / std) @ weight + bias."""

    weight_DC: Tensor
    bias_C: Tensor
    mean_D: Tensor
    std_D: Tensor

    def logits(self, X_ND: Tensor) -> Tensor:
        X_ND = X_ND.to(device=self.weight_DC.device, dtype=self.weight_DC.dtype)
        return ((X_ND - self.mean_D) / self.std_D) @ self.weight_DC + self.bias_C

    def predict(self, X_ND: Tensor) -> Tensor:
        return self.logits(X_ND).argmax(-1)

    def accuracy(self, X_ND: Tensor, y_N: Tensor) -> float:
        return float((self.predict(X_ND).cpu() == y_N.cpu()).double().mean())


def train_softmax_probe(X_ND: Tensor, y_N: Tensor, n_classes: int | None = None,
                        cfg: LinearProbeConfig | None = None) -> SoftmaxProbe:
    """Fit an L2 multinomial logistic probe on features [n, d] and integer labels [n] in 0..n_classes-1."""
    cfg = cfg or LinearProbeConfig()
    if X_ND.ndim != 2 or y_N.ndim != 1 or y_N.shape[0] != X_ND.shape[0]:
        raise InterplabError(f"probe data must be [n, d] features and [n] labels, got {tuple(X_ND.shape)} and "
                             f"{tuple(y_N.shape)}")
    if cfg.C <= 0:
        raise InterplabError(f"probe C must be > 0, got {cfg.C}")
    y_N = y_N.long().cpu()
    if y_N.numel() == 0 or int(y_N.min()) < 0:
        raise InterplabError("probe labels must be non-negative class indices")
    n_classes = n_classes or int(y_N.max()) + 1
    dtype = torch.float64 if cfg.dtype == "float64" else torch.float32
    X_ND = X_ND.detach().cpu().to(dtype)
    n, d = X_ND.shape
    mean_D = X_ND.mean(0) if cfg.standardize else torch.zeros(d, dtype=dtype)
    std_D = X_ND.std(0, correction=0) if cfg.standardize else torch.ones(d, dtype=dtype)
    std_D = torch.where(std_D > 1e-8, std_D, torch.ones_like(std_D))
    Z_ND = (X_ND - mean_D) / std_D
    params = torch.zeros(d + 1, n_classes, dtype=dtype, requires_grad=True)
    penalty = 1.0 / (2.0 * cfg.C * n)
    opt = torch.optim.LBFGS([params], lr=1.0, max_iter=cfg.max_iter, tolerance_grad=cfg.tol,
                            tolerance_change=1e-12, history_size=20, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(Z_ND @ params[:d] + params[d], y_N) + penalty * params[:d].pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    fitted = params.detach()
    return SoftmaxProbe(fitted[:d].clone(), fitted[d].clone(), mean_D, std_D)
