"""Logit effects of latents: the tokens a decoder direction promotes and suppresses most.

1. effect[f] = W_dec[f] @ W_U, the direct effect of adding the latent's decoder direction to the
   residual stream on the logits (as on Neuronpedia; it ignores the layers after the hook and the
   final layer norm, so it is exact only for the last layer and a guide elsewhere).
2. The top-n and bottom-n tokens of each row, decoded to strings.
Computed per batch of latents ([N, vocab] at a time, never [F, vocab]). Models without an
unembedding (sentence encoders such as MiniLM) have no logit effects: the lists stay empty.
"""

from __future__ import annotations

import torch
from torch import Tensor

from interplab.models.tokens import TokenText


def logit_effects(w_dec_ND: Tensor, w_u_DV: Tensor | None, n: int,
                  token_text: TokenText) -> tuple[list[list[tuple[str, float]]], list[list[tuple[str, float]]]]:
    """(promoted, suppressed) per latent row: [(token, effect), ...], strongest first; empty lists
    when there is no unembedding or n is 0."""
    if w_u_DV is None or n == 0:
        empty: list[list[tuple[str, float]]] = [[] for _ in range(len(w_dec_ND))]
        return empty, [[] for _ in range(len(w_dec_ND))]
    effects_NV = w_dec_ND.to(w_u_DV.device, w_u_DV.dtype) @ w_u_DV
    n = min(n, effects_NV.shape[1])
    top = effects_NV.topk(n, dim=1)
    bottom = effects_NV.topk(n, dim=1, largest=False)
    return _named(top.values, top.indices, token_text), _named(bottom.values, bottom.indices, token_text)


def _named(values_NK: Tensor, idx_NK: Tensor, token_text: TokenText) -> list[list[tuple[str, float]]]:
    values, ids = values_NK.float().cpu().tolist(), idx_NK.cpu().tolist()
    return [[(token_text(i), v) for i, v in zip(row_ids, row_vals, strict=True)]
            for row_ids, row_vals in zip(ids, values, strict=True)]


def unembedding_of(lm) -> Tensor | None:  # type: ignore[no-untyped-def]
    """W_U [d_model, vocab] of a loaded model, or None (encoders, or no model)."""
    if lm is None:
        return None
    w_u = lm.unembedding()
    return None if w_u is None else torch.as_tensor(w_u).float()
