"""`interplab crosslingual`: the cross-lingual lab on verse-aligned Bibles (default model Gemma-3-270m).
Options come from the run, shared-latent and steering config dataclasses; the job is
`pipelines.crosslingual.run_crosslingual_lab`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from interplab.commands.options import command, dataclass_options, option, values_for
from interplab.crosslingual import CrossSteeringConfig, SharedLatentConfig
from interplab.pipelines.crosslingual import CrosslingualConfig

_SHARED = {"seed": "sae_seed", "steps": "sae_steps", "batch_size": "sae_batch_size", "lr": "sae_lr"}
_STEER = {"layer": "steer_layer", "seed": "shuffle_seed"}


def register(app: typer.Typer) -> None:
    params = [
        *dataclass_options(CrosslingualConfig, "Run", exclude=("layers",)),
        option("layers", "2,5,8,11,14,17", "Comma-separated blocks whose resid_post the shared-latent SAEs read.", str),
        *dataclass_options(SharedLatentConfig, "Shared latents", rename=_SHARED),
        *dataclass_options(CrossSteeringConfig, "Steering", rename=_STEER),
        option("out", Path("runs/crosslingual"), "Report folder (created): tables, figures, index.json.", Path),
        option("overwrite", False, "Replace a finished report already in --out.", bool),
    ]
    doc = ("Shared SAE latents across English/Spanish/French by layer, the logit lens's latent English, and whether "
           "an English steering vector steers Spanish and French (with shuffled-label controls).")
    app.command("crosslingual")(command(params, _crosslingual, doc, "crosslingual"))


def _crosslingual(values: dict[str, Any]) -> None:
    from rich.console import Console

    from interplab.common import InterplabError
    from interplab.pipelines.crosslingual import run_crosslingual_lab

    try:
        layers = [int(x) for x in values["layers"].split(",") if x.strip()]
    except ValueError:
        raise InterplabError(f"--layers takes comma-separated integers like 2,5,8, got {values['layers']!r}") from None
    index = run_crosslingual_lab(values["out"], values_for(CrosslingualConfig, values, layers=layers),
                                 values_for(SharedLatentConfig, values, rename=_SHARED),
                                 values_for(CrossSteeringConfig, values, rename=_STEER), overwrite=values["overwrite"])
    Console(stderr=True).print(f"wrote {index}")
