"""Learning-rate and sparsity-coefficient schedules as pure functions of the step.

Being functions of the step alone (no scheduler object with hidden state), they resume exactly:
a run restarted at step s computes the same values an uninterrupted run had at step s.
"""

from __future__ import annotations

import math

from interplab.common import InterplabError

DECAYS = ("cosine", "linear", "none")


def lr_at(step: int, total_steps: int, lr: float, warmup_steps: int = 0, decay: str = "linear",
          decay_fraction: float = 0.2) -> float:
    """Learning rate for `step` (0-based).

    1. Linear warm-up from lr/warmup_steps to lr over the first `warmup_steps` steps (Adam's early
       moment estimates are noisy; a small first step avoids killing latents at once).
    2. Constant lr.
    3. Over the last `decay_fraction` of the steps, decay to 0 (`cosine` or `linear`; `none` skips this).
       Decaying at the end, not throughout, is what Anthropic (April 2024) and Gao et al. (2024) do.
    """
    if decay not in DECAYS:
        raise InterplabError(f"unknown lr decay {decay!r}; use one of {', '.join(DECAYS)}")
    if not 0 <= decay_fraction <= 1:
        raise InterplabError(f"lr decay fraction must be in [0, 1], got {decay_fraction}")
    if warmup_steps > 0 and step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    decay_steps = int(round(total_steps * decay_fraction)) if decay != "none" else 0
    decay_start = total_steps - decay_steps
    if decay_steps == 0 or step < decay_start:
        return lr
    # progress 0 -> 1 over the decay window; the last step (total_steps - 1) gets a small nonzero lr
    progress = (step - decay_start + 1) / decay_steps
    if decay == "linear":
        return lr * (1 - progress)
    return lr * 0.5 * (1 + math.cos(math.pi * progress))


def sparsity_scale_at(step: int, warmup_steps: int = 0) -> float:
    """Multiplier on the sparsity coefficient: linear 0 -> 1 over `warmup_steps` (then 1).

    Starting with a weak penalty lets latents find useful directions before the L1/L0 pressure
    would kill them (Anthropic April 2024 warm λ up over the first 5% of training).
    """
    if warmup_steps <= 0:
        return 1.0
    return min(1.0, (step + 1) / warmup_steps)
