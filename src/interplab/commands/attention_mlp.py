"""`interplab attention-mlp`: which attention heads drive an MLP latent (Neo et al. 2024), as a report folder.
Options come from `AttentionMLPConfig` and `TextSource`; the job is
`interplab.pipelines.attention_mlp.attention_mlp_run`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from interplab.circuits.attention_mlp import AttentionMLPConfig
from interplab.commands.options import command, dataclass_options, option, values_for
from interplab.pipelines.cache import TextSource


def register(app: typer.Typer) -> None:
    params = [
        option("model", ..., "HF hub id, local model folder, .gguf file or packaged name (smollm2-135m).", str,
               "Model"),
        option("layer", ..., "The MLP layer whose latent is explained.", int, "Model"),
        option("transcoders", None, "Transcoder set (a train-transcoders run's transcoders/); without it the "
               "layer's MLP neurons are the latents.", Path | None, "Model"),
        option("latent", None, "Transcoder latent (or neuron) index; default: the layer's best next-token latent.",
               int | None, "Model"),
        option("out", ..., "Report folder (created): tables, heatmaps, index.json.", Path, "Model"),
        option("device", None, "cpu, cuda, ... (default: CUDA when present).", str | None, "Model"),
        option("overwrite", False, "Replace a finished report in --out.", bool, "Model"),
        *dataclass_options(TextSource, "Data"),
        *dataclass_options(AttentionMLPConfig, "Analysis"),
    ]
    app.command("attention-mlp")(command(params, _run, "Rank the attention heads that drive an MLP latent (a "
                                         "transcoder latent or neuron, by default a next-token one), score them, "
                                         "and name what they read.", "attention-mlp"))


def _run(values: dict[str, Any]) -> None:
    from interplab.models.loading import load_model
    from interplab.pipelines.attention_mlp import attention_mlp_run
    from interplab.reports import refuse_to_replace_report

    refuse_to_replace_report(values["out"], values["overwrite"])
    lm = load_model(values["model"], device=values["device"])
    result = attention_mlp_run(values["out"], lm, values_for(TextSource, values).load(), values["layer"],
                               values["transcoders"], values["latent"], values_for(AttentionMLPConfig, values),
                               overwrite=values["overwrite"])
    typer.echo(f"{result['latent']}: promotes {result['promoted_tokens']}; next-token precision "
               f"{result['next_token_precision']:.2f}; top head {result['top_head']} (AUROC "
               f"{result['top_head_auroc']:.2f}, look-ups {result['top_head_lookup_rate']:.2f}) -> {values['out']}")
