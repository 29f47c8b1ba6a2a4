"""Streaming per-latent top-k over batches of latent activations, plus firing statistics.

A *context* is one row of the activation store (`context_size` tokens); it is represented, for each
latent, by its maximum activation over the row's real tokens. Algorithm, per batch of R rows:

1. `row_peaks` of the batch (batch_latents.py, dense or sparse): per (row, latent) maximum [F, R]
   over the kept tokens (padding and rows that never fire give 0). Taking the maximum first is what
   de-duplicates: a context can enter a latent's list only once.
2. `TopKTracker.update`: scores [G, R] of G groups (a group is a latent, or a (latent, bucket) pair
   for quantile sampling) are concatenated with the kept scores [G, k] and `torch.topk` keeps the k
   best. Row indices are global and every row is seen in exactly one batch, so the merge is exact:
   after the last batch the kept lists equal a top-k over all rows at once.
3. Batch winners take the slots of the entries they evict; only for them are the latent's
   activations over their row read from the batch (`winner_rows`, [M, T], in chunks), the token of
   the peak found (argmax) and a window of tokens around it kept ([G, k, L] payload), so contexts
   never need a second read of the store, and no [R, T, F] tensor is ever built. `sort_` orders the
   slots at the end.
4. `LatentStats`: maxima per latent (pass 1); firing counts and sums from the sparse positive
   entries (pass 2, with the histogram: see quantiles.py).

Everything stays on the device of the latents; memory is G · k · (L + 5) numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from interplab.dashboards.batch_latents import BatchLatents, SparseBatchLatents

Batch = BatchLatents | SparseBatchLatents

NEG_INF = float("-inf")
# Winners whose rows are read at once: at most this many [M, T] activations (16 MB in fp32).
_FILL_ELEMS = 1 << 22


def row_max(latents_RTF: Tensor, mask_RT: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Reference for tests: (max over each row's tokens [F, R], token index of that max [F, R]);
    with a mask only real tokens count (-inf on rows without any)."""
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

    def update(self, scores_GR: Tensor, values_FR: Tensor, batch: Batch) -> None:
        """Merge one batch: scores of each group's candidate rows (-inf: not a candidate).

        `values_FR` are the per-latent row peaks (`row_peaks`) of `batch`. Kept entries
        stay in their slots (unsorted until `sort_`): only the slots a batch row wins are written, so
        a batch costs O(G · (k + R)) plus the winners' windows, not a copy of every kept window.
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
            g, j, r = ev_g[live], ev_j[live], idx_GK[nw_g, nw_j][live] - k
            step = max(1, _FILL_ELEMS // max(1, batch.n_cols))
            for s in range(0, len(g), step):
                self._fill(g[s:s + step], j[s:s + step], r[s:s + step], values_FR, batch)

    def _fill(self, g: Tensor, j: Tensor, r: Tensor, values_FR: Tensor, batch: Batch) -> None:
        """Write batch row r's peak, its position and window into slot (g, j), for each triple."""
        f = self.latent_of_group[g]
        row_MT = batch.winner_rows(r, f)
        pos = row_MT.argmax(dim=1)  # the first maximum
        start = window_start(pos, row_MT.shape[1], self.length)
        tok_ML = start[:, None] + torch.arange(self.length, device=start.device)
        self.values_GK[g, j] = values_FR[f, r].to(self.values_GK.dtype)
        self.rows_GK[g, j], self.pos_GK[g, j] = batch.rows_R[r], pos
        self.start_GK[g, j] = start
        self.ctx_GKL[g, j] = row_MT.gather(1, tok_ML).to(self.ctx_GKL.dtype)

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

    def add_max(self, batch: Batch) -> None:
        """Pass 1: a batch's maxima and its token count."""
        if batch.n_tokens:
            self.max_F = torch.maximum(self.max_F, batch.latent_max().to(self.max_F.dtype))
        self.n_tokens += batch.n_tokens

    def add_firing(self, lat_P: Tensor, values_P: Tensor) -> None:
        """Pass 2: the positive entries of a batch, as latent indices and values [P]."""
        self.count_F += torch.bincount(lat_P, minlength=len(self.count_F))
        self.sum_F += torch.bincount(lat_P, weights=values_P.double(), minlength=len(self.sum_F))

    @property
    def frequency_F(self) -> Tensor:
        return self.count_F.double() / max(self.n_tokens, 1)

    @property
    def mean_F(self) -> Tensor:
        """Mean activation over the tokens where the latent fires (0 if it never does)."""
        return self.sum_F / self.count_F.clamp_min(1)
