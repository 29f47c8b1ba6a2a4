"""Transcoders in EleutherAI sparsify's layout (read and write); the SAELens layout is io.py's.

sparsify folder (one per hookpoint): `cfg.json` = {activation: "topk", k, num_latents,
expansion_factor, normalize_decoder, multi_topk, skip_connection, transcode: true, d_in} and
`sae.safetensors` = {`encoder.weight` [d_sae, d_in], `encoder.bias` [d_sae], `W_dec` [d_sae, d_in],
`b_dec` [d_in], `W_skip` [d_in, d_in] with skip_connection}; the encoder reads x without subtracting
b_dec when `transcode` is true, and the skip path adds x @ W_skip.T. sparsify is TopK-only and its
transcoders map d_in to d_in, so JumpReLU transcoders and d_out != d_in are refused here (write those
as SAELens folders with `save_sae`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save as st_save

from interplab.common import InterplabError, dtype_name
from interplab.files import write_bytes_atomic, write_json_atomic
from interplab.saes.base import SAE
from interplab.saes.registry import make_sae, sae_config
from interplab.saes.transcoder import TopKTranscoder, is_transcoder

SPARSIFY_CFG = "cfg.json"
SPARSIFY_WEIGHTS = "sae.safetensors"


def save_sparsify_transcoder(sae: SAE, folder: str | Path) -> Path:
    """Write a TopK (skip-)transcoder as a sparsify folder (weights first, cfg.json last)."""
    if not isinstance(sae, TopKTranscoder):
        raise InterplabError(f"sparsify stores TopK transcoders only, not {sae.cfg.architecture}; save it as a "
                             "SAELens folder (save_sae) instead")
    cfg: Any = sae.cfg
    if cfg.d_target != cfg.d_in:
        raise InterplabError(f"sparsify transcoders map d_in to d_in; this one maps {cfg.d_in} to {cfg.d_target}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {"encoder.weight": sae.W_enc.detach().T, "encoder.bias": sae.b_enc.detach(),
               "W_dec": sae.W_dec.detach(), "b_dec": sae.b_dec.detach()}
    if cfg.skip:
        tensors["W_skip"] = sae.W_skip.detach()
    data = st_save({k: v.cpu().contiguous() for k, v in tensors.items()}, metadata={"format": "pt"})
    write_bytes_atomic(folder / SPARSIFY_WEIGHTS, data)
    write_json_atomic(folder / SPARSIFY_CFG, {
        "activation": "topk", "expansion_factor": max(1, cfg.d_sae // cfg.d_in), "normalize_decoder": cfg.normalize_decoder,
        "num_latents": cfg.d_sae, "k": cfg.k, "multi_topk": False, "skip_connection": bool(cfg.skip),
        "transcode": True, "d_in": cfg.d_in,
    })
    return folder


def load_sparsify_transcoder(folder: str | Path, raw: dict[str, Any], tensors: dict[str, torch.Tensor],
                             device: Any = None, dtype: torch.dtype | None = None) -> SAE:
    """Build a TopK (skip-)transcoder from a sparsify folder's parsed cfg.json and tensors."""
    from interplab.saes.io import _expect

    folder = Path(folder)
    src = str(folder / SPARSIFY_WEIGHTS)
    if not raw.get("transcode"):
        raise InterplabError(f"{folder} is a sparsify skip-connection autoencoder (skip_connection without "
                             "transcode); interplab reads sparsify SAEs and transcoders only")
    if raw.get("activation", "topk") != "topk":
        raise InterplabError(f"{folder} uses sparsify activation {raw.get('activation')!r}; only 'topk' is supported")
    if "encoder.weight" not in tensors or "k" not in raw:
        raise InterplabError(f"{folder} is not a sparsify transcoder (needs encoder.weight and cfg.json 'k')")
    d_sae, d_in = tensors["encoder.weight"].shape
    skip = bool(raw.get("skip_connection")) or "W_skip" in tensors
    converted = {"W_enc": _expect(tensors, "encoder.weight", (d_sae, d_in), src).T,
                 "b_enc": _expect(tensors, "encoder.bias", (d_sae,), src),
                 "W_dec": _expect(tensors, "W_dec", (d_sae, d_in), src),
                 "b_dec": _expect(tensors, "b_dec", (d_in,), src)}
    if skip:
        converted["W_skip"] = _expect(tensors, "W_skip", (d_in, d_in), src)
    arch = "topk_skip_transcoder" if skip else "topk_transcoder"
    cfg = sae_config(arch, d_in=int(d_in), d_sae=int(d_sae), k=int(raw["k"]),
                     normalize_decoder=bool(raw.get("normalize_decoder", False)),
                     dtype=dtype_name(converted["W_enc"].dtype),
                     metadata={"source_format": "sparsify", "hook_name": folder.name})
    sae = make_sae(cfg)
    sae.import_tensors_(converted, source=src)
    sae.eval()
    if device is not None or dtype is not None:
        sae.to(device=device, dtype=dtype)
    return sae


__all__ = ["is_transcoder", "load_sparsify_transcoder", "save_sparsify_transcoder"]
