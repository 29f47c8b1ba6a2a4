"""L2-regularised logistic-regression probes, trained full-batch with torch LBFGS (CPU or GPU).

Objective (the same one scikit-learn's `LogisticRegression(C=C)` minimises, so results agree):

    C * sum_i logloss(y_i, w.z_i + b) + 0.5 * ||w||^2          (bias not penalised)

where z = (x - mean) / std when `standardize` is on. We minimise it divided by C*n (same minimiser,
gradients of order one whatever n is, so LBFGS tolerances mean the same thing on 100 or 100k rows).

Metrics: accuracy and AUROC; AUROC is rank-based (Mann-Whitney U) with tied scores given average
ranks, so it needs no scikit-learn at run time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor
from torch.nn import functional as F

from interplab.common import InterplabError, get_device, get_logger

log = get_logger(__name__)


@dataclass
class LinearProbeConfig:
    """How a logistic-regression probe is fit."""

    C: float = 1.0
    """Inverse L2 strength, exactly as scikit-learn's `C` (larger = weaker penalty)."""
    standardize: bool = True
    """Fit on z-scored features (per-dimension mean/std from the training set); the residual stream has
    a few huge-norm dimensions that otherwise dominate the penalty."""
    max_iter: int = 500
    """LBFGS iterations at most (each may evaluate the loss a few times in the line search)."""
    tol: float = 1e-6
    """Stop when the largest gradient entry of the objective divided by C*n falls below this (the same
    scaling scikit-learn's lbfgs uses for its `tol`, whose default is a looser 1e-4)."""
    dtype: str = "float64"
    """Optimisation dtype: float64 is deterministic and exact on small problems; 'float32' for 100k x 4k."""
    device: str | None = None
    """Where to fit ('cpu', 'cuda', ...); None picks CUDA when present."""


class ProbeMetrics(NamedTuple):
    """Scores of a probe on one labelled set."""

    accuracy: float
    """Fraction of examples whose predicted class (p > 0.5) equals the label."""
    auroc: float
    """Area under the ROC curve of the probe's logits (NaN when only one class is present)."""
    n: int
    """Number of examples scored."""


@dataclass
class LinearProbe:
    """A fitted probe: logit(x) = weight . (x - mean) / std + bias."""

    weight_D: Tensor
    """Weights on the standardised features [d]."""
    bias: float
    """Intercept."""
    mean_D: Tensor
    """Per-dimension training mean [d] (zeros when not standardising)."""
    std_D: Tensor
    """Per-dimension training std [d] (ones when not standardising)."""

    def logits(self, X_ND: Tensor) -> Tensor:
        X_ND = _as_float(X_ND, self.weight_D)
        return ((X_ND - self.mean_D) / self.std_D) @ self.weight_D + self.bias

    def predict_proba(self, X_ND: Tensor) -> Tensor:
        """P(label = 1) per row [n]."""
        return torch.sigmoid(self.logits(X_ND))

    def predict(self, X_ND: Tensor) -> Tensor:
        """Predicted labels (0/1 long) per row [n]."""
        return (self.logits(X_ND) > 0).long()

    @property
    def direction(self) -> Tensor:
        """The probe's direction in activation space (gradient of the logit w.r.t. x), unit norm [d]."""
        raw_D = self.weight_D / self.std_D
        return raw_D / raw_D.norm().clamp_min(1e-12)

    def to(self, device: torch.device | str) -> LinearProbe:
        return LinearProbe(self.weight_D.to(device), self.bias, self.mean_D.to(device), self.std_D.to(device))


def _as_float(X: Tensor, like: Tensor) -> Tensor:
    return X.to(device=like.device, dtype=like.dtype)


def check_xy(X_ND: Tensor, y_N: Tensor, need_both: bool = True) -> None:
    """Raise a one-line error for mismatched or degenerate probe data."""
    if X_ND.ndim != 2:
        raise InterplabError(f"probe features must be 2-D [n, d], got shape {tuple(X_ND.shape)}")
    if y_N.ndim != 1 or y_N.shape[0] != X_ND.shape[0]:
        raise InterplabError(f"labels must be 1-D with {X_ND.shape[0]} entries, got shape {tuple(y_N.shape)}")
    values = set(torch.unique(y_N).tolist())
    if not values <= {0, 1}:
        raise InterplabError(f"labels must be 0/1, found {sorted(values)[:5]}")
    if need_both and len(values) < 2:
        raise InterplabError(
            "probe training data has a single class; use a balanced dataset or a larger split"
        )


def train_linear_probe(X_ND: Tensor, y_N: Tensor, cfg: LinearProbeConfig | None = None) -> LinearProbe:
    """Fit an L2 logistic-regression probe on features [n, d] and 0/1 labels [n]."""
    cfg = cfg or LinearProbeConfig()
    check_xy(X_ND, y_N)
    if cfg.C <= 0:
        raise InterplabError(f"probe C must be > 0, got {cfg.C}")
    device = get_device(cfg.device)
    dtype = torch.float64 if cfg.dtype == "float64" else torch.float32
    X_ND = X_ND.to(device=device, dtype=dtype)
    y_N = y_N.to(device=device, dtype=dtype)
    n, d = X_ND.shape
    if cfg.standardize:
        mean_D = X_ND.mean(0)
        # constant dimensions get std 1 so they contribute nothing instead of dividing by zero
        std_D = X_ND.std(0, correction=0)
        std_D = torch.where(std_D > 1e-8, std_D, torch.ones_like(std_D))
        Z_ND = (X_ND - mean_D) / std_D
    else:
        mean_D, std_D, Z_ND = (
            torch.zeros(d, dtype=dtype, device=device),
            torch.ones(d, dtype=dtype, device=device),
            X_ND,
        )
    weight_D, bias = _fit_lbfgs(Z_ND, y_N, cfg)
    return LinearProbe(weight_D, bias, mean_D, std_D)


def _fit_lbfgs(Z_ND: Tensor, y_N: Tensor, cfg: LinearProbeConfig) -> tuple[Tensor, float]:
    n, d = Z_ND.shape
    params = torch.zeros(d + 1, dtype=Z_ND.dtype, device=Z_ND.device, requires_grad=True)
    penalty = 1.0 / (2.0 * cfg.C * n)
    optimizer = torch.optim.LBFGS(
        [params],
        lr=1.0,
        max_iter=cfg.max_iter,
        tolerance_grad=cfg.tol,
        tolerance_change=1e-12 if Z_ND.dtype == torch.float64 else 1e-9,
        history_size=20,
        line_search_fn="strong_wolfe",
    )

    def closure() -> Tensor:
        optimizer.zero_grad()
        logits_N = Z_ND @ params[:d] + params[d]
        loss = F.binary_cross_entropy_with_logits(logits_N, y_N) + penalty * params[:d].pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    weights = params.detach()
    return weights[:d].clone(), float(weights[d])


def auroc(scores_N: Tensor, labels_N: Tensor) -> float:
    """Area under the ROC curve via average ranks (ties count one half); NaN with a single class."""
    scores_N = scores_N.detach().double().flatten().cpu()
    labels_N = labels_N.detach().flatten().cpu().bool()
    n_pos = int(labels_N.sum())
    n_neg = labels_N.numel() - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    _, inverse_N, counts_U = torch.unique(scores_N, sorted=True, return_inverse=True, return_counts=True)
    # average 1-based rank of each distinct value: ranks end at cumsum(counts), tied block shares the mean
    avg_rank_U = counts_U.cumsum(0).double() - (counts_U.double() - 1) / 2
    rank_sum_pos = avg_rank_U[inverse_N][labels_N].sum().item()
    return (rank_sum_pos - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def evaluate(probe: LinearProbe, X_ND: Tensor, y_N: Tensor) -> ProbeMetrics:
    """Accuracy and AUROC of `probe` on features [n, d] with 0/1 labels [n]."""
    check_xy(X_ND, y_N, need_both=False)
    logits_N = probe.logits(X_ND).cpu()
    y_N = y_N.cpu().long()
    accuracy = ((logits_N > 0).long() == y_N).double().mean().item()
    return ProbeMetrics(accuracy=accuracy, auroc=auroc(logits_N, y_N), n=int(y_N.numel()))


def stratified_split(y_N: Tensor, test_frac: float = 0.3, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Train and test indices with each class split in the same proportion (seeded, reproducible)."""
    if not 0.0 < test_frac < 1.0:
        raise InterplabError(f"test fraction must be in (0, 1), got {test_frac}")
    gen = torch.Generator().manual_seed(seed)
    train, test = [], []
    for label in torch.unique(y_N.cpu()):
        idx = torch.nonzero(y_N.cpu() == label).flatten()
        idx = idx[torch.randperm(idx.numel(), generator=gen)]
        n_test = max(1, round(test_frac * idx.numel())) if idx.numel() > 1 else 0
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return torch.cat(train).sort().values, torch.cat(test).sort().values


def stratified_folds(y_N: Tensor, n_folds: int = 5, seed: int = 0) -> list[Tensor]:
    """Disjoint index sets covering all rows, each class spread evenly over the folds."""
    if n_folds < 2:
        raise InterplabError(f"cross-validation needs at least 2 folds, got {n_folds}")
    gen = torch.Generator().manual_seed(seed)
    folds: list[list[Tensor]] = [[] for _ in range(n_folds)]
    for label in torch.unique(y_N.cpu()):
        idx = torch.nonzero(y_N.cpu() == label).flatten()
        idx = idx[torch.randperm(idx.numel(), generator=gen)]
        for k in range(n_folds):
            folds[k].append(idx[k::n_folds])
    return [torch.cat(parts).sort().values for parts in folds]
