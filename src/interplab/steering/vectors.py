"""Steering vectors: a direction at a hook, built from contrast pairs or an SAE latent, saved without pickle.

Building from contrast pairs (Turner et al. 2023 "ActAdd", arXiv:2308.10248; Rimsky et al. 2024 "CAA",
arXiv:2312.06681):
1. Run each positive and each negative text through the model and read the activation at `hook`.
2. Pool over positions: the last token ("last"), all tokens but BOS ("mean"), or only the answer tokens that
   follow a shared prompt ("answer" — CAA's A/B answer letter when the answer is one token).
3. vector = mean(positive) - mean(negative); with pairs this equals the mean of per-pair differences.
4. Measure the hook's median activation norm on reference text (units.py) and keep it with the vector:
   coefficients are in units of it, so coefficient c adds c * hook_norm along the vector's direction
   on any model and hook (the raw difference is kept too, for comparisons and provenance).

From an SAE: the latent's decoder row W_dec[f] (unit norm by default), the direction the SAE writes
when the latent fires; its hook norm is measured when it is first used with a model.

On disk: `<name>.safetensors` (tensor "vector") + `<name>.json` (hook, d, norm, hook_norm, provenance).
Never pickle: a vector file from a stranger cannot run code. Files without hook_norm (written before it
existed) still load; their hook norm is measured on first use.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from interplab.common import InterplabError
from interplab.models.interventions import run_to_capture
from interplab.models.loading import LoadedModel
from interplab.probes import probe_cosines

POOLINGS = ("last", "mean", "answer")


@dataclass
class SteeringVector:
    """A direction to add at one hook point, with where it came from."""

    vector_D: Tensor
    """The direction [d] (float32, CPU)."""
    hook: str
    """Hook name it was read at and is meant to be added at, e.g. 'blocks.3.resid_post'."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """JSON-safe provenance: model, method, pooling, n_pairs, sae folder and latent, language, ..."""
    hook_norm: float | None = None
    """Median activation norm at the hook (units.py): coefficient c adds c * hook_norm along the vector.
    None until measured (`units.calibrate`)."""

    @property
    def d(self) -> int:
        return int(self.vector_D.shape[-1])

    @property
    def norm(self) -> float:
        return float(self.vector_D.norm())

    def step_D(self) -> Tensor:
        """What coefficient 1 adds: the direction scaled to the hook's median activation norm."""
        if self.hook_norm is None:
            raise InterplabError(
                f"the steering vector at {self.hook} has no hook norm, the unit of its coefficients; "
                "measure it with interplab.steering.calibrate(vector, lm)"
            )
        return self.vector_D * (self.hook_norm / max(self.norm, 1e-12))

    def unit(self) -> SteeringVector:
        """The same direction scaled to norm 1 (the steering it does is unchanged: only the direction counts)."""
        return SteeringVector(
            self.vector_D / max(self.norm, 1e-12), self.hook, {**self.metadata, "unit": True}, self.hook_norm
        )


@dataclass
class ContrastConfig:
    """How contrast texts become one activation each."""

    pooling: str = "last"
    """'last' token, 'mean' over all tokens but BOS, or 'answer': mean over the tokens after the prompt."""
    batch_size: int = 16
    """Texts per forward pass."""
    max_length: int = 256
    """Truncate longer texts to this many tokens."""


@dataclass
class ContrastPair:
    """One contrast: the same `prompt` continued by a positive and a negative text."""

    positive: str
    negative: str
    prompt: str = ""
    """Shared prefix (needed for pooling='answer'; prepended to both sides)."""


def _pooled_batch(
    lm: LoadedModel, prompts: list[str], answers: list[str], hook: str, cfg: ContrastConfig
) -> Tensor:
    texts = [p + a for p, a in zip(prompts, answers, strict=True)]
    side = lm.tokenizer.padding_side
    lm.tokenizer.padding_side = "right"  # positions stay the unpadded ones (HF derives them from the index)
    try:
        batch = lm.tokenize(texts, max_length=cfg.max_length)
    finally:
        lm.tokenizer.padding_side = side
    acts_BSD = run_to_capture(lm.model, batch, hook)[hook].float()
    mask_BS = batch["attention_mask"].bool()
    lengths_B = mask_BS.sum(1)
    if cfg.pooling == "last":
        return acts_BSD[torch.arange(len(texts)), lengths_B - 1].cpu()
    if cfg.pooling == "answer":
        starts = [len(lm.tokenizer(p)["input_ids"]) if p else 0 for p in prompts]
        index_BS = torch.arange(mask_BS.shape[1], device=mask_BS.device)[None]
        mask_BS = mask_BS & (index_BS >= torch.tensor(starts, device=mask_BS.device)[:, None])
        if not bool(mask_BS.any(1).all()):
            raise InterplabError("a contrast answer adds no tokens after its prompt; give non-empty answers")
    elif cfg.pooling == "mean":
        mask_BS = _without_bos(lm, batch["input_ids"], mask_BS)
    weights_BS = mask_BS.to(acts_BSD.dtype)
    return ((acts_BSD * weights_BS[..., None]).sum(1) / weights_BS.sum(1, keepdim=True)).cpu()


def _without_bos(lm: LoadedModel, ids_BS: Tensor, mask_BS: Tensor) -> Tensor:
    """The mask less BOS positions (texts that are nothing but BOS keep it). Gemma's BOS activation dwarfs a
    content token's, so with it a mean-pooled difference of texts of unequal length is mostly
    (1/len_pos - 1/len_neg) x BOS: on Gemma-3-270m it gave Spanish and French sentiment vectors of norm
    ~700 with cosine 0.996 to each other, against 86 for English (docs/labs/crosslingual.md)."""
    bos = lm.tokenizer.bos_token_id
    if bos is None:
        return mask_BS
    content_BS = mask_BS & (ids_BS != bos)
    return torch.where(content_BS.any(1, keepdim=True), content_BS, mask_BS)


def pooled_activations(
    lm: LoadedModel, prompts: Sequence[str], answers: Sequence[str], hook: str, cfg: ContrastConfig
) -> Tensor:
    """One pooled activation [n, d] per prompt+answer text (float32, CPU)."""
    if cfg.pooling not in POOLINGS:
        raise InterplabError(f"unknown pooling {cfg.pooling!r}; use one of {', '.join(POOLINGS)}")
    parts = [
        _pooled_batch(
            lm, list(prompts[i : i + cfg.batch_size]), list(answers[i : i + cfg.batch_size]), hook, cfg
        )
        for i in range(0, len(prompts), cfg.batch_size)
    ]
    return torch.cat(parts)


def from_contrast_pairs(
    lm: LoadedModel,
    pairs: Sequence[ContrastPair],
    hook: str,
    cfg: ContrastConfig | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> SteeringVector:
    """Mean difference (positive minus negative) of pooled activations at `hook`."""
    cfg = cfg or ContrastConfig()
    if not pairs:
        raise InterplabError(
            "no contrast pairs given; pass at least one pair with positive and negative text"
        )
    if cfg.pooling == "answer" and not all(p.prompt for p in pairs):
        raise InterplabError(
            "pooling='answer' needs a shared 'prompt' in every pair; add it or use pooling='last'"
        )
    prompts = [p.prompt for p in pairs]
    pos_ND = pooled_activations(lm, prompts, [p.positive for p in pairs], hook, cfg)
    neg_ND = pooled_activations(lm, prompts, [p.negative for p in pairs], hook, cfg)
    vector_D = (pos_ND.double().mean(0) - neg_ND.double().mean(0)).float()
    if float(vector_D.norm()) == 0.0:
        raise InterplabError(
            "positive and negative activations are identical; use pairs that differ in the concept"
        )
    from interplab.steering.units import hook_median_norm

    meta = {"method": "mean_difference", "pooling": cfg.pooling, "n_pairs": len(pairs), "model": lm.name}
    return SteeringVector(vector_D, hook, {**meta, **dict(metadata or {})}, hook_median_norm(lm, hook))


def from_sae_latent(sae: Any, latent: int, hook: str | None = None, unit: bool = True) -> SteeringVector:
    """The SAE decoder row W_dec[latent] as a vector; the hook defaults to the SAE's metadata hook_name."""
    W_dec_FD = sae.W_dec.detach()
    if not 0 <= latent < W_dec_FD.shape[0]:
        raise InterplabError(
            f"latent {latent} out of range; the SAE has {W_dec_FD.shape[0]} latents "
            f"(0..{W_dec_FD.shape[0] - 1})"
        )
    meta = dict(getattr(getattr(sae, "cfg", None), "metadata", {}) or {})
    hook = hook or meta.get("hook_name")
    if not hook:
        raise InterplabError(
            "the SAE's metadata names no hook; pass the hook (e.g. --hook blocks.3.resid_post)"
        )
    vector_D = W_dec_FD[latent].float().cpu()
    if unit:
        vector_D = vector_D / vector_D.norm().clamp_min(1e-12)
    return SteeringVector(
        vector_D,
        hook,
        {"method": "sae_decoder", "latent": latent, "unit": unit, "model": meta.get("model_name")},
    )


def read_pairs(path: str | Path) -> list[ContrastPair]:
    """Contrast pairs from JSONL: one object per line with 'positive', 'negative' (optional 'prompt')."""
    path = Path(path)
    if not path.is_file():
        raise InterplabError(
            f'no contrast-pairs file at {path}; write JSONL lines like {{"positive": ..., "negative": ...}}'
        )
    pairs = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            pairs.append(ContrastPair(str(row["positive"]), str(row["negative"]), str(row.get("prompt", ""))))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise InterplabError(
                f"{path}:{n} is not a JSON object with 'positive' and 'negative' strings; fix that line"
            ) from None
    if not pairs:
        raise InterplabError(
            f"{path} holds no contrast pairs; add JSONL lines with 'positive' and 'negative'"
        )
    return pairs


def _paths(path: str | Path) -> tuple[Path, Path]:
    base = Path(path)
    if base.suffix in (".safetensors", ".json"):
        base = base.with_suffix("")
    return base.with_name(base.name + ".safetensors"), base.with_name(base.name + ".json")


def save_vector(vec: SteeringVector, path: str | Path, overwrite: bool = False) -> Path:
    """Write `<path>.safetensors` + `<path>.json` (atomically); refuse to replace files unless asked."""
    tensor_path, json_path = _paths(path)
    if not overwrite and (tensor_path.exists() or json_path.exists()):
        raise InterplabError(
            f"{tensor_path} already exists; pass overwrite=True (--overwrite) or choose another name"
        )
    tensor_path.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "hook": vec.hook,
        "d": vec.d,
        "norm": vec.norm,
        "hook_norm": vec.hook_norm,
        "coef_unit": "the hook's median activation norm (hook_norm)",
        "format": "interplab.steering_vector/1",
        **vec.metadata,
    }
    try:
        text = json.dumps(meta, indent=2)
    except TypeError as exc:
        raise InterplabError(
            f"steering vector metadata is not JSON-safe ({exc}); keep it to str/int/float/list/dict"
        ) from exc
    tmp = tensor_path.with_name(tensor_path.name + ".tmp")
    save_file({"vector": vec.vector_D.detach().float().cpu().contiguous()}, str(tmp))
    os.replace(tmp, tensor_path)
    tmp_json = json_path.with_name(json_path.name + ".tmp")
    tmp_json.write_text(text, encoding="utf-8")
    os.replace(tmp_json, json_path)
    return tensor_path


def load_vector(path: str | Path) -> SteeringVector:
    """Read a vector written by `save_vector` (the .safetensors path, the .json path or the stem)."""
    tensor_path, json_path = _paths(path)
    if not tensor_path.exists() or not json_path.exists():
        raise InterplabError(
            f"no steering vector at {tensor_path} (+ .json); build one with `interplab steer build`"
        )
    try:
        tensors = load_file(str(tensor_path))
        meta = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InterplabError(f"{tensor_path} is not a readable steering vector ({exc}); rebuild it") from exc
    if "vector" not in tensors or "hook" not in meta:
        raise InterplabError(
            f"{tensor_path} lacks the 'vector' tensor or its hook; rebuild it with `interplab steer build`"
        )
    vector_D = tensors["vector"].float()
    if vector_D.ndim != 1 or int(meta.get("d", vector_D.shape[0])) != vector_D.shape[0]:
        raise InterplabError(
            f"{tensor_path}: vector shape {tuple(vector_D.shape)} does not match d={meta.get('d')}"
        )
    extra = {k: v for k, v in meta.items() if k not in ("hook", "d", "norm", "hook_norm", "coef_unit", "format")}
    hook_norm = meta.get("hook_norm")
    return SteeringVector(vector_D, str(meta["hook"]), extra, None if hook_norm is None else float(hook_norm))


def cosine_comparison(vectors: Mapping[str, SteeringVector]) -> tuple[list[str], Tensor]:
    """Names and the [k, k] cosine matrix between vectors (e.g. one concept in English, French, German)."""
    dims = {name: v.d for name, v in vectors.items()}
    if len(set(dims.values())) > 1:
        raise InterplabError(
            f"vectors have different widths {dims}; compare vectors from the same model and hook"
        )
    return probe_cosines({name: v.vector_D for name, v in vectors.items()})
