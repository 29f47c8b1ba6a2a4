"""`interplab dyck`: the Dyck lab (train a bracket-counting transformer from scratch and find its circuit).
Options come from the lab, training and SAE config dataclasses; the job is `pipelines.dyck.run_dyck_lab`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from interplab.commands.options import command, dataclass_options, option, values_for
from interplab.dyck import DyckSAEConfig, DyckTrainConfig
from interplab.pipelines.dyck import DyckLabConfig

_SAE_RENAME = {"d_sae": "sae_d_sae", "k": "sae_k", "steps": "sae_steps", "batch_size": "sae_batch_size",
               "lr": "sae_lr", "seed": "sae_seed"}


def register(app: typer.Typer) -> None:
    params = [
        *dataclass_options(DyckLabConfig, "Data"),
        *dataclass_options(DyckTrainConfig, "Training", rename={"seed": "train_seed"}),
        *dataclass_options(DyckSAEConfig, "SAE", rename=_SAE_RENAME),
        option("out", Path("runs/dyck"), "Report folder (created): model/, tables, figures, index.json.", Path),
        option("overwrite", False, "Replace a finished report already in --out.", bool),
    ]
    doc = ("Train a tiny transformer on balanced brackets and nesting depth, then probe, ablate heads and match SAE "
           "latents to depths; writes a report folder.")
    app.command("dyck")(command(params, _dyck, doc, "dyck"))


def _dyck(values: dict[str, Any]) -> None:
    from rich.console import Console

    from interplab.pipelines.dyck import run_dyck_lab
    from interplab.pipelines.progress import progress_bar

    with progress_bar("dyck") as update:
        def on_step(step: int, total: int, metrics: dict[str, float]) -> None:
            if step % 50 == 0 or step == total:
                update(step, total, None)

        index = run_dyck_lab(values["out"], values_for(DyckLabConfig, values),
                             train=values_for(DyckTrainConfig, values, rename={"seed": "train_seed"}),
                             sae=values_for(DyckSAEConfig, values, rename=_SAE_RENAME),
                             overwrite=values["overwrite"], on_step=on_step)
    Console(stderr=True).print(f"wrote {index}")
