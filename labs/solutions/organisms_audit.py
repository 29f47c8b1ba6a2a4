"""Solutions to labs/organisms_audit.py (for instructors)."""

import torch


# %% tags=["exercise:auroc"]
def auroc_by_hand(scores: torch.Tensor, labels: torch.Tensor) -> float:
    pos, neg = scores[labels == 1].double(), scores[labels == 0].double()
    diff = pos[:, None] - neg[None, :]
    return float(((diff > 0).double() + 0.5 * (diff == 0).double()).mean())


# %% tags=["exercise:rank"]
truth_score = result.scores["sae"][result.game.truth]  # noqa: F821 (defined in the lab)
sae_rank = 1 + sum(1 for i, s in enumerate(result.scores["sae"])  # noqa: F821
                   if i != result.game.truth and s >= truth_score)  # noqa: F821
sae_top = result.game.candidates[max(range(len(result.scores["sae"])),  # noqa: F821
                                     key=result.scores["sae"].__getitem__)].name  # noqa: F821
