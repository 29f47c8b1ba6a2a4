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
3. Batch winners take the slots of the entries they evict; only for them are the peak, position and
   the activations over a window of tokens around the peak copied from the batch ([G, k, L]
   payload), so contexts never need a second read of the store. `sort_` orders the slots at the end.
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
    seen; best first after `sort_`), `values_GK` (the row's peak activation), `rows_GK` (global row index,
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
        Kept entries stay in their slots (unsorted until `sort_`): only the slots a batch row wins
        are written, so a batch costs O(G · (k + R)) plus the winners' windows, not a copy of them all.
        """
        k = self.k
        cand_GC = torch.cat([self.scores_GK, scores_GR.to(self.scores_GK.dtype)], dim=1)
        top_GK, idx_GK = cand_GC.topk(k, dim=1, sorted=False)
        survive_GK1 = torch.zeros(len(idx_GK), k + 1, dtype=torch.bool, device=idx_GK.device)
        survive_GK1.scatter_(1, idx_GK.clamp(max=k), True)  # column k collects the batch winners
        # Per group, the evicted slots and the batch winners are equally many; row-major order pairs them.
        ev_g, ev_j = (~survive_GK1[:, :k]).nonzero(as_tuple=True)
        nw_g, nw_j = (idx_GK >= k).nonzero(as_tuple=True)
        score = top_GK[nw_g, nw_j]
        self.scores_GK[ev_g, ev_j] = score
        live = torch.isfinite(score)
        if bool(live.any()):
            self._fill(ev_g[live], ev_j[live], idx_GK[nw_g, nw_j][live] - k, values_FR, pos_FR, rows_R,
                       latents_RTF)

    def _fill(self, g: Tensor, j: Tensor, r: Tensor, values_FR: Tensor, pos_FR: Tensor, rows_R: Tensor,
              latents_RTF: Tensor) -> None:
        """Write batch row r's peak, position and window into slot (g, j), for each triple."""
        f = self.latent_of_group[g]
        pos = pos_FR[f, r]
        start = window_start(pos, latents_RTF.shape[1], self.length)
        tok_ML = start[:, None] + torch.arange(self.length, device=start.device)
        self.values_GK[g, j] = values_FR[f, r].to(self.values_GK.dtype)
        self.rows_GK[g, j], self.pos_GK[g, j] = rows_R.to(self.rows_GK.device)[r], pos
        self.start_GK[g, j] = start
        self.ctx_GKL[g, j] = latents_RTF[r[:, None], tok_ML, f[:, None]].to(self.ctx_GKL.dtype)

    def sort_(self) -> TopKTracker:
        """Order every group's slots best first (stable: ties keep slot order); empty slots get row -1."""
        self.scores_GK, order_GK = self.scores_GK.sort(dim=1, descending=True, stable=True)
        self.values_GK = self.values_GK.gather(1, order_GK)
        self.rows_GK = self.rows_GK.gather(1, order_GK).masked_fill(~torch.isfinite(self.scores_GK), -1)
        self.pos_GK, self.start_GK = self.pos_GK.gather(1, order_GK), self.start_GK.gather(1, order_GK)
        self.ctx_GKL = self.ctx_GKL.gather(1, order_GK[:, :, None].expand(-1, -1, self.length))
        return self


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
