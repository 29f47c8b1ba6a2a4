"""Phase diagram of the smallest superposition model: n=2 features, m=1 hidden dimension.

Elhage et al. 2022, "Toy Models of Superposition", section "Superposition as a Phase Change",
https://transformer-circuits.pub/2022/toy_model/#phase-change

Algorithm:
1. Feature 1 has importance 1; feature 2 has relative importance r (log grid, 0.1 to 10 by default).
   Both features have the same density p = 1 - S (log grid, 0.01 to 1 by default).
2. Train one ReLU-output model x' = ReLU(WᵀWx + b), W [1, 2], per grid cell (all cells as one batch of
   instances), with restarts, keeping the lowest held-out loss (several optima are local here).
3. Classify feature 2 in each cell from the learned W:
   - not learned:      |W_2| < threshold (the dimension goes to feature 1, or to nothing);
   - dedicated:        |W_2| ≥ threshold and |W_1| < threshold (feature 2 owns the dimension);
   - superposition:    both ≥ threshold; they are then antipodal (W_1 · W_2 < 0) and the ReLU with a
                       negative bias filters the interference.
Expected: dense features give "not learned" for r < 1 and "dedicated" for r > 1; as features get sparse
the superposition phase opens up around r = 1 and widens.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import torch
from torch import Tensor

from interplab.common import InterplabError
from interplab.toy.superposition import ToyConfig, fit

PHASES = ("not learned", "dedicated", "superposition")
"""Phase names, indexed by the codes in `PhaseDiagram.phase_RD`."""
NOT_LEARNED, DEDICATED, SUPERPOSITION = 0, 1, 2


def _default_train() -> ToyConfig:
    return ToyConfig(n_features=2, n_hidden=1, steps=3000, lr=1e-2, restarts=3, eval_samples=32768)


@dataclass
class PhaseConfig:
    """The grid of the n=2, m=1 phase diagram and how each cell is trained."""

    n_density: int = 7
    """Grid points of feature density p = 1 - S (log spaced)."""
    min_density: float = 0.01
    """Sparsest density on the grid; the densest is always 1 (dense features)."""
    n_importance: int = 7
    """Grid points of feature 2's relative importance (log spaced)."""
    max_ratio: float = 10.0
    """Relative importance runs from 1 / max_ratio to max_ratio."""
    threshold: float = 0.5
    """‖W_i‖ at or above which a feature counts as represented."""
    train: ToyConfig = field(default_factory=_default_train)
    """Training settings; n_features and n_hidden are forced to 2 and 1."""


class PhaseDiagram(NamedTuple):
    """Result of `run_phase_diagram` (rows: relative importance, columns: density)."""

    density_D: Tensor
    """Feature density 1 - S of each column [n_density]."""
    ratio_R: Tensor
    """Relative importance of feature 2 for each row [n_importance]."""
    phase_RD: Tensor
    """Phase code per cell (index into PHASES) [n_importance, n_density]."""
    W_RDN: Tensor
    """Learned W (m = 1, so one weight per feature) [n_importance, n_density, 2]."""
    b_RDN: Tensor
    """Learned bias [n_importance, n_density, 2]."""
    loss_RD: Tensor
    """Held-out loss per cell [n_importance, n_density]."""


def classify(W_IMN: Tensor, threshold: float = 0.5) -> Tensor:
    """Phase code of feature 2 for each instance [instances] from W [instances, 1, 2]."""
    if W_IMN.shape[-1] != 2:
        raise InterplabError(f"phase classification needs n_features=2, got W of shape {tuple(W_IMN.shape)}")
    w1_I, w2_I = W_IMN[:, 0, 0], W_IMN[:, 0, 1]
    both_I = (w1_I.abs() >= threshold) & (w2_I.abs() >= threshold)
    # Same-sign weights are one mixed direction, not superposition: the ReLU cannot separate the two
    # features, so it is whichever feature dominates the dimension (happens only at equal importance).
    antipodal_I = both_I & (w1_I * w2_I < 0)
    owns_I = (w2_I.abs() >= threshold) & (~both_I | (w2_I.abs() > w1_I.abs()))
    phase_I = torch.full(w1_I.shape, NOT_LEARNED, dtype=torch.long)
    phase_I[owns_I] = DEDICATED
    phase_I[antipodal_I] = SUPERPOSITION
    return phase_I


def run_phase_diagram(cfg: PhaseConfig, progress=None) -> PhaseDiagram:
    """Train every grid cell as one batch of instances and classify feature 2's phase in each."""
    if cfg.n_density < 1 or cfg.n_importance < 1 or not 0 < cfg.min_density <= 1 or cfg.max_ratio < 1:
        raise InterplabError(
            "phase grid needs n_density, n_importance >= 1, 0 < min_density <= 1, max_ratio >= 1"
        )
    density_D = torch.logspace(torch.log10(torch.tensor(cfg.min_density)).item(), 0.0, cfg.n_density)
    ratio_R = torch.logspace(
        -torch.log10(torch.tensor(cfg.max_ratio)).item(),
        torch.log10(torch.tensor(cfg.max_ratio)).item(),
        cfg.n_importance,
    )
    R, D = len(ratio_R), len(density_D)
    # Condition c = r * D + d: row-major over the [R, D] grid.
    prob_C = density_D.repeat(R)
    importance_CN = torch.stack([torch.ones(R * D), ratio_R.repeat_interleave(D)], dim=1)
    train = ToyConfig(**{**vars(cfg.train), "n_features": 2, "n_hidden": 1})
    result = fit(train, prob_C, importance_CN, progress=progress)
    phase_C = classify(result.W_IMN, cfg.threshold)
    return PhaseDiagram(
        density_D=density_D,
        ratio_R=ratio_R,
        phase_RD=phase_C.view(R, D),
        W_RDN=result.W_IMN[:, 0, :].reshape(R, D, 2),
        b_RDN=result.b_IN.reshape(R, D, 2),
        loss_RD=result.loss_I.view(R, D),
    )
