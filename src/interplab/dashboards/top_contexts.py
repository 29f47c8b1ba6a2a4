"""Streaming per-latent top-k over batches of latent activations, plus firing statistics.

A *context* is one row of the activation store (`context_size` tokens); it is represented, for each
latent, by its maximum activation over the row's real tokens. Algorithm, per batch of R rows:

1. `BatchLatents.row_peaks`: the real tokens' latents [N, F] -> per (row, latent) maximum [F, R]
   (one scatter-amax; padding and rows that never fire give 0). Taking the maximum first is what
   de-duplicates: a context can enter a latent's list only once.
2. `TopKTracker.update`: scores [G, R] of G groups (a group is a latent, or a (latent, bucket) pair
   for quantile sampling) are concatenated with the kept scores [G, k] and `torch.topk` keeps the k
   best. Row indices are global and every row is seen in exactly one batch, so the merge is exact:
   after the last batch the kept lists equal a top-k over all rows at once.
3. Batch winners take the slots of the entries they evict; only for them is the token of the peak
   found (argmax over their row) and the activations over a window of tokens around it copied from
   the batch ([G, k, L] payload), so contexts never need a second read of the store, and no
   [R, T, F] tensor is ever built. `sort_` orders the slots at the end.
4. `LatentStats`: maxima per latent (pass 1); firing counts and sums from the sparse positive
   entries (pass 2, with the histogram: see quantiles.py).

Everything stays on the device of the latents; memory is G · k · (L + 5) numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

NEG_INF = float("-inf")


def row_max(latents_RTF: Tensor, mask_RT: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Reference for tests: (max over each row's tokens [F, R], token index of that max [F, R]);
    with a mask only real tokens count (-inf on rows without any)."""
    if mask_RT is not None:
        latents_RTF = latents_RTF.masked_fill(~mask_RT[:, :, None], NEG_INF)
    values_RF, pos_RF = latents_RTF.max(dim=1)
    return values_RF.T.contiguous(), pos_RF.T.contiguous()


@dataclass
class BatchLatents:
    """One batch of R store rows, encoded: latents of the real tokens only, and where they sit."""

    latents_NF: Tensor
    """[N, F] latents of the real tokens, in row-major order."""
    index_RT: Tensor
    """[R, T] index into latents_NF of each (row, token); -1 on padding."""
    rows_R: Tensor
    """[R] global row indices."""
    row_N: Tensor
    """[N] batch row of each real token."""

    @classmethod
    def of(cls, latents_NF: Tensor, mask_RT: Tensor, rows_R: Tensor) -> BatchLatents:
        device = mask_RT.device
        index_RT = torch.full(mask_RT.shape, -1, dtype=torch.long, device=device)
        index_RT[mask_RT] = torch.arange(len(latents_NF), device=device)
        row_N = torch.arange(len(mask_RT), device=device)[:, None].expand_as(mask_RT)[mask_RT]
        return cls(latents_NF, index_RT, rows_R.to(device), row_N)

    def row_peaks(self) -> Tensor:
        """[F, R] max over each row's real tokens, floored at 0 (a peak <= 0 never enters a list)."""
        n_lat = self.latents_NF.shape[1]
        peaks_RF = self.latents_NF.new_zeros(len(self.index_RT), n_lat)
        peaks_RF.scatter_reduce_(0, self.row_N[:, None].expand(-1, n_lat), self.latents_NF, "amax")
        return peaks_RF.T

    def at(self, r_M: Tensor, t_ML: Tensor, f_M: Tensor) -> Tensor:
        """[M, L] activations of latent f_M at tokens t_ML of batch row r_M (0 on padding)."""
        n_ML = self.index_RT[r_M[:, None], t_ML]
        vals_ML = self.latents_NF[n_ML.clamp_min(0), f_M[:, None]]
        return vals_ML.masked_fill(n_ML < 0, 0.0)

    def peak_pos(self, r_M: Tensor, f_M: Tensor) -> Tensor:
        """[M] token of latent f_M's maximum in batch row r_M (the first one on ties)."""
        t_T = torch.arange(self.index_RT.shape[1], device=r_M.device)
        return self.at(r_M, t_T.expand(len(r_M), -1), f_M).argmax(dim=1)


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

    def update(self, scores_GR: Tensor, values_FR: Tensor, batch: BatchLatents) -> None:
        """Merge one batch: scores of each group's candidate rows (-inf: not a candidate).

        `values_FR` are the per-latent row peaks (`BatchLatents.row_peaks`) of `batch`. Kept entries
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
            self._fill(ev_g[live], ev_j[live], idx_GK[nw_g, nw_j][live] - k, values_FR, batch)

    def _fill(self, g: Tensor, j: Tensor, r: Tensor, values_FR: Tensor, batch: BatchLatents) -> None:
        """Write batch row r's peak, its position and window into slot (g, j), for each triple."""
        f = self.latent_of_group[g]
        pos = batch.peak_pos(r, f)
        start = window_start(pos, batch.index_RT.shape[1], self.length)
        tok_ML = start[:, None] + torch.arange(self.length, device=start.device)
        self.values_GK[g, j] = values_FR[f, r].to(self.values_GK.dtype)
        self.rows_GK[g, j], self.pos_GK[g, j] = batch.rows_R[r], pos
        self.start_GK[g, j] = start
        self.ctx_GKL[g, j] = batch.at(r, tok_ML, f).to(self.ctx_GKL.dtype)

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

    def add_max(self, latents_NF: Tensor) -> None:
        """Pass 1: a batch of real-token latents [N, F] (maxima and the token count)."""
        if len(latents_NF):
            self.max_F = torch.maximum(self.max_F, latents_NF.amax(dim=0).to(self.max_F.dtype))
        self.n_tokens += latents_NF.shape[0]

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
