"""`interplab toy`: reproduce Toy Models of Superposition (Elhage et al. 2022) and write its figures."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    app.command("toy")(toy)


def toy(
    preset: str = typer.Option("intro", help="intro | sweep | phase | dimensionality | all"),
    out: Path = typer.Option(
        Path("runs/toy"), help="Run folder (created): config.json, metrics.jsonl, figures."
    ),
    steps: int | None = typer.Option(
        None, help="Training steps for every preset (default: each preset's own)."
    ),
    restarts: int | None = typer.Option(None, help="Restarts per condition; the lowest-loss one is kept."),
    seed: int = typer.Option(0, help="Seed for weight init and synthetic data."),
    device: str | None = typer.Option(None, help="cpu, cuda, ... (default: CUDA when present, else CPU)."),
) -> None:
    """Train toy models of superposition and write PNG + interactive HTML figures to a run folder."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from interplab.common import InterplabError
    from interplab.toy.runner import PRESETS, Overrides, run_presets

    names = list(PRESETS) if preset == "all" else [preset]
    if names[0] not in PRESETS:
        raise InterplabError(f"unknown preset {preset!r}; use one of {', '.join(PRESETS)} or all")
    if (steps is not None and steps < 1) or (restarts is not None and restarts < 1):
        raise InterplabError("--steps and --restarts must be at least 1")
    ov = Overrides(steps=steps, restarts=restarts, seed=seed, device=device)
    console = Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeRemainingColumn(),
        console=console,
    ) as bar:

        def progress_for(name: str):
            task = bar.add_task(f"toy {name}", total=None)

            def update(step: int, total: int) -> None:
                # Refreshing every step would cost more than a tiny model's training step.
                if step % 25 == 0 or step == total:
                    bar.update(task, completed=step, total=total)

            return update

        folder = run_presets(names, out, ov, progress_for)
    console.print(f"wrote {folder}/index.json with figures for: {', '.join(names)}")
