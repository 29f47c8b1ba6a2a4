"""Attention–MLP interactions (Neo et al. 2024) for one MLP latent, as a report folder.

Report folder (kind "attention-mlp"):
    tables/candidates.*   next-token latents of the layer: specificity, promoted tokens, firing, precision
    tables/heads.*        every head by mean direct contribution where the latent is active, with its
                          Pearson r / AUROC and what it attends to there
    figures/contribution_when_active.png (+ .html values), figures/auroc.png (+ .html)
    config.json, index.json (summary: the latent, its promoted tokens, next-token precision, top head)

1. The layer's latents (a transcoder's, else the MLP's neurons) ranked by token specificity
   (circuits.attention_mlp.next_token_candidates); their firing and next-token precision on the texts.
2. The latent asked for, else the candidate with the best next-token precision among those that fire
   at least `top_positions / 4` times.
3. Its corpus scan: head contributions, scores and look-ups (circuits.attention_mlp).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from interplab.circuits.attention_mlp import (
    AttentionMLPConfig,
    candidate_activity,
    head_table,
    next_token_candidates,
    scan,
    summary,
)
from interplab.circuits.head_contributions import neuron_reader, transcoder_reader
from interplab.common import InterplabError
from interplab.models.loading import LoadedModel
from interplab.models.neurons import neuron_weights
from interplab.pipelines.transcoders import load_layer_transcoders
from interplab.reports import ReportWriter, refuse_to_replace_report

N_CANDIDATES = 20


def attention_mlp_run(out: str | Path, lm: LoadedModel, texts: Sequence[str], layer: int,
                      transcoders_folder: str | Path | None = None, latent: int | None = None,
                      cfg: AttentionMLPConfig | None = None, overwrite: bool = False) -> dict[str, Any]:
    """Write the report for `latent` of `layer` (a transcoder latent with `transcoders_folder`, else an MLP
    neuron; None: the best next-token candidate) into `out`; returns its summary."""
    cfg = cfg or AttentionMLPConfig()
    refuse_to_replace_report(out, overwrite)
    if not 0 <= layer < lm.n_layers:
        raise InterplabError(f"--layer {layer}: {lm.name} has layers 0..{lm.n_layers - 1}")
    tc = None
    if transcoders_folder is not None:
        found = load_layer_transcoders(transcoders_folder, device=lm.device)
        if layer not in found:
            raise InterplabError(f"{transcoders_folder} has no transcoder for layer {layer} (it has {sorted(found)})")
        tc = found[layer]
    writes = tc.W_dec.detach() if tc is not None else neuron_weights(lm.model, layer).w_out_ND
    decode = lm.tokenizer.decode
    cands = next_token_candidates(lm.model, writes, N_CANDIDATES)
    activity = candidate_activity(lm, texts, layer, [i for i, _, _ in cands], [p for _, _, p in cands], tc, cfg)
    rows = [{"latent": i, "specificity": spec, "promotes": " ".join(repr(decode(t)) for t in prom), **act}
            for (i, spec, prom), act in zip(cands, activity, strict=True)]
    if latent is None:
        firing = [r for r in rows if r["fires"] >= max(1, cfg.top_positions // 4)]
        if not firing:
            raise InterplabError(f"none of layer {layer}'s {N_CANDIDATES} most token-specific latents fires "
                                 f"{max(1, cfg.top_positions // 4)} times on the texts; give --latent or more text")
        latent = max(firing, key=lambda r: (r["next_token_precision"], r["specificity"]))["latent"]
    reader = transcoder_reader(tc, layer, latent) if tc is not None else neuron_reader(lm.model, layer, latent)
    result = scan(lm, texts, reader, cfg)
    heads = head_table(result, cfg, decode)
    head_summary = summary(result, cfg, decode)
    top = heads[0]
    writer = ReportWriter(out, f"Attention-MLP interactions: {reader.name} of {lm.name}", "attention-mlp",
                          overwrite=overwrite)
    writer.write_config({"model": lm.name, "layer": layer, "latent": latent, "transcoders": str(transcoders_folder),
                         "texts": len(texts), "config": cfg.__dict__})
    writer.table("candidates", rows, f"Next-token latents of layer {layer} (logit-lens specificity)")
    writer.table("heads", heads, f"Heads by direct contribution to {reader.name} where it is most active")
    n_layers = result.heads_NLH.shape[1]
    grid = torch.zeros(n_layers, result.heads_NLH.shape[2])
    auroc = torch.zeros_like(grid)
    for h in heads:
        grid[h["layer"], h["head"]], auroc[h["layer"], h["head"]] = h["mean_when_active"], h["auroc"]
    labels = ([f"L{i}" for i in range(n_layers)], [f"H{j}" for j in range(grid.shape[1])])
    writer.heatmap("contribution_when_active", grid, *labels, f"Mean direct contribution of each head to "
                   f"{reader.name}'s pre-activation at its top {cfg.top_positions} positions", "layer", "head",
                   caption="How much each attention head (column) in each layer (row) pushes this latent up where it "
                           "fires most: bright cells are the heads that feed it; near zero means no direct part.")
    writer.heatmap("auroc", auroc, *labels, f"AUROC of each head's contribution for {reader.name}'s top positions",
                   "layer", "head", vmin=0.0, vmax=1.0,
                   caption="How reliably each head's push tells the latent's top positions apart from the others: 1.0 "
                           "always, 0.5 no better than chance.")
    summary_out = {**head_summary, "top_head": f"L{top['layer']}H{top['head']}",
                   "top_head_contribution": top["mean_when_active"], "top_head_auroc": top["auroc"],
                   "top_head_lookup_rate": top["lookup_rate"], "top_head_attends_to": top["attends_to"]}
    writer.finish(summary_out)
    return summary_out
