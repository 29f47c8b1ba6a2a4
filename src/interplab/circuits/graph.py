"""Pruning an attribution graph by influence, and its JSON file (Neuronpedia-style node and link keys).

Pruning (as in Ameisen et al. 2025, §"Graph pruning"; circuit-tracer's `prune_graph`):
1. Node influence: |A| normalised per target row, weighted by the target logits' probabilities,
   summed over all paths (`attribution.influence`). Logit nodes always stay.
2. Keep the most influential feature / error / token nodes whose influence adds up to
   `node_threshold` of the total.
3. Edge score = |A[t, s]| normalised per row × (influence of t, or its logit weight); among edges
   between kept nodes, keep the highest scores adding up to `edge_threshold` of their total.
4. Drop kept nodes left with no edge.

JSON: {"metadata": {...}, "nodes": [{"node_id", "feature_type" ("transcoder" | "mlp error" |
"embedding" | "logit"), "layer", "ctx_idx", "feature", "activation", "influence", "token", ...}],
"links": [{"source", "target", "weight"}]}; weights are direct effects (signed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from interplab.circuits.attribution import AttributionGraph, influence
from interplab.common import InterplabError
from interplab.files import read_json_object, write_json_atomic

GRAPH_VERSION = 1


def _cumulative_keep(scores: Tensor, share: float) -> Tensor:
    """Mask of the largest scores whose running sum first reaches `share` of the total."""
    order = scores.argsort(descending=True)
    csum = scores[order].cumsum(0)
    total = float(csum[-1]) if len(csum) else 0.0
    keep = torch.zeros_like(scores, dtype=torch.bool)
    if total <= 0:
        return keep
    n = int((csum < share * total).sum()) + 1
    keep[order[: min(n, len(order))]] = True
    return keep & (scores > 0)


def node_ids(g: AttributionGraph) -> list[str]:
    """Column node ids: features "L_f_p", errors "E_L_p", tokens "T_p"."""
    ids = [f"{int(L)}_{int(f)}_{int(p)}" for L, f, p in zip(g.feat_layer, g.feat_idx, g.feat_pos, strict=True)]
    ids += [f"E_{L}_{p}" for L in range(g.n_layers) for p in range(g.n_positions)]
    ids += [f"T_{p}" for p in range(g.n_positions)]
    return ids


def prune(g: AttributionGraph, node_threshold: float, edge_threshold: float) -> dict[str, Any]:
    """The kept nodes and links (see the module docstring) as JSON-ready lists."""
    n_logits = len(g.logit_tokens)
    n_cols = g.rows.shape[1]
    row_cols = g.row_cols()
    weights = torch.cat([g.logit_probs / g.logit_probs.sum(), torch.zeros(len(g.row_features))])
    infl = influence(g.rows.double(), row_cols, weights.double(), n_cols)
    keep_col = _cumulative_keep(infl, node_threshold)
    norm = g.rows.double().abs()
    norm = norm / norm.sum(1, keepdim=True).clamp_min(1e-30)
    row_weight = torch.cat([weights.double()[:n_logits], infl[g.row_features]])
    row_kept = torch.cat([torch.ones(n_logits, dtype=torch.bool), keep_col[g.row_features]])
    score = norm * row_weight[:, None] * row_kept[:, None] * keep_col[None, :]
    keep_edge = _cumulative_keep(score.flatten(), edge_threshold).view_as(score)
    ids = node_ids(g)
    logit_ids = [f"L_{t}" for t in g.logit_tokens]
    targets = logit_ids + [ids[int(c)] for c in g.row_features]
    links = [{"source": ids[int(c)], "target": targets[int(r)], "weight": float(g.rows[r, c])}
             for r, c in keep_edge.nonzero().tolist()]
    used = {link["source"] for link in links} | {link["target"] for link in links}
    nodes = [_logit_node(g, i, t) for i, t in enumerate(g.logit_tokens)]
    nodes += [_column_node(g, c, ids[c], float(infl[c])) for c in range(n_cols) if ids[c] in used]
    return {"nodes": nodes, "links": links}


def _logit_node(g: AttributionGraph, i: int, t: int) -> dict[str, Any]:
    return {"node_id": f"L_{t}", "feature_type": "logit", "layer": g.n_layers, "ctx_idx": g.n_positions - 1,
            "feature": t, "activation": float(g.logit_values[i]), "influence": float(g.logit_probs[i]),
            "token_prob": float(g.logit_probs[i]), "token": g.tokens[-1], "label": f"logit {t}"}


def _column_node(g: AttributionGraph, c: int, node_id: str, infl: float) -> dict[str, Any]:
    n_feat, P = g.n_features, g.n_positions
    if c < n_feat:
        L, p, f = int(g.feat_layer[c]), int(g.feat_pos[c]), int(g.feat_idx[c])
        return {"node_id": node_id, "feature_type": "transcoder", "layer": L, "ctx_idx": p, "feature": f,
                "activation": float(g.feat_act[c]), "influence": infl, "token": g.tokens[p]}
    if c < n_feat + g.n_layers * P:
        L, p = divmod(c - n_feat, P)
        return {"node_id": node_id, "feature_type": "mlp error", "layer": L, "ctx_idx": p, "feature": None,
                "activation": None, "influence": infl, "token": g.tokens[p]}
    p = c - n_feat - g.n_layers * P
    return {"node_id": node_id, "feature_type": "embedding", "layer": -1, "ctx_idx": p, "feature": g.input_ids[p],
            "activation": None, "influence": infl, "token": g.tokens[p]}


def graph_json(g: AttributionGraph, node_threshold: float = 0.8, edge_threshold: float = 0.98,
               metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """The pruned graph as one JSON object."""
    pruned = prune(g, node_threshold, edge_threshold)
    meta = {"version": GRAPH_VERSION, "prompt_tokens": g.tokens, "prompt_ids": g.input_ids,
            "n_layers": g.n_layers, "node_threshold": node_threshold, "edge_threshold": edge_threshold,
            **g.meta, **(metadata or {})}
    return {"metadata": meta, **pruned}


def write_graph(path: str | Path, data: dict[str, Any]) -> Path:
    path = Path(path)
    write_json_atomic(path, data, indent=None)
    return path


def read_graph(path: str | Path) -> dict[str, Any]:
    """A graph JSON file, checked for the keys the web page reads."""
    data = read_json_object(Path(path), what="an attribution graph")
    if not isinstance(data.get("nodes"), list) or not isinstance(data.get("links"), list):
        raise InterplabError(f"{path} is not an attribution graph (no nodes / links lists)")
    return data
