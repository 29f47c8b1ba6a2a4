"""SAE files: write SAELens v6 folders; read them back, plus sparsify and dictionary_learning layouts.

Our folder is a SAELens v6 folder (`cfg.json` + `sae_weights.safetensors`) whose cfg.json also
carries our full config under the key "interplab", so SAELens users load it with
`SAE.load_from_disk(folder)` and we rebuild the exact same object (tied weights, BatchTopK, ...).

cfg.json also records the sha256 of the weights file (key "weights_sha256"); loading verifies it, so
flipped or truncated bytes are refused instead of used (peer files without the key load unverified).
`metadata.sae_lens_version` marks the cfg.json layout as SAELens 6 (without it SAELens reads the file
as pre-6.0 and drops `hook_name`/`model_name`).

Only safetensors and JSON are ever read. Pickle-based files (`.pt`, `.pth`, `.bin`, `.ckpt`) are
refused: unpickling runs arbitrary code from the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as st_save
from torch import Tensor

from interplab.common import InterplabError, dtype_name, get_logger
from interplab.files import read_json_object, sha256_bytes, sha256_file, write_bytes_atomic, write_json_atomic
from interplab.saes.base import SAE, SAEConfig
from interplab.saes.registry import architecture_from_saelens, config_class, make_sae, sae_config

log = get_logger(__name__)

CFG_FILENAME = "cfg.json"
WEIGHTS_FILENAME = "sae_weights.safetensors"
SPARSIFY_WEIGHTS = "sae.safetensors"
PICKLE_SUFFIXES = {".pt", ".pth", ".bin", ".ckpt", ".pkl", ".pickle"}

SAELENS_FORMAT_VERSION = "6.0.0"
"""The SAELens cfg.json layout we write (not an installed SAELens): SAELens reads a missing or older
`sae_lens_version` as a pre-6.0 file."""
WEIGHTS_SHA256 = "weights_sha256"


def refuse_pickle(path: Path) -> None:
    """Raise if `path` is a pickle-based checkpoint."""
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise InterplabError(
            f"{path} is a pickle file, which can run code when loaded; convert it to safetensors in a "
            "trusted environment: python -c \"import torch, safetensors.torch as s; "
            "s.save_file({k: v.contiguous() for k, v in torch.load('ae.pt', weights_only=True).items()}, "
            "'ae.safetensors')\""
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
    """An SAE folder's JSON object (cfg.json, config.json), with one-line errors."""
    return read_json_object(path, what="an SAE folder's JSON")


# ---- writing ---------------------------------------------------------------------------------


def saelens_cfg_dict(sae: SAE, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """The cfg.json content: SAELens v6 keys plus our config under "interplab"."""
    cfg = sae.cfg
    ours = cfg.to_dict()
    ours["metadata"] = {**cfg.metadata, **(metadata or {})}
    ours["dtype"] = dtype_name(sae.dtype)
    return {
        "architecture": cfg.saelens_architecture,
        "d_in": cfg.d_in,
        "d_sae": cfg.d_sae,
        "dtype": dtype_name(sae.dtype),
        "device": "cpu",
        "apply_b_dec_to_input": cfg.apply_b_dec_to_input,
        "normalize_activations": "none",
        "reshape_activations": "none",
        **cfg.saelens_fields(),
        "metadata": {**ours["metadata"], "sae_lens_version": SAELENS_FORMAT_VERSION},
        "interplab": ours,
    }


def _same_weights(folder: Path, data: bytes) -> bool:
    path = folder / WEIGHTS_FILENAME
    return path.is_file() and sha256_file(path) == sha256_bytes(data)


def save_sae(
    sae: SAE, folder: str | Path, metadata: dict[str, Any] | None = None, overwrite: bool = False
) -> Path:
    """Write `folder/cfg.json` and `folder/sae_weights.safetensors` (SAELens v6 layout).

    Files are written to temporaries and renamed, weights first and cfg.json (holding the weights'
    sha256) last, so a killed save never leaves a folder that looks complete. A folder already
    holding a different SAE is kept unless `overwrite=True`. `metadata` is merged into the saved
    metadata (model, hook...).
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InterplabError(f"{folder} exists and is not a folder; pick a folder path for the SAE")
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in sae.export_tensors().items()}
    data = st_save(tensors, metadata={"format": "pt"})
    has_old = (folder / WEIGHTS_FILENAME).exists() or (folder / CFG_FILENAME).exists()
    if has_old and not overwrite and not _same_weights(folder, data):
        raise InterplabError(f"{folder} already holds a different SAE; pass overwrite=True or choose another folder")
    cfg = saelens_cfg_dict(sae, metadata)
    cfg[WEIGHTS_SHA256] = sha256_bytes(data)
    write_bytes_atomic(folder / WEIGHTS_FILENAME, data)
    write_json_atomic(folder / CFG_FILENAME, cfg)
    return folder


# ---- reading ---------------------------------------------------------------------------------


def _metadata_from_saelens(raw: dict[str, Any]) -> dict[str, Any]:
    meta = dict(raw.get("metadata") or raw.get("meta") or {})
    for key in ("model_name", "hook_name", "context_size", "dataset_path", "neuronpedia_id", "prepend_bos"):
        if key in raw and key not in meta:  # pre-v6 SAELens kept these at top level
            meta[key] = raw[key]
    return meta


def config_from_saelens(raw: dict[str, Any], source: str = CFG_FILENAME) -> SAEConfig:
    """Build our config from a SAELens (v6 or older) cfg.json dict."""
    if "interplab" in raw:
        return SAEConfig.from_dict(raw["interplab"], source=f"{source} (interplab section)")
    arch_raw = str(raw.get("architecture", "standard"))
    if arch_raw == "standard" and raw.get("activation_fn_str", raw.get("activation_fn")) == "topk":
        arch_raw = "topk"  # pre-v6 SAELens wrote TopK SAEs as "standard" + activation_fn_str "topk"
    cls = config_class(architecture_from_saelens(arch_raw))
    norm = raw.get("normalize_activations") or "none"
    if norm in ("constant_norm_rescale", "layer_norm"):
        raise InterplabError(f"SAE uses normalize_activations={norm!r}, which interplab does not apply; use a 'none' SAE")
    if norm != "none":
        log.warning("SAE expects inputs scaled by normalize_activations=%r; scale them before encoding", norm)
    if raw.get("rescale_acts_by_decoder_norm"):
        raise InterplabError("SAE sets rescale_acts_by_decoder_norm, which interplab does not support yet")
    for key in ("d_in", "d_sae"):
        if not isinstance(raw.get(key), int) or isinstance(raw.get(key), bool):
            raise InterplabError(f"{source} lacks an integer {key!r} (found {raw.get(key)!r})")
    fields = {"apply_b_dec_to_input": bool(raw.get("apply_b_dec_to_input", True)),
              "dtype": str(raw.get("dtype", "float32")).removeprefix("torch."),
              **cls.fields_from_saelens(raw)}  # an architecture's own reading wins (transcoders)
    cfg = cls(d_in=raw["d_in"], d_sae=raw["d_sae"], metadata=_metadata_from_saelens(raw), **fields)
    cfg.check()
    return cfg


def verify_weights(folder: Path, raw_cfg: dict[str, Any]) -> None:
    """Check the weights file against the sha256 its cfg.json recorded (files we wrote record one)."""
    expected = raw_cfg.get(WEIGHTS_SHA256)
    if expected is None:
        return
    path = folder / WEIGHTS_FILENAME
    if path.is_file() and sha256_file(path) != expected:
        raise InterplabError(
            f"{path} does not match the sha256 in its cfg.json (damaged or replaced); restore it from a "
            "copy or train the SAE again"
        )


def _finish(sae: SAE, device: str | torch.device | None, dtype: torch.dtype | None) -> SAE:
    sae.eval()
    if device is not None or dtype is not None:
        sae.to(device=device, dtype=dtype)
    return sae


def load_saelens(folder: str | Path, device=None, dtype: torch.dtype | None = None) -> SAE:
    """Load an interplab or SAELens folder (cfg.json + sae_weights.safetensors)."""
    folder = Path(folder)
    raw = read_json(folder / CFG_FILENAME)
    cfg = config_from_saelens(raw, source=str(folder / CFG_FILENAME))
    verify_weights(folder, raw)
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
    `encoder.bias` [d_sae], `W_dec` [d_sae, d_in], `b_dec` [d_in]; `k` from cfg.json. Transcoders
    (`transcode`, `W_skip`) are read by transcoder_io.py."""
    folder = Path(folder)
    raw = read_json(folder / CFG_FILENAME)
    src = str(folder / SPARSIFY_WEIGHTS)
    tensors = read_safetensors(folder / SPARSIFY_WEIGHTS)
    if raw.get("transcode") or raw.get("skip_connection") or "W_skip" in tensors:
        from interplab.saes.transcoder_io import load_sparsify_transcoder

        return load_sparsify_transcoder(folder, raw, tensors, device=device, dtype=dtype)
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
    cfg = sae_config("topk", d_in=d_in, d_sae=d_sae, k=int(raw["k"]), apply_b_dec_to_input=True,
                     dtype=dtype_name(w_enc.dtype), metadata=meta)
    sae = make_sae(cfg)
    sae.import_tensors_(converted, source=src)
    return _finish(sae, device, dtype)


def _dl_trainer_cfg(path: Path) -> dict[str, Any]:
    cfg_path = path.parent / "config.json"
    if not cfg_path.is_file():
        return {}
    trainer = read_json(cfg_path).get("trainer") or {}
    return dict(trainer) if isinstance(trainer, dict) else {}


# dictionary_learning `dict_class` -> our architecture. AutoEncoderTopK and BatchTopKSAE have the same
# tensors (both carry a `threshold` buffer), but only BatchTopKSAE encodes with it by default.
DL_DICT_CLASSES = {"AutoEncoder": "relu", "AutoEncoderTopK": "topk", "BatchTopKSAE": "batchtopk",
                   "JumpReluAutoEncoder": "jumprelu"}


def _dl_linear_layout(tensors: dict[str, Tensor], src: str, k: int | None,
                      arch: str | None) -> tuple[SAEConfig, dict[str, Tensor]]:
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
        return sae_config("relu", d_in=d_in, d_sae=d_sae, dtype=dtype), converted
    if "k" in tensors:
        k = int(tensors["k"].item())
    if k is None:
        raise InterplabError(f"{src} has no 'k' buffer; pass k= (the TopK k the SAE was trained with)")
    threshold = float(tensors["threshold"].item()) if "threshold" in tensors else -1.0
    if arch is None:
        arch = "topk"
        if threshold >= 0:
            log.warning("%s: no config.json names its dict_class; loading it as AutoEncoderTopK (per-token "
                        "top-k). Pass architecture='batchtopk' for a BatchTopKSAE", src)
    if arch == "batchtopk":
        if threshold < 0:
            raise InterplabError(f"{src} is a BatchTopKSAE without a trained threshold (threshold < 0)")
        converted["threshold"] = torch.full((d_sae,), threshold, dtype=converted["W_enc"].dtype)
    elif arch != "topk":
        raise InterplabError(f"{src}: a {arch} dictionary cannot have this (encoder/decoder Linear + k) layout")
    return sae_config(arch, d_in=d_in, d_sae=d_sae, k=k, dtype=dtype), converted


def load_dictionary_learning(path: str | Path, k: int | None = None, device=None, dtype=None,
                             architecture: str | None = None) -> SAE:
    """Read a dictionary_learning SAE saved as safetensors (their `ae.pt` pickles are refused).

    Layouts: AutoEncoder (`encoder.weight` [d_sae, d_in], `encoder.bias`, `decoder.weight`
    [d_in, d_sae], `bias`), AutoEncoderTopK / BatchTopKSAE (same with `b_dec`, buffers `k` and
    `threshold`), JumpReluAutoEncoder (`W_enc`, `b_enc`, `W_dec`, `b_dec`, `threshold`, no b_dec
    subtraction). The architecture comes from `architecture`, else the `dict_class` of the
    config.json beside the file; `k` from the file, else that config, else this argument.
    """
    path = Path(path)
    refuse_pickle(path)
    if path.is_dir():
        path = path / "ae.safetensors"
    tensors = read_safetensors(path)
    src = str(path)
    trainer = _dl_trainer_cfg(path)
    k = k if k is not None else trainer.get("k")
    dict_class = trainer.get("dict_class")
    if architecture is None and dict_class is not None:
        architecture = DL_DICT_CLASSES.get(str(dict_class))
        if architecture is None:
            raise InterplabError(f"{path.parent / 'config.json'} names dict_class {dict_class!r}; supported: "
                                 f"{sorted(DL_DICT_CLASSES)}")
    if "W_enc" in tensors and "threshold" in tensors:
        d_in, d_sae = tensors["W_enc"].shape
        cfg = sae_config("jumprelu", d_in=d_in, d_sae=d_sae, apply_b_dec_to_input=False,
                         dtype=dtype_name(tensors["W_enc"].dtype))
        converted = {name: _expect(tensors, name, shape, src) for name, shape in
                     {"W_enc": (d_in, d_sae), "b_enc": (d_sae,), "W_dec": (d_sae, d_in), "b_dec": (d_in,),
                      "threshold": (d_sae,)}.items()}
    elif "encoder.weight" in tensors:
        cfg, converted = _dl_linear_layout(tensors, src, k, architecture)
    else:
        raise InterplabError(f"{src} is not a dictionary_learning SAE layout; found tensors {sorted(tensors)}")
    cfg.metadata = {"source_format": "dictionary_learning"}
    sae = make_sae(cfg)
    sae.import_tensors_(converted, source=src)
    return _finish(sae, device, dtype)
