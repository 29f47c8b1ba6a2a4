"""Stable hook names -> HuggingFace modules, by a table per model family.

Names (TransformerLens-style, so results are comparable across families):
  embed                  token (+ position) embeddings, i.e. the residual stream entering block 0
  blocks.{L}.resid_pre   input of block L
  blocks.{L}.resid_post  output of block L (the residual stream after it)
  blocks.{L}.attn_out    what the attention sub-layer adds (before the residual add)
  blocks.{L}.mlp_in      what the MLP sub-layer reads (its normed input; a transcoder's input)
  blocks.{L}.mlp_out     what the MLP sub-layer adds (before the residual add; a transcoder's target)
  blocks.{L}.attn_z      the heads' mixed values entering attention's output projection
                         [..., n_heads * d_head]: not always d_model wide, so not in `hook_names`
  ln_final               the final norm's output (pre-LN decoder families only)

Any dotted module path of the model (e.g. `model.layers.3.mlp`) is accepted too: the generic fallback
for families without a table. A hook on a path reads or edits that module's output.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from torch import nn

from interplab.common import InterplabError

Site = Literal["output", "input"]


@dataclass(frozen=True)
class FamilyTable:
    """Where one family keeps its parts, as dotted paths relative to `model.base_model`."""

    blocks: str
    embed: str | None
    attn: str  # format with {L}
    mlp: str
    ln_final: str | None
    mlp_in: str  # the module whose *input* is the MLP's input
    attn_z: str  # attention's output projection (its input holds the per-head values)
    # BERT-style post-LN models: the embedding hook reads the embeddings module's output.
    # Pre-LN decoders (GPT-2) add position embeddings inline, so `embed` reads block 0's input.
    embed_is_block0_input: bool = True


# model_type (from the HF config) -> family name
FAMILY_OF_MODEL_TYPE = {
    "gpt2": "gpt2",
    "gpt_neox": "gpt_neox",
    "llama": "llama",
    "mistral": "llama",
    "mixtral": "llama",
    "qwen2": "llama",
    "qwen3": "llama",
    "gemma": "llama",  # Gemma 1 has Llama's block layout
    "gemma2": "gemma3",  # Gemma 2 introduced the post-sublayer norms Gemma 3 kept
    "gemma3_text": "gemma3",
    "olmo": "llama",
    "olmo2": "llama",
    "phi3": "llama",
    "bert": "bert",
    "roberta": "bert",
    "xlm-roberta": "bert",
}

FAMILY_TABLES: dict[str, FamilyTable] = {
    "gpt2": FamilyTable(blocks="h", embed="wte", attn="h.{L}.attn", mlp="h.{L}.mlp", ln_final="ln_f",
                        mlp_in="h.{L}.mlp", attn_z="h.{L}.attn.c_proj"),
    "gpt_neox": FamilyTable(
        blocks="layers",
        embed="embed_in",
        attn="layers.{L}.attention",
        mlp="layers.{L}.mlp",
        ln_final="final_layer_norm",
        mlp_in="layers.{L}.mlp",
        attn_z="layers.{L}.attention.dense",
    ),
    "llama": FamilyTable(
        blocks="layers",
        embed="embed_tokens",
        attn="layers.{L}.self_attn",
        mlp="layers.{L}.mlp",
        ln_final="norm",
        mlp_in="layers.{L}.mlp",
        attn_z="layers.{L}.self_attn.o_proj",
    ),
    # Gemma 2/3 norm each sublayer's output again before the residual add ("sandwich" norms): what
    # attention and the MLP add is the output of post_attention_layernorm / post_feedforward_layernorm.
    # (Llama's `post_attention_layernorm` is the MLP's *input* norm: same name, other place.)
    "gemma3": FamilyTable(
        blocks="layers",
        embed="embed_tokens",  # scales by sqrt(d_model) inside; `embed` reads block 0's input anyway
        attn="layers.{L}.post_attention_layernorm",
        mlp="layers.{L}.post_feedforward_layernorm",
        ln_final="norm",
        mlp_in="layers.{L}.mlp",  # after pre_feedforward_layernorm
        attn_z="layers.{L}.self_attn.o_proj",
    ),
    # BERT is post-LN: a layer's attention block ends in LayerNorm(x + attn), so "what attention adds"
    # is the output projection before that add; likewise the MLP's output projection.
    "bert": FamilyTable(
        blocks="encoder.layer",
        embed="embeddings",
        attn="encoder.layer.{L}.attention.output.dense",
        mlp="encoder.layer.{L}.output.dense",
        ln_final=None,
        mlp_in="encoder.layer.{L}.intermediate",
        attn_z="encoder.layer.{L}.attention.output.dense",
        embed_is_block0_input=False,
    ),
}

_BLOCK_HOOK = re.compile(r"^blocks\.(\d+)\.(resid_pre|resid_post|attn_out|mlp_out|mlp_in|attn_z)$")


@dataclass(frozen=True)
class HookPoint:
    """A resolved hook: the module to hook and whether we read its input or its output."""

    name: str
    module: nn.Module
    site: Site
    layer: int | None  # block index, for ordering and early stopping; None for embed / paths


def base_model(model: nn.Module) -> nn.Module:
    """The transformer body under an LM/MLM head (HF's `base_model`), or the model itself."""
    return getattr(model, "base_model", model)


def model_family(model: nn.Module) -> str:
    """Family name from the HF config's model_type; 'generic' when we have no table."""
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    return FAMILY_OF_MODEL_TYPE.get(model_type or "", "generic")


def _get_submodule(root: nn.Module, path: str) -> nn.Module | None:
    try:
        return root.get_submodule(path)
    except AttributeError:
        return None


def block_list(model: nn.Module) -> nn.ModuleList:
    """The model's list of transformer blocks: from the family table, else the longest ModuleList."""
    table = FAMILY_TABLES.get(model_family(model))
    if table is not None:
        blocks = _get_submodule(base_model(model), table.blocks)
        if isinstance(blocks, nn.ModuleList):
            return blocks
    candidates = [m for m in model.modules() if isinstance(m, nn.ModuleList) and len(m) > 0]
    if not candidates:
        raise InterplabError(f"no list of transformer blocks found in {type(model).__name__}")
    return max(candidates, key=len)


def hook_names(model: nn.Module) -> list[str]:
    """All stable hook names valid for this model, in forward order."""
    n_layers = len(block_list(model))
    table = FAMILY_TABLES.get(model_family(model))
    names = ["embed"]
    for layer in range(n_layers):
        names.append(f"blocks.{layer}.resid_pre")
        if table is not None:
            names += [f"blocks.{layer}.attn_out", f"blocks.{layer}.mlp_in", f"blocks.{layer}.mlp_out"]
        names.append(f"blocks.{layer}.resid_post")
    if table is not None and table.ln_final is not None:
        names.append("ln_final")
    return names


def _unknown_hook(model: nn.Module, name: str) -> InterplabError:
    valid = hook_names(model)
    shown = ", ".join(valid[:6] + (["..."] if len(valid) > 8 else []) + valid[-2:])
    return InterplabError(
        f"unknown hook {name!r} for {type(model).__name__}; valid names: {shown} "
        f"(or a module path such as {_example_path(model)!r})"
    )


def _example_path(model: nn.Module) -> str:
    names = [n for n, _ in model.named_modules() if n]
    return names[min(3, len(names) - 1)] if names else "?"


def resolve_hook(model: nn.Module, name: str) -> HookPoint:
    """Map a stable hook name (or a dotted module path) to the module and site to hook."""
    blocks = block_list(model)
    table = FAMILY_TABLES.get(model_family(model))
    body = base_model(model)
    match = _BLOCK_HOOK.match(name)
    if match:
        layer, kind = int(match.group(1)), match.group(2)
        if layer >= len(blocks):
            raise InterplabError(
                f"hook {name!r}: layer {layer} out of range, the model has {len(blocks)} blocks (0..{len(blocks) - 1})"
            )
        if kind == "resid_pre":
            return HookPoint(name, blocks[layer], "input", layer)
        if kind == "resid_post":
            return HookPoint(name, blocks[layer], "output", layer)
        if table is None:
            raise InterplabError(
                f"hook {name!r}: no {kind} table for family {model_family(model)!r}; "
                f"hook a module path instead (e.g. {_example_path(model)!r})"
            )
        path = {"attn_out": table.attn, "mlp_out": table.mlp, "mlp_in": table.mlp_in,
                "attn_z": table.attn_z}[kind].format(L=layer)
        module = _get_submodule(body, path)
        if module is None:
            raise InterplabError(f"hook {name!r}: module {path!r} not found in {type(model).__name__}")
        return HookPoint(name, module, "input" if kind in ("mlp_in", "attn_z") else "output", layer)
    if name == "embed":
        if table is not None and table.embed is not None and not table.embed_is_block0_input:
            return HookPoint(name, body.get_submodule(table.embed), "output", None)
        return HookPoint(name, blocks[0], "input", None)
    if name == "ln_final":
        if table is None or table.ln_final is None:
            raise _unknown_hook(model, name)
        return HookPoint(name, body.get_submodule(table.ln_final), "output", len(blocks))
    module = _get_submodule(model, name)
    if module is None or module is model:
        raise _unknown_hook(model, name)
    return HookPoint(name, module, "output", None)
