"""`interplab toy`: reproduce Toy Models of Superposition (Elhage et al. 2022) and write its figures.
Options come from `toy.runner.Overrides`; the job is `toy.runner.run_presets`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from interplab.commands.options import command, dataclass_options, option, values_for
from interplab.toy.runner import PRESETS, Overrides


def register(app: typer.Typer) -> None:
    params = [
        option("preset", "intro", f"{' | '.join(PRESETS)} | all", str, "Run"),
        option("out", Path("runs/toy"), "Run folder (created): config.json, metrics.jsonl, figures.", Path, "Run"),
        *dataclass_options(Overrides, "Training"),
        option("overwrite", False, "Replace a finished report already in --out.", bool, "Run"),
    ]
    doc = "Train toy models of superposition and write PNG + interactive HTML figures to a run folder."
    app.command("toy")(command(params, _toy, doc, "toy"))


def _toy(values: dict[str, Any]) -> None:
    from rich.console import Console

    from interplab.common import InterplabError
    from interplab.pipelines.progress import progress_bar
    from interplab.toy.runner import run_presets

    preset = values["preset"]
    names = list(PRESETS) if preset == "all" else [preset]
    if names[0] not in PRESETS:
        raise InterplabError(f"unknown preset {preset!r}; use one of {', '.join(PRESETS)} or all")
    ov = values_for(Overrides, values)
    if (ov.steps is not None and ov.steps < 1) or (ov.restarts is not None and ov.restarts < 1):
        raise InterplabError("--steps and --restarts must be at least 1")
    with progress_bar("toy") as update:
        def progress_for(name: str):
            def on_step(step: int, total: int) -> None:
                if step % 25 == 0 or step == total:  # a refresh per step costs more than a tiny model's step
                    update(step, total, f"toy {name}")

            return on_step

        folder = run_presets(names, values["out"], ov, progress_for, overwrite=values["overwrite"])
    Console(stderr=True).print(f"wrote {folder}/index.json with figures for: {', '.join(names)}")
