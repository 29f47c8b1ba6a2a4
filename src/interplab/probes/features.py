"""Per-example probe features: activations at several hooks, pooled to one vector per text.

One forward pass per batch serves every requested hook (and stops after the deepest one). Pooling:
  last    the last non-padding token (where a causal model has read the whole prompt)
  mean    the mean over non-padding tokens
  marker  the last token before a marker string in the text (the marker itself is removed first),
          for reading a chosen position such as the end of a question inside a longer prompt
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from interplab.common import InterplabError, get_logger
from interplab.models.interventions import run_to_capture
from interplab.models.loading import LoadedModel

log = get_logger(__name__)

POOLINGS = ("last", "mean", "marker")


@dataclass
class FeatureConfig:
    """How texts become one activation vector each."""

    pooling: str = "last"
    """'last' (last valid token), 'mean' (over valid tokens) or 'marker' (token before `marker`)."""
    marker: str = "<|probe|>"
    """With pooling='marker': the string marking the position to read (removed before tokenizing)."""
    batch_size: int = 16
    """Texts per forward pass."""
    max_length: int = 256
    """Truncate longer texts to this many tokens (from the right; markers must fall inside)."""


def hook_name(layer: int, site: str = "resid_post") -> str:
    """'blocks.{layer}.{site}' for a block-level site; `site` is returned as-is when it is a full name."""
    if site in ("resid_pre", "resid_post", "mlp_out", "attn_out"):
        return f"blocks.{layer}.{site}"
    return site


def _marker_char_positions(texts: Sequence[str], marker: str) -> tuple[list[str], list[int]]:
    cleaned, positions = [], []
    for i, text in enumerate(texts):
        at = text.find(marker)
        if at < 0:
            raise InterplabError(f"text {i} has no marker {marker!r}; add it where the probe should read")
        cleaned.append(text[:at] + text[at + len(marker) :])
        positions.append(at)
    return cleaned, positions


def _pool(acts_BSD: Tensor, mask_BS: Tensor, pooling: str, index_B: Tensor | None) -> Tensor:
    if pooling == "mean":
        weights_BS = mask_BS.to(acts_BSD.dtype)
        return (acts_BSD * weights_BS[..., None]).sum(1) / weights_BS.sum(1, keepdim=True).clamp_min(1)
    assert index_B is not None
    return acts_BSD[torch.arange(acts_BSD.shape[0], device=acts_BSD.device), index_B]


def _positions(batch: dict, mask_BS: Tensor, cfg: FeatureConfig, chars: list[int] | None) -> Tensor | None:
    if cfg.pooling == "mean":
        return None
    positions_BS = torch.arange(mask_BS.shape[1], device=mask_BS.device).expand_as(mask_BS)
    if cfg.pooling == "last":
        # the largest valid index works for left and right padding alike
        return torch.where(mask_BS.bool(), positions_BS, -1).amax(1)
    offsets_BS2 = batch["offset_mapping"]
    assert chars is not None
    char_B1 = torch.tensor(chars, device=mask_BS.device)[:, None]
    # tokens that start before the marker (and are real tokens, not special ones with empty spans)
    before_BS = mask_BS.bool() & (offsets_BS2[..., 0] < char_B1) & (offsets_BS2[..., 1] > offsets_BS2[..., 0])
    if not before_BS.any(1).all():
        raise InterplabError("a marker sits before the first token; put it after some text")
    return torch.where(before_BS, positions_BS, -1).amax(1)


def extract_features(
    lm: LoadedModel, texts: Sequence[str], hooks: Sequence[str], cfg: FeatureConfig | None = None
) -> dict[str, Tensor]:
    """Pooled activations {hook: [n_texts, d]} (float32, CPU) for every hook, one forward pass per batch."""
    cfg = cfg or FeatureConfig()
    if cfg.pooling not in POOLINGS:
        raise InterplabError(f"unknown pooling {cfg.pooling!r}; use one of {', '.join(POOLINGS)}")
    if not texts:
        raise InterplabError("no texts to extract features from")
    texts, chars = (
        _marker_char_positions(texts, cfg.marker) if cfg.pooling == "marker" else (list(texts), None)
    )
    if cfg.pooling == "marker" and not lm.tokenizer.is_fast:
        raise InterplabError("pooling='marker' needs a fast tokenizer (offsets); use pooling='last' instead")
    out: dict[str, list[Tensor]] = {h: [] for h in hooks}
    # Right padding: a left-padded forward without explicit position ids shifts every position
    # (HF models derive positions from the index, not the mask), so pooled values would change.
    side = lm.tokenizer.padding_side
    lm.tokenizer.padding_side = "right"
    try:
        for start in range(0, len(texts), cfg.batch_size):
            _extract_batch(lm, texts, chars, start, hooks, cfg, out)
    finally:
        lm.tokenizer.padding_side = side
    return {hook: torch.cat(parts) for hook, parts in out.items()}


def _extract_batch(
    lm: LoadedModel,
    texts: list[str],
    chars: list[int] | None,
    start: int,
    hooks: Sequence[str],
    cfg: FeatureConfig,
    out: dict[str, list[Tensor]],
) -> None:
    """Run one batch and append its pooled activations to `out` (in place)."""
    chunk = texts[start : start + cfg.batch_size]
    encoded = lm.tokenizer(
        chunk,
        return_tensors="pt",
        padding=True,
        truncation=True,
        max_length=cfg.max_length,
        return_offsets_mapping=cfg.pooling == "marker",
    )
    batch = {k: v.to(lm.device) for k, v in encoded.items()}
    model_inputs = {k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
    acts = run_to_capture(lm.model, model_inputs, list(hooks))
    mask_BS = batch["attention_mask"]
    index_B = _positions(batch, mask_BS, cfg, chars[start : start + cfg.batch_size] if chars else None)
    for hook in hooks:
        out[hook].append(_pool(acts[hook].float(), mask_BS, cfg.pooling, index_B).cpu())
    log.debug("features: %d/%d texts", min(start + cfg.batch_size, len(texts)), len(texts))
