"""Residual-stream activations of verse-aligned text: every token of every verse in every language, per layer.

1. Each language's verses are tokenized (right padding) and run once, as far as the deepest layer asked for.
2. Kept: real tokens except the first (BOS: a huge-norm position on Gemma that says nothing about content),
   with the verse index and the language index of each.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from interplab.data.bibles import AlignedVerse
from interplab.models import LoadedModel, run_to_capture


@dataclass
class VerseActivations:
    """Token activations of aligned verses."""

    languages: list[str]
    layers: list[int]
    acts: dict[int, Tensor]
    """Layer -> [N, d] activations at blocks.{layer}.resid_post (float32, CPU)."""
    verse_N: Tensor
    """Verse index of each token."""
    lang_N: Tensor
    """Language index (into `languages`) of each token."""
    n_verses: int


def hook_of(layer: int) -> str:
    return f"blocks.{layer}.resid_post"


def verse_activations(lm: LoadedModel, verses: Sequence[AlignedVerse], languages: Sequence[str],
                      layers: Sequence[int], batch_size: int = 8, max_length: int = 96) -> VerseActivations:
    """Activations at `layers` for every verse in every language (see the module docstring)."""
    hooks = [hook_of(layer) for layer in layers]
    acts: dict[int, list[Tensor]] = {layer: [] for layer in layers}
    verse_ids, lang_ids = [], []
    side = lm.tokenizer.padding_side
    lm.tokenizer.padding_side = "right"
    try:
        for li, lang in enumerate(languages):
            for start in range(0, len(verses), batch_size):
                texts = [v.texts[lang] for v in verses[start:start + batch_size]]
                batch = lm.tokenize(texts, max_length=max_length)
                captured = run_to_capture(lm.model, batch, hooks)
                keep_BS = batch["attention_mask"].bool().clone()
                keep_BS[:, 0] = False
                for layer, hook in zip(layers, hooks, strict=True):
                    acts[layer].append(captured[hook][keep_BS].float().cpu())
                rows = torch.arange(start, start + len(texts))[:, None].expand_as(keep_BS)
                verse_ids.append(rows[keep_BS.cpu()])
                lang_ids.append(torch.full((int(keep_BS.sum()),), li))
    finally:
        lm.tokenizer.padding_side = side
    return VerseActivations(languages=list(languages), layers=list(layers),
                            acts={layer: torch.cat(parts) for layer, parts in acts.items()},
                            verse_N=torch.cat(verse_ids), lang_N=torch.cat(lang_ids), n_verses=len(verses))
