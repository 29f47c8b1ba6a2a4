"""SAE files: write SAELens v6 folders; read them back, plus sparsify and dictionary_learning layouts.

Our folder is a SAELens v6 folder (`cfg.json` + `sae_weights.safetensors`) whose cfg.json also
carries our full config under the key "interplab", so SAELens users load it with
`SAE.load_from_disk(folder)` and we rebuild the exact same object (tied weights, BatchTopK, ...).

Only safetensors and JSON are ever read. Pickle-based files (`.pt`, `.pth`, `.bin`, `.ckpt`) are
refused: unpickling runs arbitrary code from the file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import Tensor

from interplab.common import InterplabError, dtype_name, get_logger
from interplab.saes.base import SAE, SAEConfig
from interplab.saes.registry import make_sae

log = get_logger(__name__)

CFG_FILENAME = "cfg.json"
WEIGHTS_FILENAME = "sae_weights.safetensors"
SPARSIFY_WEIGHTS = "sae.safetensors"
PICKLE_SUFFIXES = {".pt", ".pth", ".bin", ".ckpt", ".pkl", ".pickle"}

# Our architecture name -> SAELens v6 architecture name. BatchTopK is saved as JumpReLU with its
# global inference threshold copied to every latent: that is exactly its per-token inference rule.
TO_SAELENS_ARCH = {"relu": "standard", "topk": "topk", "jumprelu": "jumprelu", "batchtopk": "jumprelu"}
FROM_SAELENS_ARCH = {"standard": "relu", "topk": "topk", "jumprelu": "jumprelu", "batchtopk": "batchtopk"}


def refuse_pickle(path: Path) -> None:
    """Raise if `path` is a pickle-based checkpoint."""
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise InterplabError(
            f"{path} is a pickle file, which can run code when loaded; convert it to safetensors in a "
            "trusted environment (safetensors.torch.save_file(torch.load(p, weights_only=True), 'ae.safetensors'))"
        )


def read_safetensors(path: Path) -> dict[str, Tensor]:
    """All tensors of a safetensors file (on CPU)."""
    refuse_pickle(path)
    if not path.is_file():
        raise InterplabError(f"no weights file at {path}")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            return {k: f.get_tensor(k) for k in f.keys()}
    except (OSError, ValueError, RuntimeError, SafetensorError) as e:
        raise InterplabError(f"{path} is not a readable safetensors file ({e})") from None


def read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise InterplabError(f"no {path.name} in {path.parent}; an SAE folder needs cfg.json next to its weights")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise InterplabError(f"{path} is not valid JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(data, dict):
        raise InterplabError(f"{path} must hold a JSON object")
    return data


def _atomic_write_bytes(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


# ---- writing ---------------------------------------------------------------------------------


def saelens_cfg_dict(sae: SAE, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """The cfg.json content: SAELens v6 keys plus our config under "interplab"."""
    cfg = sae.cfg
    ours = cfg.to_dict()
    ours["metadata"] = {**cfg.metadata, **(metadata or {})}
    ours["dtype"] = dtype_name(sae.dtype)
    out: dict[str, Any] = {
        "architecture": TO_SAELENS_ARCH.get(cfg.architecture, cfg.architecture),
        "d_in": cfg.d_in,
        "d_sae": cfg.d_sae,
        "dtype": dtype_name(sae.dtype),
        "device": "cpu",
        "apply_b_dec_to_input": cfg.apply_b_dec_to_input,
        "normalize_activations": "none",
        "reshape_activations": "none",
        "metadata": ours["metadata"],
        "interplab": ours,
    }
    if cfg.architecture == "topk":
        out["k"] = cfg.k
        out["rescale_acts_by_decoder_norm"] = False
    return out


def _same_weights(folder: Path, tensors: dict[str, Tensor]) -> bool:
    try:
        old = read_safetensors(folder / WEIGHTS_FILENAME)
    except InterplabError:
        return False
    return old.keys() == tensors.keys() and all(torch.equal(old[k], tensors[k]) for k in tensors)


def save_sae(
    sae: SAE, folder: str | Path, metadata: dict[str, Any] | None = None, overwrite: bool = False
) -> Path:
    """Write `folder/cfg.json` and `folder/sae_weights.safetensors` (SAELens v6 layout).

    Files are written to temporaries and renamed, weights first and cfg.json last, so a killed
    save never leaves a folder that looks complete. A folder already holding a different SAE is
    kept unless `overwrite=True`. `metadata` is merged into the saved metadata (model, hook...).
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InterplabError(f"{folder} exists and is not a folder; pick a folder path for the SAE")
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.cpu().contiguous() for k, v in sae.export_tensors().items()}
    has_old = (folder / WEIGHTS_FILENAME).exists() or (folder / CFG_FILENAME).exists()
    if has_old and not overwrite and not _same_weights(folder, tensors):
        raise InterplabError(f"{folder} already holds a different SAE; pass overwrite=True or choose another folder")
    cfg = saelens_cfg_dict(sae, metadata)
    _atomic_write_bytes(folder / WEIGHTS_FILENAME, lambda p: save_file(tensors, str(p), metadata={"format": "pt"}))
    _atomic_write_bytes(folder / CFG_FILENAME, lambda p: p.write_text(json.dumps(cfg, indent=2)))
    return folder


# ---- reading ---------------------------------------------------------------------------------


def _metadata_from_saelens(raw: dict[str, Any]) -> dict[str, Any]:
    meta = dict(raw.get("metadata") or raw.get("meta") or {})
    for key in ("model_name", "hook_name", "context_size", "dataset_path", "neuronpedia_id", "prepend_bos"):
        if key in raw and key not in meta:  # pre-v6 SAELens kept these at top level
            meta[key] = raw[key]
    return meta


def config_from_saelens(raw: dict[str, Any]) -> SAEConfig:
    """Build our config from a SAELens (v6 or older) cfg.json dict."""
    if "interplab" in raw:
        return SAEConfig.from_dict(raw["interplab"])
    arch_raw = raw.get("architecture", "standard")
    arch = FROM_SAELENS_ARCH.get(arch_raw)
    kwargs = dict(raw.get("activation_fn_kwargs") or {})
    k = raw.get("k", kwargs.get("k"))
    if arch == "relu" and raw.get("activation_fn_str", raw.get("activation_fn")) == "topk":
        arch = "topk"  # pre-v6 SAELens wrote TopK SAEs as "standard" + activation_fn_str "topk"
    if arch is None:
        raise InterplabError(f"SAELens architecture {arch_raw!r} is not supported; supported: {sorted(FROM_SAELENS_ARCH)}")
    norm = raw.get("normalize_activations") or "none"
    if norm in ("constant_norm_rescale", "layer_norm"):
        raise InterplabError(f"SAE uses normalize_activations={norm!r}, which interplab does not apply; use a 'none' SAE")
    if norm != "none":
        log.warning("SAE expects inputs scaled by normalize_activations=%r; scale them before encoding", norm)
    if raw.get("rescale_acts_by_decoder_norm"):
        raise InterplabError("SAE sets rescale_acts_by_decoder_norm, which interplab does not support yet")
    for key in ("d_in", "d_sae"):
        if not isinstance(raw.get(key), int):
            raise InterplabError(f"cfg.json lacks an integer {key!r}")
    cfg = SAEConfig(
        d_in=raw["d_in"],
        d_sae=raw["d_sae"],
        architecture=arch,
        apply_b_dec_to_input=bool(raw.get("apply_b_dec_to_input", True)),
        dtype=str(raw.get("dtype", "float32")).removeprefix("torch."),
        metadata=_metadata_from_saelens(raw),
    )
    if arch in ("topk", "batchtopk"):
        if k is None:
            raise InterplabError("TopK cfg.json lacks 'k'")
        cfg.k = int(k)
    return cfg


def _finish(sae: SAE, device: str | torch.device | None, dtype: torch.dtype | None) -> SAE:
    sae.eval()
    if device is not None or dtype is not None:
        sae.to(device=device, dtype=dtype)
    return sae


def load_saelens(folder: str | Path, device=None, dtype: torch.dtype | None = None) -> SAE:
    """Load an interplab or SAELens folder (cfg.json + sae_weights.safetensors)."""
    folder = Path(folder)
    raw = read_json(folder / CFG_FILENAME)
    cfg = config_from_saelens(raw)
    tensors = read_safetensors(folder / WEIGHTS_FILENAME)
    sae = make_sae(cfg)
    sae.import_tensors_(tensors, source=str(folder / WEIGHTS_FILENAME))
    return _finish(sae, device, dtype)


def load_sae(path: str | Path, device=None, dtype: torch.dtype | None = None) -> SAE:
    """Load an SAE from a folder or file, detecting the layout (interplab/SAELens, sparsify,
    dictionary_learning safetensors). Pickle files are refused."""
    path = Path(path)
    refuse_pickle(path)
    if not path.exists():
        raise InterplabError(f"no SAE at {path}; give a folder holding cfg.json + sae_weights.safetensors")
    if path.is_file():
        if path.name in (WEIGHTS_FILENAME, CFG_FILENAME):
            return load_saelens(path.parent, device, dtype)
        if path.name == SPARSIFY_WEIGHTS:
            return load_sparsify(path.parent, device=device, dtype=dtype)
        if path.suffix == ".safetensors":
            return load_dictionary_learning(path, device=device, dtype=dtype)
        raise InterplabError(f"{path} is not an SAE file; expected a folder or a .safetensors file")
    if (path / WEIGHTS_FILENAME).exists():
        return load_saelens(path, device, dtype)
    if (path / SPARSIFY_WEIGHTS).exists():
        return load_sparsify(path, device=device, dtype=dtype)
    if (path / "ae.safetensors").exists():
        return load_dictionary_learning(path / "ae.safetensors", device=device, dtype=dtype)
    for name in ("ae.pt", "sae.pt", "model.pt"):
        if (path / name).exists():
            refuse_pickle(path / name)
    raise InterplabError(f"{path} holds no SAE; expected {WEIGHTS_FILENAME}, {SPARSIFY_WEIGHTS} or ae.safetensors")


# ---- peers' layouts --------------------------------------------------------------------------


def _expect(tensors: dict[str, Tensor], name: str, shape: tuple[int, ...], source: str) -> Tensor:
    if name not in tensors:
        raise InterplabError(f"{source} lacks tensor {name!r} (expected shape {shape}); found {sorted(tensors)}")
    t = tensors[name]
    if tuple(t.shape) != shape:
        raise InterplabError(f"{source}: tensor {name!r} has shape {tuple(t.shape)}, expected {shape}")
    return t


def load_sparsify(folder: str | Path, device=None, dtype: torch.dtype | None = None) -> SAE:
    """Read an EleutherAI sparsify folder: cfg.json + sae.safetensors with `encoder.weight` [d_sae, d_in],
    `encoder.bias` [d_sae], `W_dec` [d_sae, d_in], `b_dec` [d_in]; `k` from cfg.json."""
    folder = Path(folder)
    raw = read_json(folder / CFG_FILENAME)
    src = str(folder / SPARSIFY_WEIGHTS)
    tensors = read_safetensors(folder / SPARSIFY_WEIGHTS)
    if raw.get("transcode") or raw.get("skip_connection") or "W_skip" in tensors:
        raise InterplabError(f"{folder} is a sparsify transcoder / skip-connection model, not an SAE; not supported")
    if raw.get("activation", "topk") != "topk":
        raise InterplabError(f"{folder} uses sparsify activation {raw.get('activation')!r}; only 'topk' is supported")
    if "encoder.weight" not in tensors:
        raise InterplabError(f"{src} lacks tensor 'encoder.weight'; found {sorted(tensors)}")
    d_sae, d_in = tensors["encoder.weight"].shape
    d_in = int(raw.get("d_in", d_in))
    n_lat = raw.get("num_latents") or 0
    d_sae = int(n_lat) if n_lat else int(raw.get("expansion_factor", d_sae / d_in) * d_in)
    if "k" not in raw:
        raise InterplabError(f"{folder / CFG_FILENAME} lacks 'k'; a sparsify TopK cfg.json always has it")
    w_enc = _expect(tensors, "encoder.weight", (d_sae, d_in), src)
    converted = {
        "W_enc": w_enc.T,
        "b_enc": _expect(tensors, "encoder.bias", (d_sae,), src),
        "W_dec": _expect(tensors, "W_dec", (d_sae, d_in), src),
        "b_dec": _expect(tensors, "b_dec", (d_in,), src),
    }
    meta = {"source_format": "sparsify", "hook_name": folder.name}
    cfg = SAEConfig(d_in=d_in, d_sae=d_sae, architecture="topk", k=int(raw["k"]), apply_b_dec_to_input=True,
                    dtype=dtype_name(w_enc.dtype), metadata=meta)
    sae = make_sae(cfg)
    sae.import_tensors_(converted, source=src)
    return _finish(sae, device, dtype)


def _dl_trainer_cfg(path: Path) -> dict[str, Any]:
    cfg_path = path.parent / "config.json"
    if not cfg_path.is_file():
        return {}
    return dict(read_json(cfg_path).get("trainer") or {})


def _dl_linear_layout(tensors: dict[str, Tensor], src: str, k: int | None) -> tuple[SAEConfig, dict[str, Tensor]]:
    """dictionary_learning AutoEncoder / AutoEncoderTopK / BatchTopKSAE (nn.Linear encoder and decoder)."""
    d_sae, d_in = tensors["encoder.weight"].shape
    bias_name = "b_dec" if "b_dec" in tensors else "bias"
    converted = {
        "W_enc": _expect(tensors, "encoder.weight", (d_sae, d_in), src).T,
        "b_enc": _expect(tensors, "encoder.bias", (d_sae,), src),
        "W_dec": _expect(tensors, "decoder.weight", (d_in, d_sae), src).T,
        "b_dec": _expect(tensors, bias_name, (d_in,), src),
    }
    dtype = dtype_name(converted["W_enc"].dtype)
    if bias_name == "bias":  # the standard ReLU AutoEncoder: relu(encoder(x - bias))
        return SAEConfig(d_in=d_in, d_sae=d_sae, architecture="relu", dtype=dtype), converted
    if "k" in tensors:
        k = int(tensors["k"].item())
    if k is None:
        raise InterplabError(f"{src} has no 'k' buffer; pass k= (the TopK k the SAE was trained with)")
    threshold = float(tensors["threshold"].item()) if "threshold" in tensors else -1.0
    if threshold >= 0:  # BatchTopK: inference keeps latents above a global threshold
        converted["threshold"] = torch.full((d_sae,), threshold, dtype=converted["W_enc"].dtype)
        return SAEConfig(d_in=d_in, d_sae=d_sae, architecture="batchtopk", k=k, dtype=dtype), converted
    return SAEConfig(d_in=d_in, d_sae=d_sae, architecture="topk", k=k, dtype=dtype), converted


def load_dictionary_learning(path: str | Path, k: int | None = None, device=None, dtype=None) -> SAE:
    """Read a dictionary_learning SAE saved as safetensors (their `ae.pt` pickles are refused).

    Layouts: AutoEncoder (`encoder.weight` [d_sae, d_in], `encoder.bias`, `decoder.weight`
    [d_in, d_sae], `bias`), AutoEncoderTopK / BatchTopKSAE (same with `b_dec`, buffers `k` and
    `threshold`), JumpReluAutoEncoder (`W_enc`, `b_enc`, `W_dec`, `b_dec`, `threshold`, no b_dec
    subtraction). `k` is read from the file, else its config.json, else this argument.
    """
    path = Path(path)
    refuse_pickle(path)
    if path.is_dir():
        path = path / "ae.safetensors"
    tensors = read_safetensors(path)
    src = str(path)
    k = k if k is not None else _dl_trainer_cfg(path).get("k")
    if "W_enc" in tensors and "threshold" in tensors:
        d_in, d_sae = tensors["W_enc"].shape
        cfg = SAEConfig(d_in=d_in, d_sae=d_sae, architecture="jumprelu", apply_b_dec_to_input=False,
                        dtype=dtype_name(tensors["W_enc"].dtype))
        converted = {name: _expect(tensors, name, shape, src) for name, shape in
                     {"W_enc": (d_in, d_sae), "b_enc": (d_sae,), "W_dec": (d_sae, d_in), "b_dec": (d_in,),
                      "threshold": (d_sae,)}.items()}
    elif "encoder.weight" in tensors:
        cfg, converted = _dl_linear_layout(tensors, src, k)
    else:
        raise InterplabError(f"{src} is not a dictionary_learning SAE layout; found tensors {sorted(tensors)}")
    cfg.metadata = {"source_format": "dictionary_learning"}
    sae = make_sae(cfg)
    sae.import_tensors_(converted, source=src)
    return _finish(sae, device, dtype)
