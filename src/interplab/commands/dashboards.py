"""`interplab dashboards`: build feature dashboards of an SAE (or of a hook's neurons) into a database.
Options come from `DashboardConfig`; the job is `interplab.dashboards.build_dashboards`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from interplab.commands.options import command, dataclass_options, option, values_for
from interplab.dashboards import DashboardConfig


def register(app: typer.Typer) -> None:
    params = [
        option("store", ..., "Activation store folder (from `interplab cache`).", Path, "Input"),
        option("db", ..., "Database: a SQLite file path, or a SQLAlchemy URL (postgresql+psycopg://...).", str,
               "Input"),
        option("sae", None, "SAE folder (cfg.json + sae_weights.safetensors) or weights file.", Path | None, "Input"),
        option("neurons", False, "Dashboards of the store's raw dimensions instead of an SAE.", bool, "Input",
               decls=["--neurons"]),
        option("model", None, "Model for the tokenizer and logit effects (default: the store's).", str | None,
               "Input"),
        option("name", None, "Name in the database (default: the SAE folder's name).", str | None, "Input"),
        *dataclass_options(DashboardConfig, "Dashboards"),
        option("device", None, "cpu, cuda, ... (default: CUDA when present).", str | None),
        option("resume", False, "Continue an interrupted build of the same name (a new one just builds).", bool),
        option("overwrite", False, "Rebuild dashboards already in the database under this name.", bool),
    ]
    doc = "Build per-latent dashboards: top contexts, quantile samples, histograms, logit effects, neighbours."
    app.command("dashboards")(command(params, _dashboards, doc, "dashboards"))


def _dashboards(values: dict[str, Any]) -> None:
    from interplab.common import InterplabError
    from interplab.dashboards import build_dashboards, masked_url
    from interplab.pipelines.progress import progress_bar

    if (values["sae"] is None) == (not values["neurons"]):
        raise InterplabError("give exactly one of --sae <SAE folder> or --neurons")
    cfg = values_for(DashboardConfig, values)
    cfg.check()
    with progress_bar("dashboards") as update:
        def progress(stage: str, done: int, total: int) -> None:
            update(done, total, f"dashboards: {stage}")

        result = build_dashboards(values["sae"], values["store"], values["db"], cfg, name=values["name"],
                                  model=values["model"], resume=values["resume"], overwrite=values["overwrite"],
                                  device=values["device"], progress=progress)
    db = masked_url(values["db"])
    if result.written == 0:
        typer.echo(f"dashboards of {result.n_latents} latents already complete in {db} (sae id {result.sae_id})")
    else:
        typer.echo(f"wrote dashboards of {result.written} latents ({result.n_latents} in all) over {result.n_tokens} "
                   f"tokens in {result.seconds:.1f}s -> {db} (sae id {result.sae_id})")
