"""Interventions on graph features: the real model's logit change next to the graph's prediction.

1. Pick features: the `top` with the largest |direct effect| on the target logit (`by="direct"`), or
   the largest influence on it through the graph's rows (`by="influence"`, how pruning ranks nodes;
   it reaches features in earlier layers, whose effect passes through later ones).
2. Real model: run the prompt with layer L's MLP output at position p changed by
   (scale - 1) · a · W_dec[f] (scale 0 ablates the feature, 2 doubles it) and nothing else frozen;
   Δ_real = logit - clean logit.
3. Graph: Δ_direct = (scale - 1) · A[logit, s] (the feature's direct effect, the edge weight); Δ_graph
   also lets the visited downstream features respond linearly, δ_t = Σ_s A[t, s] / a_s · δ_s in layer
   order (features stay active; errors and attention patterns stay frozen).
   Δ_linear is the same linear response with every active feature taking part (not only the visited
   ones): the local replacement model with each transcoder linearised around the clean run (the
   active set kept, each active feature at its pre-activation, an affine function of its MLP input),
   attention, norms and errors frozen. It is what the graph predicts once every feature row is
   computed; Δ_graph is its truncation to the rows the graph's budget visited.
4. relative error = |Δ_real - Δ_graph| / |Δ_real|. Where it is large, the cause is what the graph
   freezes: attention patterns and norm scales that move with the residual stream, features that
   switch on or off, and MLP error terms that change with their input.
5. To tell those apart, Δ_frozen_attn runs the same edit in the real model with every attention
   pattern and norm scale held at the clean run's (replacement.py's replay, MLPs left real):
   Δ_real - Δ_frozen_attn is what moving attention and norms add; Δ_frozen_attn - Δ_graph is what the
   MLPs' nonlinearity adds (features switching, error terms changing). Δ_frozen_attn is also what
   circuit-tracer's `feature_intervention` measures by default (`freeze_attention=True`: attention
   patterns and norm scales frozen, MLPs live), so `rel_error_frozen` = |Δ_frozen_attn - Δ_graph| /
   |Δ_frozen_attn| is the check under that protocol, and `rel_error_linear` = |Δ_frozen_attn -
   Δ_linear| / |Δ_frozen_attn| the same check without the row budget: what is left there is the
   transcoders' error terms changing under the edit (the real MLPs respond unlike their transcoders).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from interplab.circuits.attribution import AttributionGraph, influence
from interplab.circuits.replacement import FrozenState, frozen
from interplab.common import InterplabError
from interplab.models.interventions import replace_activation


def graph_prediction(g: AttributionGraph, col: int, scale: float, logit_row: int = 0) -> tuple[float, float]:
    """(direct, through the visited features) logit change when feature column `col` is scaled."""
    n_feat = g.n_features
    acts = g.feat_act.double()
    delta = torch.zeros(n_feat, dtype=torch.float64)
    delta[col] = (scale - 1.0) * acts[col]
    n_logits = len(g.logit_tokens)
    per_unit = g.rows[:, :n_feat].double() / acts.clamp_min(1e-30)[None, :]  # ∂target / ∂a_s
    rows_of = {int(c): n_logits + i for i, c in enumerate(g.row_features)}
    order = sorted(rows_of, key=lambda c: (int(g.feat_layer[c]), c))
    for t in order:
        if int(g.feat_layer[t]) > int(g.feat_layer[col]):
            delta[t] += float(per_unit[rows_of[t]] @ delta)
    direct = float(per_unit[logit_row, col]) * float(delta[col])
    return direct, float(per_unit[logit_row] @ delta)


@torch.no_grad()
def real_change(model: nn.Module, transcoders: list[Any], input_ids: Tensor, layer: int, pos: int, feature: int,
                activation: float, scale: float, token: int) -> float:
    """Δ logit of `token` at the last position in the real model with the feature's write scaled."""
    clean = float(model(input_ids=input_ids, use_cache=False).logits[0, -1, token])
    vec = (scale - 1.0) * activation * transcoders[layer].W_dec[feature]

    def edit(x: Tensor) -> Tensor:
        x = x.clone()
        x[:, pos] += vec.to(x.dtype)
        return x

    with replace_activation(model, f"blocks.{layer}.mlp_out", edit):
        changed = float(model(input_ids=input_ids, use_cache=False).logits[0, -1, token])
    return changed - clean


@torch.no_grad()
def frozen_attention_change(model: nn.Module, transcoders: list[Any], input_ids: Tensor, layer: int, pos: int,
                            feature: int, activation: float, scale: float, token: int) -> float:
    """Δ logit like `real_change`, with attention patterns and norm scales held at the clean run's."""
    state = FrozenState(mode="record")
    with frozen(model, state):
        clean = float(model(input_ids=input_ids, use_cache=False).logits[0, -1, token])
    vec = (scale - 1.0) * activation * transcoders[layer].W_dec[feature]

    def edit(x: Tensor) -> Tensor:
        x = x.clone()
        x[:, pos] += vec.to(x.dtype)
        return x

    state.mode = "replay"
    with frozen(model, state), replace_activation(model, f"blocks.{layer}.mlp_out", edit):
        changed = float(model(input_ids=input_ids, use_cache=False).logits[0, -1, token])
    return changed - clean


SELECT_BY = ("direct", "influence")


def top_features(g: AttributionGraph, top: int, by: str = "direct", logit_row: int = 0) -> list[int]:
    """Feature columns with the largest |direct effect| on the target logit, or the largest influence
    on it through the rows computed (|A| normalised per row, summed over paths; see `influence`)."""
    if by == "direct":
        score = g.rows[logit_row, : g.n_features].abs().double()
    elif by == "influence":
        weights = torch.zeros(g.rows.shape[0], dtype=torch.float64)
        weights[logit_row] = 1.0
        score = influence(g.rows.double(), g.row_cols(), weights, g.rows.shape[1])[: g.n_features]
    else:
        raise InterplabError(f"unknown feature selection {by!r}; use one of {', '.join(SELECT_BY)}")
    return score.argsort(descending=True)[:top].tolist()


def check_interventions(model: nn.Module, transcoders: list[Any], g: AttributionGraph, top: int = 5,
                        scale: float = 0.0, logit_row: int = 0, columns: list[int] | None = None,
                        by: str = "direct") -> list[dict[str, Any]]:
    """One row per feature (`columns`, else the `top` by `by`, see `top_features`): where it is,
    Δ_real, Δ_frozen_attn, Δ_direct, Δ_graph and the relative errors."""
    cols = columns if columns is not None else top_features(g, top, by, logit_row)
    ids = torch.tensor([g.input_ids], device=next(model.parameters()).device)
    out = []
    for c in cols:
        L, p, f, a = int(g.feat_layer[c]), int(g.feat_pos[c]), int(g.feat_idx[c]), float(g.feat_act[c])
        real = real_change(model, transcoders, ids, L, p, f, a, scale, g.logit_tokens[logit_row])
        held = frozen_attention_change(model, transcoders, ids, L, p, f, a, scale, g.logit_tokens[logit_row])
        direct, through = graph_prediction(g, c, scale, logit_row)
        linear = linear_change(model, transcoders, g, c, scale, logit_row)
        out.append({"layer": L, "pos": p, "feature": f, "activation": a, "delta_real": real,
                    "delta_frozen_attn": held, "delta_direct": direct, "delta_graph": through,
                    "delta_linear": linear, "rel_error": abs(real - through) / max(abs(real), 1e-12),
                    "rel_error_frozen": abs(held - through) / max(abs(held), 1e-12),
                    "rel_error_linear": abs(held - linear) / max(abs(held), 1e-12),
                    "rel_error_direct": abs(real - direct) / max(abs(real), 1e-12)})
    return out


@torch.no_grad()
def frozen_change(model: nn.Module, transcoders: list[Any], g: AttributionGraph, col: int, scale: float,
                  logit_row: int = 0) -> float:
    """Δ logit in the local replacement model itself (attention, norms and the other features frozen):
    a forward check of the graph's direct effect, which it must equal up to rounding."""
    return _replacement_change(model, transcoders, g, col, scale, logit_row, linear=False)


@torch.no_grad()
def linear_change(model: nn.Module, transcoders: list[Any], g: AttributionGraph, col: int, scale: float,
                  logit_row: int = 0) -> float:
    """Δ_linear: Δ logit in the local replacement model with every active feature responding linearly
    (transcoders linearised around the clean run; attention, norms and errors frozen). With every
    feature row computed, the graph's `graph_prediction` equals it up to rounding."""
    return _replacement_change(model, transcoders, g, col, scale, logit_row, linear=True)


def _replacement_change(model: nn.Module, transcoders: list[Any], g: AttributionGraph, col: int, scale: float,
                        logit_row: int, linear: bool) -> float:
    from interplab.circuits.attribution import Replay, _logit_bias, _skip, record, unembedding

    ids = torch.tensor([g.input_ids], device=next(model.parameters()).device)
    # the graph kept position 0's features as nodes only if some of them are there
    rec = record(model, transcoders, ids, first_position_features=bool((g.feat_pos == 0).any()))
    L, p, f, a = int(g.feat_layer[col]), int(g.feat_pos[col]), int(g.feat_idx[col]), float(g.feat_act[col])
    consts = [rec.mlp_out[i] - _skip(transcoders[i], rec.mlp_in[i]) for i in range(len(transcoders))]
    live = None
    if linear:  # the active features leave the constants for the live, linearised part
        live = []
        for i, tc in enumerate(transcoders):
            z_PF = torch.zeros(len(consts[i]), tc.W_dec.shape[0], dtype=tc.W_dec.dtype, device=consts[i].device)
            z_PF[rec.feat_pos[i], rec.feat_idx[i]] = rec.feat_act[i].to(z_PF.dtype)
            consts[i] = consts[i] - (z_PF @ tc.W_dec).to(consts[i].dtype)
            live.append((z_PF != 0).to(z_PF.dtype))
    token, w_U = g.logit_tokens[logit_row], unembedding(model)
    values = []
    for s in (1.0, scale):
        changed = [c.clone() for c in consts]
        changed[L][p] += (s - 1.0) * a * transcoders[L].W_dec[f].to(changed[L].dtype)
        rp = Replay(model, transcoders, rec, 1, rec.embeds_PD, changed, grad=False, live=live)
        values.append(float(rp.hidden[0, -1] @ w_U[token].to(rp.hidden.dtype)) + _logit_bias(model, token))
    return values[1] - values[0]
