"""Streaming per-latent top-k over batches of latent activations, plus firing statistics.

A *context* is one row of the activation store (`context_size` tokens); it is represented, for each
latent, by its maximum activation over the row's real tokens. Algorithm, per batch of R rows:

1. `row_max`: latents [R, T, F] (0 on padding) -> per (row, latent) maximum and the token where it
   peaks, [F, R].
   Taking the maximum first is what de-duplicates: a context can enter a latent's list only once.
2. `TopKTracker.update`: scores [G, R] of G groups (a group is a latent, or a (latent, bucket) pair
   for quantile sampling) are concatenated with the kept scores [G, k] and `torch.topk` keeps the k
   best. Row indices are global and every row is seen in exactly one batch, so the merge is exact:
   after the last batch the kept lists equal a top-k over all rows at once.
3. For the winners that came from this batch only, the activations of their window of tokens
   around the peak are gathered from the batch ([G, k, L] payload), so contexts never need a
   second read of the store.
4. `LatentStats.update`: firing counts (activation > 0 on real tokens), sums and maxima per latent.

Everything stays on the device of the latents; memory is G · k · (L + 3) numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

NEG_INF = float("-inf")


def row_max(latents_RTF: Tensor, mask_RT: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """(max over each row's tokens [F, R], token index of that max [F, R]); with a mask, only real
    tokens count (-inf on rows without any)."""
    if mask_RT is not None:
        latents_RTF = latents_RTF.masked_fill(~mask_RT[:, :, None], NEG_INF)
    values_RF, pos_RF = latents_RTF.max(dim=1)
    return values_RF.T.contiguous(), pos_RF.T.contiguous()


def window_len(context_size: int, window: int | None) -> int:
    """Tokens kept per context: 2·window + 1, or the whole row (window None or wider than the row)."""
    return context_size if window is None else min(2 * window + 1, context_size)


def window_start(pos: Tensor, context_size: int, length: int) -> Tensor:
    """First token of a `length`-token window centred on `pos`, shifted to stay inside the row."""
    return (pos - length // 2).clamp(min=0, max=context_size - length)


class TopKTracker:
    """The k best-scoring rows of each of G groups, with each row's peak and token window.

    Attributes (G groups, k kept, L window tokens): `scores_GK` (-inf where fewer than k rows were
    seen, sorted best first), `values_GK` (the row's peak activation), `rows_GK` (global row index,
    -1 if empty), `pos_GK` (token of the peak within the row), `start_GK` (first token of the
    window), `ctx_GKL` (the latent's activations over the window).
    """

    def __init__(self, n_groups: int, k: int, latent_of_group: Tensor, length: int, device: torch.device,
                 score_dtype: torch.dtype = torch.float32):
        self.k, self.length = k, length
        self.latent_of_group = latent_of_group.to(device)
        self.scores_GK = torch.full((n_groups, k), NEG_INF, dtype=score_dtype, device=device)
        self.values_GK = torch.zeros(n_groups, k, device=device)
        self.rows_GK = torch.full((n_groups, k), -1, dtype=torch.long, device=device)
        self.pos_GK = torch.zeros(n_groups, k, dtype=torch.long, device=device)
        self.start_GK = torch.zeros(n_groups, k, dtype=torch.long, device=device)
        self.ctx_GKL = torch.zeros(n_groups, k, length, device=device)

    def update(self, scores_GR: Tensor, values_FR: Tensor, pos_FR: Tensor, rows_R: Tensor,
               latents_RTF: Tensor) -> None:
        """Merge one batch: scores of each group's candidate rows (-inf: not a candidate).

        `values_FR` / `pos_FR` are the per-latent row peaks from `row_max`; `rows_R` the global
        indices of the batch's rows; `latents_RTF` the batch's activations (for the windows).
        """
        k, n_rows = self.k, scores_GR.shape[1]
        cand_GC = torch.cat([self.scores_GK, scores_GR.to(self.scores_GK.dtype)], dim=1)
        top_GK, idx_GK = cand_GC.topk(k, dim=1)  # torch.topk returns them sorted, best first
        old_GK = idx_GK.clamp(max=k - 1)
        values_GK = self.values_GK.gather(1, old_GK)
        rows_GK, pos_GK = self.rows_GK.gather(1, old_GK), self.pos_GK.gather(1, old_GK)
        start_GK = self.start_GK.gather(1, old_GK)
        ctx_GKL = self.ctx_GKL.gather(1, old_GK[:, :, None].expand(-1, -1, self.length))
        new_g, new_j = ((idx_GK >= k) & torch.isfinite(top_GK)).nonzero(as_tuple=True)
        if len(new_g) and n_rows:
            r = idx_GK[new_g, new_j] - k
            f = self.latent_of_group[new_g]
            pos = pos_FR[f, r]
            start = window_start(pos, latents_RTF.shape[1], self.length)
            tok_NL = start[:, None] + torch.arange(self.length, device=start.device)
            values_GK[new_g, new_j] = values_FR[f, r].to(values_GK.dtype)
            rows_GK[new_g, new_j], pos_GK[new_g, new_j] = rows_R.to(rows_GK.device)[r], pos
            start_GK[new_g, new_j] = start
            ctx_GKL[new_g, new_j] = latents_RTF[r[:, None], tok_NL, f[:, None]].to(ctx_GKL.dtype)
        self.scores_GK, self.values_GK, self.rows_GK = top_GK, values_GK, rows_GK
        self.pos_GK, self.start_GK, self.ctx_GKL = pos_GK, start_GK, ctx_GKL


@dataclass
class LatentStats:
    """Running per-latent statistics over real tokens: firing count, activation sum and maximum."""

    count_F: Tensor
    """[F] tokens on which the latent is > 0."""
    sum_F: Tensor
    """[F] sum of its positive activations (float64: millions of tokens)."""
    max_F: Tensor
    """[F] largest activation seen (-inf before any token)."""
    n_tokens: int = 0
    """Real tokens seen."""

    @classmethod
    def zeros(cls, n_latents: int, device: torch.device) -> LatentStats:
        return cls(torch.zeros(n_latents, dtype=torch.long, device=device),
                   torch.zeros(n_latents, dtype=torch.float64, device=device),
                   torch.full((n_latents,), NEG_INF, device=device))

    def update(self, latents_NF: Tensor) -> None:
        """Add a batch of real-token latents [N, F]."""
        positive_NF = latents_NF.clamp_min(0)
        self.count_F += (positive_NF > 0).sum(0)
        self.sum_F += positive_NF.sum(0, dtype=torch.float64)
        if len(latents_NF):
            self.max_F = torch.maximum(self.max_F, latents_NF.max(dim=0).values.to(self.max_F.dtype))
        self.n_tokens += latents_NF.shape[0]

    @property
    def frequency_F(self) -> Tensor:
        return self.count_F.double() / max(self.n_tokens, 1)

    @property
    def mean_F(self) -> Tensor:
        """Mean activation over the tokens where the latent fires (0 if it never does)."""
        return self.sum_F / self.count_F.clamp_min(1)
