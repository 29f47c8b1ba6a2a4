"""Nearest latents by decoder cosine similarity, chunked so [F, F] is never built.

1. Normalise the decoder rows W_dec [F, D] to unit length once.
2. For a chunk of C query latents: cos [C, F] = W_chunk @ W_unitᵀ, the query's own column set to
   -inf, `topk(n)` per row. Memory is C · F per chunk (C = 256 at 100k latents is 100 MB in fp32).
"""

from __future__ import annotations

import torch
from torch import Tensor


def unit_rows(w_dec_FD: Tensor) -> Tensor:
    """Decoder rows scaled to unit norm (zero rows stay zero)."""
    w = w_dec_FD.float()
    return w / w.norm(dim=1, keepdim=True).clamp_min(1e-12)


def nearest_latents(unit_FD: Tensor, query: Tensor, n: int) -> list[list[tuple[int, float]]]:
    """For each latent index in `query` [C]: [(latent, cosine), ...] of its n nearest others."""
    n = min(n, unit_FD.shape[0] - 1)
    if n <= 0:
        return [[] for _ in range(len(query))]
    query = query.to(unit_FD.device)
    cos_CF = unit_FD[query] @ unit_FD.T
    cos_CF[torch.arange(len(query), device=cos_CF.device), query] = float("-inf")
    top = cos_CF.topk(n, dim=1)
    ids, values = top.indices.cpu().tolist(), top.values.cpu().tolist()
    return [list(zip(i, v, strict=True)) for i, v in zip(ids, values, strict=True)]


def nearest_all(w_dec_FD: Tensor, n: int, chunk: int = 256) -> list[list[tuple[int, float]]]:
    """Nearest neighbours of every latent, `chunk` queries at a time."""
    unit_FD = unit_rows(w_dec_FD)
    out: list[list[tuple[int, float]]] = []
    for start in range(0, unit_FD.shape[0], chunk):
        out += nearest_latents(unit_FD, torch.arange(start, min(start + chunk, unit_FD.shape[0])), n)
    return out
