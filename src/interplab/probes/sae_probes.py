"""Probes on SAE latents: single-latent ranking with cross-validation, 1-sparse and k-sparse probes.

1. Encode pooled activations with the SAE: Z = sae.encode(X)  [n, d_sae].
2. 1-sparse probe on latent f: logistic regression with one scale and one bias on the z-scored latent,
   the same objective as `linear.py` (C * sum logloss + a^2 / 2). All latents are fit at once with a
   damped Newton method (2x2 systems, vectorised over latents).
3. Ranking: mean k-fold cross-validated accuracy of each latent's 1-sparse probe.
4. k-sparse probe: pick the top-k latents on the training set by a univariate score (absolute
   difference of class means, or the CV accuracy above), then fit an L2 logistic probe on those only.

Follows the setup of Gao et al. 2024 / Kantamneni et al. 2025 (sparse probing) and Heindrich et al. 2025.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import torch
from torch import Tensor
from torch.nn import functional as F

from interplab.common import InterplabError
from interplab.probes.linear import (
    LinearProbe,
    LinearProbeConfig,
    ProbeMetrics,
    auroc,
    check_xy,
    evaluate,
    stratified_folds,
    train_linear_probe,
)

SELECTIONS = ("mean_diff", "cv")


class Encoder(Protocol):
    def encode(self, x: Tensor) -> Tensor: ...


@torch.no_grad()
def encode_latents(sae: Encoder, X_ND: Tensor, batch_size: int = 4096) -> Tensor:
    """SAE latents [n, d_sae] (float32, CPU) of pooled activations [n, d], in chunks."""
    device = next(iter(sae.parameters())).device if hasattr(sae, "parameters") else X_ND.device
    parts = [
        sae.encode(X_ND[i : i + batch_size].to(device)).float().cpu() for i in range(0, len(X_ND), batch_size)
    ]
    return torch.cat(parts)


class SingleLatentFit(NamedTuple):
    """Per-latent 1-sparse logistic probes (on the z-scored latent)."""

    scale_F: Tensor
    """Weight of each latent's probe [d_sae]."""
    bias_F: Tensor
    """Bias of each latent's probe [d_sae]."""
    mean_F: Tensor
    """Training mean of each latent [d_sae]."""
    std_F: Tensor
    """Training std of each latent [d_sae] (1 for constant latents)."""

    def logits(self, Z_NF: Tensor) -> Tensor:
        """Every latent's probe logit for every row [n, d_sae]."""
        return (Z_NF.double() - self.mean_F) / self.std_F * self.scale_F + self.bias_F


def _objective(a_F: Tensor, b_F: Tensor, Z_NF: Tensor, y_N1: Tensor, penalty: float) -> Tensor:
    logits_NF = Z_NF * a_F + b_F
    return F.binary_cross_entropy_with_logits(logits_NF, y_N1.expand_as(logits_NF), reduction="none").mean(
        0
    ) + (penalty * a_F**2)


def fit_single_latents(Z_NF: Tensor, y_N: Tensor, C: float = 1.0, n_steps: int = 30) -> SingleLatentFit:
    """Fit one scale+bias logistic probe per latent, all latents at once (damped Newton, float64).

    Latents constant on these rows (dead, or never active here; most of a wide SAE) are not fit: their
    optimum is scale 0 and the bias of the class prior, written down directly.
    """
    check_xy(Z_NF, y_N)
    Z_NF, y_N1 = Z_NF.double().cpu(), y_N.double().cpu()[:, None]
    mean_F = Z_NF.mean(0)
    std_F = Z_NF.std(0, correction=0)
    active_F = std_F > 1e-8
    std_F = torch.where(active_F, std_F, torch.ones_like(std_F))
    prior = y_N1.mean().clamp(1e-12, 1 - 1e-12)
    scale_F = torch.zeros_like(mean_F)
    bias_F = torch.full_like(mean_F, float(torch.log(prior / (1 - prior))))
    if active_F.any():
        Z_NA = (Z_NF[:, active_F] - mean_F[active_F]) / std_F[active_F]
        scale_F[active_F], bias_F[active_F] = _newton_1d(Z_NA, y_N1, 1.0 / (2.0 * C * len(y_N1)), n_steps)
    return SingleLatentFit(scale_F, bias_F, mean_F, std_F)


def _newton_1d(Z_NF: Tensor, y_N1: Tensor, penalty: float, n_steps: int) -> tuple[Tensor, Tensor]:
    """Minimise mean logloss(a_f z_f + b_f) + penalty a_f^2 for every column f (2x2 Newton, backtracking)."""
    f = Z_NF.shape[1]
    a_F = torch.zeros(f, dtype=torch.float64)
    b_F = torch.zeros(f, dtype=torch.float64)
    loss_F = _objective(a_F, b_F, Z_NF, y_N1, penalty)
    for _ in range(n_steps):
        p_NF = torch.sigmoid(Z_NF * a_F + b_F)
        r_NF, w_NF = p_NF - y_N1, p_NF * (1 - p_NF)
        g_a, g_b = (r_NF * Z_NF).mean(0) + 2 * penalty * a_F, r_NF.mean(0)
        if max(g_a.abs().max().item(), g_b.abs().max().item()) < 1e-10:
            break
        h_aa, h_ab, h_bb = (w_NF * Z_NF**2).mean(0) + 2 * penalty, (w_NF * Z_NF).mean(0), w_NF.mean(0) + 1e-12
        det = h_aa * h_bb - h_ab**2
        step_a, step_b = (h_bb * g_a - h_ab * g_b) / det, (h_aa * g_b - h_ab * g_a) / det
        # backtrack per latent: halve the Newton step until the objective does not increase
        t_F = torch.ones(f, dtype=torch.float64)
        for _ in range(20):
            new_loss_F = _objective(a_F - t_F * step_a, b_F - t_F * step_b, Z_NF, y_N1, penalty)
            worse = new_loss_F > loss_F + 1e-15
            if not worse.any():
                break
            t_F = torch.where(worse, t_F / 2, t_F)
        else:
            t_F = torch.where(worse, torch.zeros_like(t_F), t_F)  # no descent found: keep those latents
            new_loss_F = _objective(a_F - t_F * step_a, b_F - t_F * step_b, Z_NF, y_N1, penalty)
        a_F, b_F, loss_F = a_F - t_F * step_a, b_F - t_F * step_b, new_loss_F
    return a_F, b_F


class LatentRanking(NamedTuple):
    """Latents ranked by cross-validated single-latent accuracy."""

    latents: list[int]
    """Latent indices, best first."""
    cv_accuracy_F: Tensor
    """Mean CV accuracy of each latent's 1-sparse probe, indexed by latent [d_sae]."""
    mean_diff_F: Tensor
    """Class-1 mean minus class-0 mean of each latent on all rows [d_sae]."""


def mean_difference(Z_NF: Tensor, y_N: Tensor) -> Tensor:
    """Per-latent difference of class means (class 1 minus class 0) [d_sae]."""
    check_xy(Z_NF, y_N)
    y = y_N.bool().cpu()
    Z_NF = Z_NF.double().cpu()
    return Z_NF[y].mean(0) - Z_NF[~y].mean(0)


def rank_latents(Z_NF: Tensor, y_N: Tensor, n_folds: int = 5, C: float = 1.0, seed: int = 0) -> LatentRanking:
    """Rank every latent by the mean k-fold CV accuracy of its 1-sparse probe (ties: larger |mean diff|)."""
    check_xy(Z_NF, y_N)
    Z_NF, y_N = Z_NF.cpu(), y_N.cpu().long()
    correct_F = torch.zeros(Z_NF.shape[1], dtype=torch.float64)
    for fold in stratified_folds(y_N, n_folds, seed):
        train = torch.ones(len(y_N), dtype=torch.bool)
        train[fold] = False
        fit = fit_single_latents(Z_NF[train], y_N[train], C)
        correct_F += ((fit.logits(Z_NF[fold]) > 0).long() == y_N[fold, None]).double().sum(0)
    cv_F = correct_F / len(y_N)
    diff_F = mean_difference(Z_NF, y_N)
    # lexicographic sort: accuracy first, |mean diff| (scaled below one accuracy step) second
    key_F = cv_F + diff_F.abs() / (diff_F.abs().max().clamp_min(1e-12) * 2 * len(y_N))
    return LatentRanking(key_F.argsort(descending=True).tolist(), cv_F, diff_F)


def evaluate_single_latents(
    fit: SingleLatentFit, latents: Sequence[int], Z_NF: Tensor, y_N: Tensor
) -> list[ProbeMetrics]:
    """Test metrics of the 1-sparse probes of `latents`."""
    logits_NF = fit.logits(Z_NF.cpu())
    y_N = y_N.cpu().long()
    out = []
    for f in latents:
        acc = ((logits_NF[:, f] > 0).long() == y_N).double().mean().item()
        out.append(ProbeMetrics(accuracy=acc, auroc=auroc(logits_NF[:, f], y_N), n=len(y_N)))
    return out


@dataclass
class SparseProbe:
    """An L2 logistic probe reading only `latents` of the SAE code."""

    latents: list[int]
    """The latent indices the probe reads, in selection order."""
    probe: LinearProbe
    """The logistic probe over those latents (its weights align with `latents`)."""

    def logits(self, Z_NF: Tensor) -> Tensor:
        return self.probe.logits(Z_NF[:, self.latents])

    @property
    def latent_weights(self) -> Tensor:
        """Weight per selected latent in raw latent units (undoing the standardisation) [k]."""
        return self.probe.weight_D / self.probe.std_D

    def evaluate(self, Z_NF: Tensor, y_N: Tensor) -> ProbeMetrics:
        return evaluate(self.probe, Z_NF[:, self.latents], y_N)


def select_latents(
    Z_NF: Tensor, y_N: Tensor, k: int, selection: str = "mean_diff", seed: int = 0
) -> list[int]:
    """Top-k latents on (training) data by |mean difference| or by CV single-latent accuracy."""
    if selection not in SELECTIONS:
        raise InterplabError(f"unknown latent selection {selection!r}; use one of {', '.join(SELECTIONS)}")
    if not 1 <= k <= Z_NF.shape[1]:
        raise InterplabError(f"k must be in 1..{Z_NF.shape[1]} (the SAE width), got {k}")
    if selection == "cv":
        return rank_latents(Z_NF, y_N, seed=seed).latents[:k]
    return mean_difference(Z_NF, y_N).abs().topk(k).indices.tolist()


def train_sparse_probe(
    Z_NF: Tensor, y_N: Tensor, k: int, selection: str = "mean_diff", cfg: LinearProbeConfig | None = None
) -> SparseProbe:
    """Select k latents on this (training) data, then fit an L2 logistic probe on them."""
    latents = select_latents(Z_NF, y_N, k, selection)
    return SparseProbe(latents, train_linear_probe(Z_NF[:, latents], y_N, cfg))


def k_sparse_sweep(
    Z_train: Tensor,
    y_train: Tensor,
    Z_test: Tensor,
    y_test: Tensor,
    ks: Sequence[int] = (1, 2, 5, 10, 20, 50),
    selection: str = "mean_diff",
    cfg: LinearProbeConfig | None = None,
) -> list[tuple[int, ProbeMetrics]]:
    """Test metrics of k-sparse probes for each k (k larger than the SAE width is skipped)."""
    valid = sorted({k for k in ks if k <= Z_train.shape[1]})
    if not valid:
        raise InterplabError(f"every k in {list(ks)} exceeds the SAE width {Z_train.shape[1]}")
    order = select_latents(Z_train, y_train, valid[-1], selection)  # top-k is a prefix of top-max(k)
    results = []
    for k in valid:
        probe = SparseProbe(order[:k], train_linear_probe(Z_train[:, order[:k]], y_train, cfg))
        results.append((k, probe.evaluate(Z_test, y_test)))
    return results
