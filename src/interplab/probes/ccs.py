"""Contrast-consistent search (Burns, Ye, Klein & Steinhardt 2022, "Discovering Latent Knowledge in
Language Models Without Supervision", arXiv:2212.03827).

1. Each question becomes a contrast pair: x+ (the prompt answered "Yes") and x- (answered "No");
   read their activations φ(x+), φ(x-) [n, d] at one hook.
2. Normalise each half on its own (subtract its mean, divide by its per-dimension std), so the probe
   cannot separate the pair by the answer token itself, only by what differs across questions.
3. Probe p(x) = σ(w·φ̃(x) + b), w in the span of the top `n_components` principal components of the
   differences φ̃(x+) - φ̃(x-) (see CCSConfig.n_components). Minimise, without labels,
       L = mean[(p(x+) - (1 - p(x-)))²] + mean[min(p(x+), p(x-))²]    (consistency + confidence)
   (+ a small L2 term) with LBFGS from `n_tries` random starts, keeping the lowest loss.
4. Credence p̃ = (p(x+) + 1 - p(x-)) / 2; predict "true" when p̃ > 1/2. The loss is symmetric under
   w -> -w, so the sign is unknown: choose it on a small labelled set (`n_label` examples).
The same sign rule applied to a random direction gives the chance reference (≈ 0.5).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from interplab.common import InterplabError


@dataclass
class CCSConfig:
    """How a CCS probe is fit."""

    n_tries: int = 10
    """Random restarts; the lowest unsupervised loss wins."""
    max_iter: int = 200
    """LBFGS iterations per restart (full batch)."""
    weight_decay: float = 0.01
    """L2 penalty weight_decay/2 · ‖w‖² (Burns et al. use 0.01 as Adam weight decay)."""
    n_label: int = 8
    """Labelled examples used only to choose the sign."""
    n_components: int | None = None
    """Fit in the span of the top principal components of the pair differences φ̃(x+) - φ̃(x-) (None:
    all d dimensions). With fewer pairs than dimensions, full-width CCS finds confident, consistent
    directions that are noise; the contrast structure lives in the top few components (Emmons 2023,
    "Contrast Pairs Drive the Empirical Performance of CCS"). bench/README.md has what each gave here."""
    seed: int = 0
    """Seed of the restarts and of the labelled examples."""


def _normalise(X_ND: Tensor, mean_D: Tensor, std_D: Tensor) -> Tensor:
    return (X_ND - mean_D) / std_D


@dataclass
class CCSProbe:
    """A fitted CCS direction with the normalisation of each half of the pair."""

    weight_D: Tensor
    """Weights on the normalised activations [d] (sign already chosen)."""
    bias: float
    mean_pos_D: Tensor
    std_pos_D: Tensor
    mean_neg_D: Tensor
    std_neg_D: Tensor
    loss: float
    """The unsupervised loss of the chosen restart."""

    def credence(self, pos_ND: Tensor, neg_ND: Tensor) -> Tensor:
        """p̃ = (p(x+) + 1 - p(x-)) / 2 per pair [n]."""
        p_pos = torch.sigmoid(_normalise(pos_ND.double(), self.mean_pos_D, self.std_pos_D) @ self.weight_D + self.bias)
        p_neg = torch.sigmoid(_normalise(neg_ND.double(), self.mean_neg_D, self.std_neg_D) @ self.weight_D + self.bias)
        return (p_pos + 1 - p_neg) / 2

    @property
    def direction(self) -> Tensor:
        """Unit direction in activation space (of the "Yes" half: weight / its std) [d]."""
        raw_D = self.weight_D / self.std_pos_D
        return raw_D / raw_D.norm().clamp_min(1e-12)


def ccs_loss(p_pos_N: Tensor, p_neg_N: Tensor) -> Tensor:
    """Consistency + confidence (step 3 of the module docstring)."""
    consistency = (p_pos_N - (1 - p_neg_N)).pow(2).mean()
    confidence = torch.minimum(p_pos_N, p_neg_N).pow(2).mean()
    return consistency + confidence


def _stats(X_ND: Tensor) -> tuple[Tensor, Tensor]:
    std_D = X_ND.std(0, correction=0)
    return X_ND.mean(0), torch.where(std_D > 1e-8, std_D, torch.ones_like(std_D))


def _one_try(P_ND: Tensor, N_ND: Tensor, cfg: CCSConfig, gen: torch.Generator) -> tuple[Tensor, float, float]:
    """One restart: full-batch LBFGS on the CCS loss plus weight_decay/2 · ‖w‖² (far fewer steps than
    the paper's Adam epochs for the same minimum; a thousand Adam steps per restart took minutes on a
    loaded CPU)."""
    d = P_ND.shape[1]
    w = (torch.randn(d, generator=gen, dtype=torch.float64) / d**0.5).requires_grad_(True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=cfg.max_iter, tolerance_grad=1e-7, tolerance_change=1e-10,
                            history_size=20, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        opt.zero_grad()
        loss = ccs_loss(torch.sigmoid(P_ND @ w + b), torch.sigmoid(N_ND @ w + b)) + cfg.weight_decay / 2 * w.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        final = float(ccs_loss(torch.sigmoid(P_ND @ w + b), torch.sigmoid(N_ND @ w + b)))
    return w.detach(), float(b.detach()), final


def _difference_basis(diff_ND: Tensor, n_components: int | None) -> Tensor:
    """[d, m] orthonormal basis of the top principal components of the differences (identity for None)."""
    d = diff_ND.shape[1]
    if n_components is None or n_components >= d:
        return torch.eye(d, dtype=diff_ND.dtype)
    _, _, V_DM = torch.pca_lowrank(diff_ND, q=min(n_components, *diff_ND.shape), center=True)
    return V_DM


def choose_sign_(probe: CCSProbe, pos_ND: Tensor, neg_ND: Tensor, y_N: Tensor) -> CCSProbe:
    """Flip `probe` (in place) if it is right on fewer than half of the labelled pairs; returns it."""
    acc = ((probe.credence(pos_ND, neg_ND) > 0.5).long() == y_N.long()).double().mean()
    if acc < 0.5:
        probe.weight_D, probe.bias = -probe.weight_D, -probe.bias
    return probe


def label_subset(y_N: Tensor, n: int, seed: int) -> Tensor:
    """Indices of `n` labelled rows (both classes when possible), seeded."""
    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(y_N), generator=gen)
    pos, neg = perm[y_N[perm] == 1], perm[y_N[perm] == 0]
    half = max(1, n // 2)
    return torch.cat([pos[:half], neg[: max(1, n - half)]])


def fit_ccs(pos_ND: Tensor, neg_ND: Tensor, y_N: Tensor | None = None, cfg: CCSConfig | None = None) -> CCSProbe:
    """Fit CCS on contrast pairs; with labels `y_N`, choose the sign on `cfg.n_label` of them."""
    cfg = cfg or CCSConfig()
    if pos_ND.shape != neg_ND.shape or pos_ND.ndim != 2 or len(pos_ND) < 2:
        raise InterplabError(f"CCS needs two [n, d] halves of the same shape with n >= 2, got "
                             f"{tuple(pos_ND.shape)} and {tuple(neg_ND.shape)}")
    pos_ND, neg_ND = pos_ND.double().cpu(), neg_ND.double().cpu()
    mp, sp = _stats(pos_ND)
    mn, sn = _stats(neg_ND)
    P_ND, N_ND = _normalise(pos_ND, mp, sp), _normalise(neg_ND, mn, sn)
    basis_DM = _difference_basis(P_ND - N_ND, cfg.n_components)
    gen = torch.Generator().manual_seed(cfg.seed)
    # Tiny problems ([~100, d]): thread start-up dominates, and on a busy CPU 2 threads ran ~8x slower
    # than 1 here, so the restarts run single-threaded.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        best = min((_one_try(P_ND @ basis_DM, N_ND @ basis_DM, cfg, gen) for _ in range(cfg.n_tries)),
                   key=lambda t: t[2])
    finally:
        torch.set_num_threads(threads)
    probe = CCSProbe(basis_DM @ best[0], best[1], mp, sp, mn, sn, best[2])
    if y_N is not None:
        idx = label_subset(y_N.cpu(), cfg.n_label, cfg.seed)
        choose_sign_(probe, pos_ND[idx], neg_ND[idx], y_N.cpu()[idx])
    return probe


def random_direction_probe(pos_ND: Tensor, neg_ND: Tensor, y_N: Tensor, seed: int = 0, n_label: int = 8) -> CCSProbe:
    """The chance reference: a random unit direction, normalised and signed as CCS would be."""
    pos_ND, neg_ND = pos_ND.double().cpu(), neg_ND.double().cpu()
    mp, sp = _stats(pos_ND)
    mn, sn = _stats(neg_ND)
    w_D = torch.randn(pos_ND.shape[1], generator=torch.Generator().manual_seed(seed + 7), dtype=torch.float64)
    probe = CCSProbe(w_D / w_D.norm(), 0.0, mp, sp, mn, sn, float("nan"))
    idx = label_subset(y_N.cpu(), n_label, seed)
    return choose_sign_(probe, pos_ND[idx], neg_ND[idx], y_N.cpu()[idx])


def _halves(X_N2D: Tensor) -> tuple[Tensor, Tensor]:
    d = X_N2D.shape[1] // 2
    return X_N2D[:, :d], X_N2D[:, d:]


def ccs_fit(n_label: int = 8, seed: int = 0, cfg: CCSConfig | None = None):
    """A generalization-matrix fit function over pair features [n, 2d] (the "Yes" half, then the "No"
    half): CCS on the rows, sign from `n_label` of the labels; score = credence - 1/2."""
    from dataclasses import replace

    cfg = replace(cfg or CCSConfig(), n_label=n_label, seed=seed)

    def fit(X_N2D: Tensor, y_N: Tensor):
        probe = fit_ccs(*_halves(X_N2D), y_N, cfg)
        return lambda X: probe.credence(*_halves(X)) - 0.5

    return fit


def _accuracy(probe: CCSProbe, X_N2D: Tensor, y_N: Tensor) -> float:
    return float(((probe.credence(*_halves(X_N2D)) > 0.5).long() == y_N.long().cpu()).double().mean())


def ccs_row(name: str, pairs: Any, supervised_accuracy: float, supervised_direction_D: Tensor, n_label: int,
            seed: int) -> dict[str, Any]:
    """One table row: CCS and random-direction test accuracy beside the supervised probe's (on the plain
    prompts), their ratio, and the cosine of the two directions. `pairs` is a SplitData of pair features."""
    X_train, y_train = pairs.train
    X_test, y_test = pairs.test
    probe = fit_ccs(*_halves(X_train), y_train, CCSConfig(n_label=n_label, seed=seed))
    rand = random_direction_probe(*_halves(X_train), y_train, seed=seed, n_label=n_label)
    ccs_acc = _accuracy(probe, X_test, y_test)
    return {"dataset": name, "ccs_accuracy": ccs_acc, "supervised_accuracy": supervised_accuracy,
            "ccs_over_supervised": ccs_acc / supervised_accuracy if supervised_accuracy else float("nan"),
            "random_direction_accuracy": _accuracy(rand, X_test, y_test), "ccs_loss": probe.loss,
            "cosine_with_supervised": float(probe.direction @ supervised_direction_D.double().cpu())}
