"""The local replacement model of one prompt: the real model with its nonlinearities frozen.

Ameisen et al. 2025, "Circuit tracing: revealing computational graphs in language models"
(https://transformer-circuits.pub/2025/attribution-graphs/methods.html), with per-layer transcoders:

1. Record: run the real model on the prompt once. Keep every attention pattern (the family's own
   eager attention computes it), every norm's scale (1/rms or 1/std per token), each layer's MLP
   input x_L and output y_L, and the token embeddings.
2. Replay: run the same HF modules again, with patterns and scales taken from the recording, the
   token embeddings replaced by a tensor E we choose, and each MLP (for Gemma: MLP + post-norm)
   replaced by c_L + x_L @ W_skip.T, c_L a constant we choose. With E = embeddings and
   c_L = y_L - skip(x_L) the replay reproduces the real forward; in between, everything is linear,
   so the output is an affine function of (E, c_0, ..., c_{n-1}). Attention still mixes positions
   through the frozen patterns and the value/output projections; the skip path stays linear.
3. c_L = b_dec + Σ_f a_f W_dec[f] + err_L, err_L = y_L - transcoder(x_L): the features' decoder
   vectors, the error node and the bias are the sources a graph attributes to (attribution.py).

Replaying with B copies of the prompt lets one backward pass carry B different targets.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from interplab.common import InterplabError
from interplab.models.hookpoints import FAMILY_TABLES, base_model, model_family

_IMPL = "interplab_frozen"
_STATE: list[FrozenState] = []  # the active recording / replay (innermost last)


@dataclass
class FrozenState:
    """What one record pass keeps and one replay pass reads."""

    mode: str = "record"
    patterns: dict[int, Tensor] = field(default_factory=dict)
    """id(attention module) -> [1, heads, q, k] pattern."""
    scales: dict[int, Tensor] = field(default_factory=dict)
    """id(norm module) -> [1, seq, 1] scale."""


def _frozen_attention(module: nn.Module, query: Tensor, key: Tensor, value: Tensor,
                      attention_mask: Tensor | None, **kwargs: Any) -> tuple[Tensor, Tensor | None]:
    state = _STATE[-1]
    if state.mode == "record":
        eager = sys.modules[type(module).__module__].eager_attention_forward  # type: ignore[attr-defined]
        out, weights = eager(module, query, key, value, attention_mask, **kwargs)
        state.patterns[id(module)] = weights.detach()
        return out, weights
    pattern = state.patterns[id(module)]  # [1, H, q, k]
    B, H_kv, S, D = value.shape
    n_rep = pattern.shape[1] // H_kv
    v = value[:, :, None].expand(B, H_kv, n_rep, S, D).reshape(B, H_kv * n_rep, S, D)
    return torch.matmul(pattern.to(v.dtype), v).transpose(1, 2).contiguous(), None


def _register_attention() -> None:
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, eager_mask
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    if _IMPL not in ALL_ATTENTION_FUNCTIONS:
        ALL_ATTENTION_FUNCTIONS.register(_IMPL, _frozen_attention)
        ALL_MASK_ATTENTION_FUNCTIONS.register(_IMPL, eager_mask)


def _norm_kind(module: nn.Module) -> str | None:
    """How a norm module scales: 'layernorm', 'rms' (w·x·s) or 'rms1p' ((1 + w)·x·s, Gemma)."""
    if isinstance(module, nn.LayerNorm):
        return "layernorm"
    if type(module).__name__.endswith("RMSNorm"):
        return "rms" if hasattr(module, "variance_epsilon") else "rms1p"
    return None


def _frozen_norm(module: nn.Module, kind: str) -> Any:
    def forward(x: Tensor) -> Tensor:
        state = _STATE[-1]
        centred = x - x.mean(-1, keepdim=True) if kind == "layernorm" else x
        if state.mode == "record":
            eps = getattr(module, "eps", getattr(module, "variance_epsilon", 1e-6))
            var = centred.pow(2).mean(-1, keepdim=True)
            state.scales[id(module)] = torch.rsqrt(var + eps).detach()
        y = centred * state.scales[id(module)].to(x.dtype)
        w: Any = getattr(module, "weight", None)
        if w is not None:
            y = y * ((1.0 + w) if kind == "rms1p" else w)
        bias = getattr(module, "bias", None)
        return y + bias if bias is not None else y

    return forward


def _set_impl(model: nn.Module, impl: str) -> list[tuple[Any, Any]]:
    changed = []
    for cfg in {id(c): c for c in (getattr(m, "config", None) for m in model.modules()) if c is not None}.values():
        changed.append((cfg, cfg._attn_implementation))
        cfg._attn_implementation = impl
    return changed


@contextmanager
def frozen(model: nn.Module, state: FrozenState, patches: dict[nn.Module, Any] | None = None) -> Iterator[None]:
    """Within the block, attention and norms record into / replay from `state`; `patches` (module ->
    forward) replace other modules' forwards (the MLPs and embeddings of a replay)."""
    if model_family(model) not in FAMILY_TABLES or model_family(model) == "bert":
        raise InterplabError(f"graphs need a causal LM of a family with a hook table, not {type(model).__name__}")
    _register_attention()
    forwards: dict[nn.Module, Any] = {}
    for m in model.modules():
        kind = _norm_kind(m)
        if kind is not None:
            forwards[m] = _frozen_norm(m, kind)
    forwards.update(patches or {})
    saved_impl = _set_impl(model, _IMPL)
    for m, fwd in forwards.items():
        m.forward = fwd  # instance attribute shadows the class's forward
    _STATE.append(state)
    try:
        yield
    finally:
        _STATE.pop()
        for m in forwards:
            del m.forward
        for cfg, impl in saved_impl:
            cfg._attn_implementation = impl


def body(model: nn.Module) -> nn.Module:
    """The transformer body (embeddings, blocks, final norm) without the LM head."""
    return base_model(model)


def module_at(model: nn.Module, kind: str, layer: int | None = None) -> nn.Module:
    """The module a family table names: 'embed', 'mlp_in' or 'mlp' (the module writing mlp_out)."""
    table = FAMILY_TABLES[model_family(model)]
    path = {"embed": table.embed, "mlp_in": table.mlp_in, "mlp": table.mlp}[kind]
    if path is None:
        raise InterplabError(f"{type(model).__name__} has no {kind} module in its table")
    return body(model).get_submodule(path.format(L=layer))


__all__ = ["FrozenState", "body", "frozen", "module_at"]
