"""Tuned-lens translators (Belrose et al. 2023, "Eliciting Latent Predictions from Transformers with the Tuned
Lens", https://arxiv.org/abs/2303.08112) and their files.

1. One affine translator per lens layer: h -> h + h W_l + b_l, with W_l and b_l starting at zero, so an
   untrained tuned lens is exactly the logit lens.
2. The translated stream goes through the frozen final norm and unembedding (lens/decode.py).
3. The last block's translator stays the identity: its decoded stream is already the model's output.

On disk, a folder: `tuned_lens.safetensors` (tensors `weight` [L, d, d] and `bias` [L, d]) and `tuned_lens.json`
(model, d_model, layer labels, the tensors' sha256, training facts). Never pickle.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import Tensor, nn

from interplab.common import InterplabError
from interplab.files import read_json_object, sha256_bytes, write_bytes_atomic, write_text_atomic

WEIGHTS_FILE = "tuned_lens.safetensors"
META_FILE = "tuned_lens.json"
FORMAT_VERSION = 1


class TunedLens(nn.Module):
    """Affine translators for lens layers `labels` ('embed', '0', ..., the last one kept as the identity)."""

    def __init__(self, d_model: int, labels: list[str], metadata: dict[str, Any] | None = None):
        super().__init__()
        self.labels = list(labels)
        self.metadata = dict(metadata or {})
        n = len(self.labels)
        self.weight_LDD = nn.Parameter(torch.zeros(n, d_model, d_model))
        self.bias_LD = nn.Parameter(torch.zeros(n, d_model))

    @property
    def d_model(self) -> int:
        return int(self.weight_LDD.shape[-1])

    def translate(self, layer: int, h_ND: Tensor) -> Tensor:
        """The translated residual stream of lens layer `layer` (the last layer passes through unchanged)."""
        if layer == len(self.labels) - 1:
            return h_ND
        w_DD = self.weight_LDD[layer].to(h_ND.dtype)
        return h_ND + h_ND @ w_DD + self.bias_LD[layer].to(h_ND.dtype)

    def trainable_layers(self) -> range:
        """Layers whose translators are trained (all but the last)."""
        return range(len(self.labels) - 1)


def save_tuned_lens(lens: TunedLens, folder: str | Path) -> Path:
    """Write the lens folder (tensors first, JSON with their sha256 second); return the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    data = st_save({"weight": lens.weight_LDD.detach().cpu().contiguous(),
                    "bias": lens.bias_LD.detach().cpu().contiguous()})
    write_bytes_atomic(folder / WEIGHTS_FILE, data)
    meta = {"format_version": FORMAT_VERSION, "d_model": lens.d_model, "layers": lens.labels,
            "weights_sha256": sha256_bytes(data), "metadata": lens.metadata}
    write_text_atomic(folder / META_FILE, json.dumps(meta, indent=2))
    return folder


def is_tuned_lens_folder(folder: str | Path) -> bool:
    return (Path(folder) / META_FILE).is_file() and (Path(folder) / WEIGHTS_FILE).is_file()


def load_tuned_lens(folder: str | Path, device: str | torch.device = "cpu") -> TunedLens:
    """Read a lens folder, checking the weights against their sha256 and the shapes against the JSON."""
    folder = Path(folder)
    if not is_tuned_lens_folder(folder):
        raise InterplabError(f"{folder} is not a tuned-lens folder (it needs {META_FILE} and {WEIGHTS_FILE}); "
                             "train one with `interplab lens --model ...`")
    meta = read_json_object(folder / META_FILE, what="tuned-lens metadata")
    data = (folder / WEIGHTS_FILE).read_bytes()
    if meta.get("weights_sha256") not in (None, sha256_bytes(data)):
        raise InterplabError(f"{folder / WEIGHTS_FILE} does not match its sha256: the file is damaged; train again")
    tensors = st_load(data)
    labels = meta.get("layers")
    d = meta.get("d_model")
    if not isinstance(labels, list) or not isinstance(d, int) or "weight" not in tensors or "bias" not in tensors:
        raise InterplabError(f"{folder / META_FILE} lacks layers/d_model or the weights lack weight/bias; train again")
    if tuple(tensors["weight"].shape) != (len(labels), d, d) or tuple(tensors["bias"].shape) != (len(labels), d):
        raise InterplabError(f"{folder}: weight {tuple(tensors['weight'].shape)} / bias {tuple(tensors['bias'].shape)} "
                             f"do not match {len(labels)} layers of d={d}; train again")
    lens = TunedLens(d, labels, meta.get("metadata") or {})
    with torch.no_grad():
        lens.weight_LDD.copy_(tensors["weight"])
        lens.bias_LD.copy_(tensors["bias"])
    return lens.to(device).eval()
