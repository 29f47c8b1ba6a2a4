"""One batch of store rows after the encoder, dense or sparse, and what the scans read from it.

The scans need four things from a batch of R rows (N kept tokens, F latents): each (row, latent) peak,
each latent's maximum, the positive (latent, value) entries, and, for the rows that win a place in a
latent's list, the latent's activations over that row's tokens. Both forms answer the same questions
with the same numbers:

- `BatchLatents`: latents [N, F] as the encoder returns them (any SAE, or neurons).
- `SparseBatchLatents`: the k kept (value, latent) pairs per token of a TopK SAE [N, k] (values >= 0,
  every other latent is 0). Every answer costs O(N·k) instead of O(N·F): at d_sae 16,384 and k = 32
  that is 512x less memory traffic than the dense form, which the scans used to read six times.

A winner's row is read without a dense matrix: winners are keyed (row · F + latent) and sorted once,
and each of the N·k entries is looked up among them (`searchsorted`), so the cost is O(N·k·log M).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


def _positions(mask_RT: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(index_RT: index of each (row, token) among the kept tokens, -1 elsewhere; row_N; tok_N)."""
    device = mask_RT.device
    index_RT = torch.full(mask_RT.shape, -1, dtype=torch.long, device=device)
    n = int(mask_RT.sum())
    index_RT[mask_RT] = torch.arange(n, device=device)
    row_N, tok_N = mask_RT.nonzero(as_tuple=True)
    return index_RT, row_N, tok_N


@dataclass
class BatchLatents:
    """One batch of R store rows, encoded: latents of the kept tokens only, and where they sit."""

    latents_NF: Tensor
    """[N, F] latents of the kept tokens, in row-major order."""
    index_RT: Tensor
    """[R, T] index into latents_NF of each (row, token); -1 on tokens not encoded."""
    rows_R: Tensor
    """[R] global row indices."""
    row_N: Tensor
    """[N] batch row of each kept token."""

    @classmethod
    def of(cls, latents_NF: Tensor, mask_RT: Tensor, rows_R: Tensor) -> BatchLatents:
        index_RT, row_N, _ = _positions(mask_RT)
        return cls(latents_NF, index_RT, rows_R.to(mask_RT.device), row_N)

    @property
    def n_tokens(self) -> int:
        return self.latents_NF.shape[0]

    @property
    def n_cols(self) -> int:
        """T, the tokens per row."""
        return self.index_RT.shape[1]

    def row_peaks(self) -> Tensor:
        """[F, R] max over each row's kept tokens, floored at 0 (a peak <= 0 never enters a list)."""
        n_lat = self.latents_NF.shape[1]
        peaks_RF = self.latents_NF.new_zeros(len(self.index_RT), n_lat)
        peaks_RF.scatter_reduce_(0, self.row_N[:, None].expand(-1, n_lat), self.latents_NF, "amax")
        return peaks_RF.T

    def latent_max(self) -> Tensor:
        """[F] largest value of each latent over the batch's tokens."""
        return self.latents_NF.amax(dim=0)

    def positives(self) -> tuple[Tensor, Tensor]:
        """The entries > 0, as latent indices [P] and values [P]."""
        tok_P, lat_P = (self.latents_NF > 0).nonzero(as_tuple=True)
        return lat_P, self.latents_NF[tok_P, lat_P]

    def winner_rows(self, r_M: Tensor, f_M: Tensor) -> Tensor:
        """[M, T] activations of latent f_M over the tokens of batch row r_M (0 where not encoded)."""
        n_MT = self.index_RT[r_M]
        vals_MT = self.latents_NF[n_MT.clamp_min(0), f_M[:, None]]
        return vals_MT.masked_fill(n_MT < 0, 0.0)


@dataclass
class SparseBatchLatents:
    """The same batch as k (value, latent) pairs per kept token; values are >= 0 (ReLU after top-k)."""

    values_NK: Tensor
    """[N, k] kept values."""
    idx_NK: Tensor
    """[N, k] their latents."""
    n_latents: int
    """F."""
    n_cols: int
    """T, the tokens per row."""
    rows_R: Tensor
    """[R] global row indices."""
    row_N: Tensor
    """[N] batch row of each kept token."""
    tok_N: Tensor
    """[N] its token position within the row."""

    @classmethod
    def of(cls, values_NK: Tensor, idx_NK: Tensor, n_latents: int, mask_RT: Tensor,
           rows_R: Tensor) -> SparseBatchLatents:
        _, row_N, tok_N = _positions(mask_RT)
        return cls(values_NK, idx_NK, n_latents, mask_RT.shape[1], rows_R.to(mask_RT.device), row_N, tok_N)

    @property
    def n_tokens(self) -> int:
        return self.values_NK.shape[0]

    def _flat_keys(self, rows: Tensor, latents: Tensor) -> Tensor:
        return rows * self.n_latents + latents

    def row_peaks(self) -> Tensor:
        """As `BatchLatents.row_peaks` (latents absent from a token count as 0)."""
        R, F = len(self.rows_R), self.n_latents
        peaks = self.values_NK.new_zeros(R * F)
        keys = self._flat_keys(self.row_N[:, None], self.idx_NK).reshape(-1)
        peaks.scatter_reduce_(0, keys, self.values_NK.reshape(-1), "amax")
        return peaks.view(R, F).T

    def latent_max(self) -> Tensor:
        """As `BatchLatents.latent_max`: values are >= 0 and a latent absent from a token is 0 there."""
        out = self.values_NK.new_zeros(self.n_latents)
        if self.n_tokens == 0:
            return out.fill_(float("-inf"))
        return out.scatter_reduce_(0, self.idx_NK.reshape(-1), self.values_NK.reshape(-1), "amax")

    def positives(self) -> tuple[Tensor, Tensor]:
        keep = self.values_NK > 0
        return self.idx_NK[keep], self.values_NK[keep]

    def winner_rows(self, r_M: Tensor, f_M: Tensor) -> Tensor:
        """As `BatchLatents.winner_rows`; the (row, latent) pairs of the winners must be distinct."""
        out_MT = self.values_NK.new_zeros(len(r_M), self.n_cols)
        if not len(r_M) or not self.n_tokens:
            return out_MT
        win_keys, order = self._flat_keys(r_M, f_M).sort()
        entry_keys = self._flat_keys(self.row_N[:, None], self.idx_NK).reshape(-1)
        at = torch.searchsorted(win_keys, entry_keys).clamp_max(len(win_keys) - 1)
        hit = win_keys[at] == entry_keys
        k = self.idx_NK.shape[1]
        token_E = self.tok_N.repeat_interleave(k)[hit]
        out_MT[order[at[hit]], token_E] = self.values_NK.reshape(-1)[hit]
        return out_MT
