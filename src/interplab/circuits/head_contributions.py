"""Direct contributions of attention heads (and every other writer) to one MLP latent's pre-activation.

Neo, Cohen & Barez 2024, "Interpreting context look-ups in transformers: investigating attention-MLP
interactions" (https://arxiv.org/abs/2402.15055) attribute an MLP neuron's pre-activation to the heads
whose outputs it reads. With the MLP's input norm frozen at its recorded scale this is exact:

1. A reader is a linear read of layer L's MLP input: pre = mlp_in · r + b (a transcoder latent's
   encoder column, or a neuron's input row).
2. The MLP input is norm(h), h the residual stream entering the MLP. With the norm's scale s (one number
   per token, 1/rms or 1/std) frozen, norm(h) = s · P h ⊙ w + β (P centres for LayerNorm, else is the
   identity), so pre = h · v + β · r + b with v = s · P(w ⊙ r).
3. h is a sum of writers: the embeddings, each earlier layer's attention heads (z_h W_O_h, plus the
   output projection's bias) and MLP outputs, and layer L's own heads unless attention and MLP run in
   parallel (GPT-NeoX `use_parallel_residual`). Each writer's direct contribution is its write · v.
4. The contributions plus β · r + b add up to the pre-activation exactly (checked in the tests).

Attention patterns are recorded in the same pass (circuits.replacement's record mode), so the tokens a
head reads from can be named when it drives the latent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from interplab.circuits.replacement import FrozenState, _norm_kind, body, frozen
from interplab.common import InterplabError
from interplab.models.hookpoints import FAMILY_TABLES, block_list, model_family
from interplab.models.interventions import capture
from interplab.models.neurons import neuron_weights

_LINEAR_WRITERS = ("llama", "gpt2", "gpt_neox")  # attention output added to the residual as is


@dataclass
class Reader:
    """A linear read of layer `layer`'s MLP input, and what its latent writes."""

    layer: int
    vector_D: Tensor
    """r: pre = mlp_in · r + bias."""
    bias: float
    write_D: Tensor
    """The latent's output direction (decoder row or neuron output row), for the logit lens."""
    name: str
    """"transcoder L/f" or "neuron L/n"."""
    activation: Any = None
    """mlp_in [..., d] -> the latent's activation [...] (transcoder latents)."""
    neuron: int | None = None
    """For a neuron: its index (its activation is read at the MLP's output projection)."""


def transcoder_reader(tc: Any, layer: int, latent: int) -> Reader:
    """Latent `latent` of layer `layer`'s transcoder (its activation: the transcoder's own encode)."""
    if not 0 <= latent < tc.cfg.d_sae:
        raise InterplabError(f"latent {latent} is outside the transcoder's {tc.cfg.d_sae} latents")

    def activation(x: Tensor) -> Tensor:
        return tc.encode(x.to(tc.W_enc.dtype))[..., latent]

    return Reader(layer, tc.W_enc.detach()[:, latent], float(tc.b_enc.detach()[latent]), tc.W_dec.detach()[latent],
                  f"transcoder {layer}/{latent}", activation)


def neuron_reader(model: nn.Module, layer: int, neuron: int) -> Reader:
    """MLP neuron `neuron` of layer `layer` (its activation: the output projection's input there)."""
    w = neuron_weights(model, layer)
    if not 0 <= neuron < w.w_in_ND.shape[0]:
        raise InterplabError(f"neuron {neuron} is outside layer {layer}'s {w.w_in_ND.shape[0]} neurons")
    bias = 0.0 if w.b_in_N is None else float(w.b_in_N[neuron])
    return Reader(layer, w.w_in_ND[neuron], bias, w.w_out_ND[neuron], f"neuron {layer}/{neuron}", neuron=neuron)


@dataclass
class Contributions:
    """One batch's decomposition of the reader's pre-activation ([B, S] each)."""

    heads_BSLH: Tensor
    """Per head (layers 0..n_head_layers-1) its direct contribution."""
    others: dict[str, Tensor]
    """"embed", "mlp L", "attn L bias": the other writers' contributions."""
    constant: float
    """β · r + b."""
    pre_BS: Tensor
    """The reader's real pre-activation."""
    activation_BS: Tensor
    """The latent's activation."""
    patterns: dict[int, Tensor] = field(default_factory=dict)
    """Layer -> attention pattern [B, H, S, S] (query, key)."""

    def total_BS(self) -> Tensor:
        """Σ contributions + constant (equals pre_BS)."""
        return self.heads_BSLH.sum((-1, -2)) + sum(self.others.values()) + self.constant


def _input_norm(model: nn.Module, layer: int, batch: dict[str, Tensor]) -> nn.Module:
    """The norm module whose output is layer `layer`'s MLP input (found by tensor identity)."""
    mlp = body(model).get_submodule(FAMILY_TABLES[model_family(model)].mlp_in.format(L=layer))
    block = block_list(model)[layer]
    outs: dict[int, Tensor] = {}
    seen: list[Tensor] = []
    handles = [m.register_forward_hook(lambda mod, a, o: outs.__setitem__(id(mod), o))
               for m in block.modules() if _norm_kind(m) is not None]
    handles.append(mlp.register_forward_pre_hook(lambda mod, args: seen.append(args[0])))
    try:
        with torch.no_grad():
            model(**{k: v[:1, :2] for k, v in batch.items()}, use_cache=False)
    finally:
        for h in handles:
            h.remove()
    found = [m for m in block.modules() if id(m) in outs and outs[id(m)] is seen[0]]
    if len(found) != 1:
        raise InterplabError(f"cannot tell which norm feeds layer {layer}'s MLP in {type(model).__name__}")
    return found[0]


def _parallel(model: nn.Module) -> bool:
    return bool(getattr(model.config, "use_parallel_residual", False))


def _head_read(o_proj: nn.Module, v_D: Tensor, n_heads: int) -> tuple[Tensor, Tensor | None]:
    """(W_O_h^T v per head [H, d_head], bias · v or None) for an output projection."""
    w: Tensor = o_proj.weight  # type: ignore[assignment]
    u = (w @ v_D) if type(o_proj).__name__ == "Conv1D" else (w.T @ v_D)  # [H * d_head]
    bias = getattr(o_proj, "bias", None)
    return u.view(n_heads, -1), (None if bias is None else bias @ v_D)


@torch.no_grad()
def contributions(model: nn.Module, batch: dict[str, Tensor], reader: Reader,
                  norm: nn.Module | None = None) -> Contributions:
    """Every writer's direct contribution to `reader`'s pre-activation on `batch` (module docstring)."""
    family = model_family(model)
    if family not in _LINEAR_WRITERS:
        names = ", ".join(_LINEAR_WRITERS)
        raise InterplabError(f"head contributions need blocks that add attention's output as is ({names}), "
                             f"not {family}")
    L, table = reader.layer, FAMILY_TABLES[family]
    norm = norm if norm is not None else _input_norm(model, L, batch)
    head_layers = L if _parallel(model) else L + 1
    hooks = ["embed", f"blocks.{L}.mlp_in"] + [f"blocks.{i}.attn_z" for i in range(head_layers)]
    hooks += [f"blocks.{i}.mlp_out" for i in range(L)]
    state = FrozenState(mode="record")
    out_module = None if reader.activation is not None else neuron_weights(model, L).out_module
    acts_in: list[Tensor] = []
    handle = None if out_module is None else out_module.register_forward_pre_hook(
        lambda m, a: acts_in.append(a[0].detach()))
    try:
        with frozen(model, state), capture(model, hooks) as acts:
            body(model)(**batch, use_cache=False)
    finally:
        if handle is not None:
            handle.remove()
    kind = _norm_kind(norm)
    w = getattr(norm, "weight", None)
    dtype = acts["embed"].dtype
    r = reader.vector_D.to(dtype)
    wr = r if w is None else r * ((1.0 + w) if kind == "rms1p" else w).to(dtype)
    v0 = wr - wr.mean() if kind == "layernorm" else wr
    s_BS = state.scales[id(norm)][..., 0].to(dtype)
    beta = getattr(norm, "bias", None)
    constant = reader.bias + (0.0 if beta is None else float(beta.to(dtype) @ r))
    others = {"embed": s_BS * (acts["embed"] @ v0)}
    heads = []
    n_heads = int(model.config.num_attention_heads)  # type: ignore[union-attr,arg-type]
    for layer in range(head_layers):
        o_proj = body(model).get_submodule(table.attn_z.format(L=layer))
        w_dtype: torch.dtype = o_proj.weight.dtype  # type: ignore[assignment]
        u_HE, bias_v = _head_read(o_proj, v0.to(w_dtype), n_heads)
        z = acts[f"blocks.{layer}.attn_z"]
        heads.append(s_BS[..., None] * torch.einsum("bshe,he->bsh", z.view(*z.shape[:2], n_heads, -1), u_HE.to(dtype)))
        if bias_v is not None:
            others[f"attn {layer} bias"] = s_BS * float(bias_v)
    for layer in range(L):
        others[f"mlp {layer}"] = s_BS * (acts[f"blocks.{layer}.mlp_out"] @ v0)
    mlp_in = acts[f"blocks.{L}.mlp_in"]
    pre = mlp_in @ r + reader.bias
    if reader.activation is not None:
        activation = reader.activation(mlp_in).to(dtype)
    else:
        activation = acts_in[-1][..., reader.neuron].to(dtype)
    patterns = {}
    for layer in range(head_layers):
        attn = body(model).get_submodule(table.attn.format(L=layer))
        patterns[layer] = state.patterns[id(attn)]
    heads_BSLH = torch.stack(heads, -2) if heads else pre.new_zeros(*pre.shape, 0, n_heads)
    return Contributions(heads_BSLH, others, constant, pre, activation, patterns)

