"""`interplab graph`: an attribution graph for a prompt from per-layer transcoders, as a report folder.
Options come from `GraphConfig`; the job is `interplab.pipelines.graph.graph_run`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from interplab.circuits import GraphConfig
from interplab.commands.options import command, dataclass_options, option, values_for


def register(app: typer.Typer) -> None:
    params = [
        option("model", ..., "HF hub id, local model folder, .gguf file or packaged name (smollm2-135m).", str,
               "Model"),
        option("transcoders", ..., "Folder of per-layer transcoders (a train-transcoders run's transcoders/).",
               Path, "Model"),
        option("prompt", ..., "The prompt whose next-token logit is explained.", str, "Graph"),
        option("out", ..., "Report folder (created): graph.json, tables, index.json.", Path, "Graph"),
        option("check", 0, "Ablate the top N features in the real model and compare with the graph.", int, "Graph"),
        option("check_by", "direct", "Which features --check ablates: the largest |direct effect| on the logit "
               "(direct) or the largest influence through the graph (influence).", str, "Graph"),
        option("device", None, "cpu, cuda, ... (default: CUDA when present).", str | None, "Model"),
        option("overwrite", False, "Replace a finished report in --out.", bool, "Graph"),
        *dataclass_options(GraphConfig, "Graph"),
    ]
    app.command("graph")(command(params, _graph, "Build an attribution graph (transcoder features, error "
                                 "nodes, direct-effect edges, pruned by influence) for a prompt.", "graph"))


def _graph(values: dict[str, Any]) -> None:
    from interplab.models.loading import load_model
    from interplab.pipelines.graph import graph_run

    lm = load_model(values["model"], device=values["device"])
    data = graph_run(values["out"], lm, values["transcoders"], values["prompt"], values_for(GraphConfig, values),
                     check=values["check"], check_by=values["check_by"], overwrite=values["overwrite"])
    meta = data["metadata"]
    typer.echo(f"graph: {len(data['nodes'])} nodes, {len(data['links'])} links, completeness error "
               f"{meta['completeness_logit_abs_error']:.2e}, {meta['seconds_total']:.1f} s -> {values['out']}")
