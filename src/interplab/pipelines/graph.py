"""Build an attribution graph for a prompt into a report folder.

Report folder (kind "attribution-graph", listed with the other reports):
    graph.json            the pruned graph (circuits.graph format)
    tables/nodes.*        the kept nodes with layer, position, activation, influence
    tables/interventions.* (with `check=N`) real-model vs graph logit change for the top-N features
    config.json, index.json (summary: completeness error, seconds, node and edge counts)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from interplab.circuits import GraphConfig, attribute, check_interventions, graph_json, write_graph
from interplab.circuits.interventions import SELECT_BY
from interplab.common import InterplabError
from interplab.models.loading import LoadedModel
from interplab.pipelines.transcoders import load_layer_transcoders
from interplab.reports import ReportWriter

GRAPH_FILE = "graph.json"


def graph_run(out: str | Path, lm: LoadedModel, transcoders_folder: str | Path, prompt: str,
              cfg: GraphConfig | None = None, target_tokens: list[int] | None = None, check: int = 0,
              check_by: str = "direct", overwrite: bool = False) -> dict[str, Any]:
    """Write the graph of `prompt` (transcoders from a `train_transcoders_run` folder) into `out`."""
    cfg = cfg or GraphConfig()
    if check and check_by not in SELECT_BY:
        raise InterplabError(f"--check-by {check_by!r} is not one of {', '.join(SELECT_BY)}")
    layers = load_layer_transcoders(transcoders_folder, device=lm.device)
    if sorted(layers) != list(range(lm.n_layers)):
        raise InterplabError(f"{transcoders_folder} has transcoders for layers {sorted(layers)}; a graph needs "
                             f"all {lm.n_layers} layers of {lm.name}")
    tcs = [layers[L].to(dtype=next(lm.model.parameters()).dtype) for L in range(lm.n_layers)]
    writer = ReportWriter(out, f"Attribution graph: {prompt[:60]}", "attribution-graph", overwrite=overwrite)
    writer.write_config({"model": lm.name, "transcoders": str(transcoders_folder), "prompt": prompt,
                         "graph": cfg.__dict__, "target_tokens": target_tokens})
    g = attribute(lm.model, lm.tokenizer, tcs, prompt, cfg, target_tokens)
    data = graph_json(g, cfg.node_threshold, cfg.edge_threshold,
                      metadata={"model": lm.name, "prompt": prompt,
                                "target_token": lm.tokenizer.decode(g.logit_tokens[:1])})
    write_graph(writer.folder / GRAPH_FILE, data)
    writer.table("nodes", [{k: n[k] for k in ("node_id", "feature_type", "layer", "ctx_idx", "feature",
                                              "activation", "influence")} for n in data["nodes"]], "Kept nodes")
    summary = {"completeness_error": g.meta["completeness_logit_abs_error"], "seconds": g.meta["seconds_total"],
               "nodes": len(data["nodes"]), "links": len(data["links"]), "active_features": g.n_features}
    if check:
        with torch.no_grad():
            rows = check_interventions(lm.model, tcs, g, top=check, by=check_by)
        writer.table("interventions", rows, "Ablating top features: real model vs graph")
        summary["intervention_median_rel_error"] = float(torch.tensor([r["rel_error"] for r in rows]).median())
        for key in ("rel_error_frozen", "rel_error_linear"):
            summary[f"intervention_median_{key}"] = float(torch.tensor([r[key] for r in rows]).median())
    writer.finish(summary)
    return data
