"""Decoding a residual stream into next-token log-probabilities with the model's own final norm and unembedding.

The logit lens (nostalgebraist 2020, https://www.lesswrong.com/posts/AcKRB8wDpdaN6v6ru) reads an intermediate
residual stream h as if it were the last one:
1. h -> the model's final norm (RMSNorm / LayerNorm, its own weights) -> the LM head (unembedding).
2. Families that soft-cap their logits (Gemma 2: `final_logit_softcapping`) cap them the same way.
3. log_softmax over the vocabulary.
Applied to the last block's output this is exactly the model's own next-token distribution, which the tests
check on every decoder family we have a table for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from interplab.common import InterplabError
from interplab.models import LoadedModel, resolve_hook

EMBED = "embed"


def lens_hooks(lm: LoadedModel) -> list[str]:
    """The residual streams a lens reads, in order: `embed`, then `blocks.{L}.resid_post` for every block."""
    return [EMBED, *(f"blocks.{layer}.resid_post" for layer in range(lm.n_layers))]


def layer_labels(n_layers: int) -> list[str]:
    """Row labels of a lens: 'embed', then the block index of each resid_post ('0', '1', ...)."""
    return [EMBED, *(str(layer) for layer in range(n_layers))]


@dataclass
class FinalDecoder:
    """The frozen path from the last residual stream to logits: final norm, LM head, optional soft cap."""

    norm: nn.Module
    head: nn.Module
    softcap: float | None = None

    def logits(self, h_ND: Tensor, tokens: Sequence[int] | None = None) -> Tensor:
        """Logits [..., vocab] of residual streams [..., d] (float32); with `tokens`, only those
        columns [..., len(tokens)], in that order (the unembedding multiplies by their rows only)."""
        h_ND = self.norm(h_ND)
        if tokens is None:
            logits = self.head(h_ND).float()
        else:
            ids = torch.as_tensor(list(tokens), dtype=torch.long, device=h_ND.device)
            weight: Tensor = self.head.weight  # type: ignore[assignment]
            bias: Tensor | None = getattr(self.head, "bias", None)
            logits = F.linear(h_ND, weight[ids], None if bias is None else bias[ids]).float()
        if self.softcap:
            logits = torch.tanh(logits / self.softcap) * self.softcap
        return logits

    def log_probs(self, h_ND: Tensor) -> Tensor:
        return torch.log_softmax(self.logits(h_ND), dim=-1)


def final_decoder(lm: LoadedModel) -> FinalDecoder:
    """The decoder of a causal LM; a one-line error for encoders and families without a final-norm entry."""
    if not lm.is_causal:
        raise InterplabError(f"{lm.name} is not a causal LM: the logit lens reads next-token predictions, so pass "
                             "a decoder such as smollm2-135m, gemma3-270m or gpt2")
    get_head = getattr(lm.model, "get_output_embeddings", None)
    head = get_head() if callable(get_head) else None
    if head is None:
        raise InterplabError(f"{lm.name} has no LM head (get_output_embeddings() is None); load it as a causal LM")
    try:
        norm = resolve_hook(lm.model, "ln_final").module
    except InterplabError:
        raise InterplabError(f"no final-norm entry for family {lm.family!r} ({type(lm.model).__name__}): the "
                             "lens needs the model's final norm; add the family to models/hookpoints.py") from None
    softcap = getattr(getattr(lm.model, "config", None), "final_logit_softcapping", None)
    return FinalDecoder(norm=norm, head=head, softcap=float(softcap) if softcap else None)


def kl_from_log_probs(target_NV: Tensor, pred_NV: Tensor) -> Tensor:
    """KL(target || pred) in nats per row [N], both given as log-probabilities."""
    return (target_NV.exp() * (target_NV - pred_NV)).sum(-1)
