"""The cache-time check: do a few tokens carry most of the variance an SAE would be trained and scored on?

FVU = Σ‖x - x̂‖² / Σ‖x - μ‖², so a token's weight in it is its share of Σ‖x - μ‖². When sinks are kept,
position 0 alone carries ~98 % of that sum on SmolLM2 and an FVU of 0.0003 says nothing about the rest.
While the store is written, `VarianceCheck` collects, for the first `SAMPLE_TOKENS` real tokens:
  1. μ, the mean of the first shard's kept tokens (a fixed reference, so the shares stream);
  2. per token: d = ‖x - μ‖², its norm, its row position and whether the exclusion rule keeps it.
`report()` then gives the share of Σd that the excluded tokens carry, and the smallest set of kept
tokens that carries `DOMINANT_SHARE` of theirs: when that set is at most `TOP_FRACTION` of the kept
tokens, a few dominate, and `log_report` warns with the numbers and the positions they sit at.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor

from interplab.activations.exclusion import ExclusionRule
from interplab.common import get_logger

log = get_logger(__name__)

SAMPLE_TOKENS = 1 << 21
"""Real tokens the check looks at (13 bytes each): shares settle long before; the cost stays bounded."""
TOP_FRACTION = 0.05
"""'A few tokens': at most 5 % of them. A sink at position 0 is 1/ctx of the tokens (3 % at ctx 32)."""
DOMINANT_SHARE = 0.5
"""Warn when so few tokens carry half the variance (ordinary text needs over a third of its tokens)."""


@dataclass
class VarianceReport:
    """Who carries the variance of a store's tokens (numbers over the checked sample)."""

    n_tokens: int
    """Real tokens checked."""
    n_excluded: int
    """Of them, left out by the exclusion rule."""
    excluded_share: float
    """Share of Σ‖x - μ‖² over all checked tokens that the excluded ones carry."""
    median_norm_kept: float
    median_norm_excluded: float
    """NaN when nothing is excluded."""
    top_share: float
    """Share of the kept tokens' Σ‖x - μ‖² carried by their top TOP_FRACTION."""
    few_fraction: float
    """Fraction of the kept tokens, largest ‖x - μ‖² first, that carry DOMINANT_SHARE of it."""
    few_positions: dict[int, float]
    """Row positions holding most of those tokens -> fraction of them there (three largest)."""
    median_norm_few: float
    """Median norm of those tokens."""

    @property
    def dominated(self) -> bool:
        return self.few_fraction <= TOP_FRACTION

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "few_positions": {str(k): v for k, v in self.few_positions.items()},
                "top_fraction": TOP_FRACTION, "dominant_share": DOMINANT_SHARE, "dominated": self.dominated}


class VarianceCheck:
    """Streams [N, T, D] activations with their real and kept masks; see the module docstring."""

    def __init__(self, sample_tokens: int = SAMPLE_TOKENS):
        self.sample_tokens = sample_tokens
        self.mu_D: Tensor | None = None
        self.dev: list[Tensor] = []  # ‖x - μ‖² per token
        self.norm: list[Tensor] = []
        self.pos: list[Tensor] = []  # row position
        self.kept: list[Tensor] = []
        self.n = 0

    def add(self, acts_NTD: Tensor, real_NT: Tensor, keep_NT: Tensor) -> None:
        if self.n >= self.sample_tokens or not bool(real_NT.any()):
            return
        if self.mu_D is None:
            self.mu_D = acts_NTD[keep_NT if bool(keep_NT.any()) else real_NT].double().mean(0).float()
        # ‖x - μ‖² = ‖x‖² - 2 x·μ + ‖μ‖²: two passes over the activations, no [N, T, D] temporaries
        norm_NT = torch.linalg.vector_norm(acts_NTD, dim=-1, dtype=torch.float32)
        dot_NT = acts_NTD.to(self.mu_D.dtype) @ self.mu_D
        dev_NT = (norm_NT.double().square() - 2 * dot_NT.double() + float(self.mu_D.double().square().sum()))
        pos_NT = torch.arange(real_NT.shape[1], dtype=torch.int32).expand_as(real_NT)
        self.dev.append(dev_NT.clamp_min(0).float()[real_NT])
        self.norm.append(norm_NT[real_NT])
        self.pos.append(pos_NT[real_NT])
        self.kept.append(keep_NT[real_NT])
        self.n += int(real_NT.sum())

    def report(self) -> VarianceReport | None:
        """The shares over the tokens seen so far (None when none were)."""
        if not self.n:
            return None
        dev, norm = torch.cat(self.dev).double(), torch.cat(self.norm)
        pos, kept = torch.cat(self.pos), torch.cat(self.kept)
        total = float(dev.sum())
        excluded_share = float(dev[~kept].sum()) / total if total > 0 else 0.0
        kept_dev = dev[kept]
        top_share, few_fraction, few_positions, median_few = 0.0, 1.0, {}, float("nan")
        if len(kept_dev) and float(kept_dev.sum()) > 0:
            order = kept_dev.argsort(descending=True)
            cum_share = kept_dev[order].cumsum(0) / kept_dev.sum()
            n_top = max(1, round(TOP_FRACTION * len(order)))
            top_share = float(cum_share[n_top - 1])
            n_few = int((cum_share < DOMINANT_SHARE).sum()) + 1
            few_fraction = n_few / len(order)
            counts = Counter(pos[kept][order[:n_few]].tolist())
            few_positions = {p: c / n_few for p, c in counts.most_common(3)}
            median_few = float(norm[kept][order[:n_few]].median())
        return VarianceReport(
            n_tokens=self.n, n_excluded=int((~kept).sum()), excluded_share=excluded_share,
            median_norm_kept=float(norm[kept].median()) if bool(kept.any()) else float("nan"),
            median_norm_excluded=float(norm[~kept].median()) if bool((~kept).any()) else float("nan"),
            top_share=top_share, few_fraction=few_fraction, few_positions=few_positions,
            median_norm_few=median_few,
        )


def log_report(report: VarianceReport, rule: ExclusionRule, hook: str) -> None:
    """Warn when a few kept tokens dominate the variance; otherwise say what the exclusion took out."""
    if report.dominated:
        where = ", ".join(f"position {p}: {f:.0%}" for p, f in report.few_positions.items() if f >= 0.005)
        fix = ("cache with --exclude-sinks to leave them out" if rule.is_empty
               else "check which positions this model needs left out (CacheConfig.sink_positions, max_norm_ratio)")
        log.warning(
            "%s: %.2g%% of the tokens kept for training carry %.0f%% of their variance (%s; median norm %.4g "
            "there vs %.4g overall; the top %.0f%% carry %.1f%%), so training and FVU are about them alone; "
            "excluded: %s. %s", hook, 100 * report.few_fraction, 100 * DOMINANT_SHARE, where,
            report.median_norm_few, report.median_norm_kept, 100 * TOP_FRACTION, 100 * report.top_share,
            rule.describe(), fix)
    elif report.n_excluded:
        log.info(
            "%s: excluded %d of %d tokens (%s), carrying %.1f%% of the variance; median norm %.4g excluded "
            "vs %.4g kept", hook, report.n_excluded, report.n_tokens, rule.describe(),
            100 * report.excluded_share, report.median_norm_excluded, report.median_norm_kept)
