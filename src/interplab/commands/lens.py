"""`interplab lens`: train tuned-lens translators and compare them with the logit lens on held-out text.
Options come from `pipelines.lens.LensRunConfig` and `lens.TunedLensConfig`; the job is `run_tuned_lens`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from interplab.commands.options import command, dataclass_options, option, values_for
from interplab.lens import TunedLensConfig
from interplab.pipelines.lens import LensRunConfig


def register(app: typer.Typer) -> None:
    params = [
        *dataclass_options(LensRunConfig, "Run"),
        *dataclass_options(TunedLensConfig, "Training"),
        option("out", Path("runs/lens"), "Report folder (created): lens/, figures, tables, checkpoints.", Path),
        option("overwrite", False, "Replace a finished report already in --out.", bool),
    ]
    doc = ("Train a tuned lens (an affine translator per layer) and write a report comparing its KL to the model's "
           "output with the logit lens's on held-out text; `interplab serve --reports` then offers it on /lens.")
    app.command("lens")(command(params, _lens, doc, "lens"))


def _lens(values: dict[str, Any]) -> None:
    from rich.console import Console

    from interplab.pipelines.lens import run_tuned_lens
    from interplab.pipelines.progress import progress_bar

    with progress_bar("tuned lens") as update:
        index = run_tuned_lens(values["out"], values_for(LensRunConfig, values), values_for(TunedLensConfig, values),
                               overwrite=values["overwrite"], on_step=lambda done, total: update(done, total, None))
    Console(stderr=True).print(f"wrote {index}")
