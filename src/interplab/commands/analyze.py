"""`interplab analyze` (and `interplab demo`): a model in, the served workbench out.

Options come from `AnalyzeConfig`; the job is `interplab.pipelines.analyze.run_analyze`, then
`interplab serve` on what it wrote. `demo` is `analyze` with its defaults (SmolLM2-135M over the
packaged English Wikipedia text) into runs/demo.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from interplab.commands.options import command, dataclass_options, option, values_for
from interplab.pipelines.analyze import AnalyzeConfig


def _params(out_default: Any) -> list:
    return [
        *dataclass_options(AnalyzeConfig, "Analysis"),
        option("out", out_default, "Run folder (created): stores, SAEs, dashboards.db, reports/, stages.json.",
               Path, "Run"),
        option("overwrite", False, "Replace a different analysis already in --out.", bool, "Run"),
        option("serve", True, "Serve the web UI at the end (Ctrl-C to stop).", bool, "Run"),
        option("port", 8000, "Port of the web UI (bound to 127.0.0.1).", int, "Run"),
    ]


def register(app: typer.Typer) -> None:
    doc = ("Cache activations, train and evaluate SAEs (held-out tokens), build dashboards and reports, then "
           "serve the web UI. Rerun the same command to resume after a kill.")
    app.command("analyze")(command(_params(...), _analyze, doc, "analyze"))
    demo_doc = ("The offline demo: `analyze` on SmolLM2-135M over packaged Wikipedia text into runs/demo, then the "
                "web UI (--model minilm for the fastest run).")
    app.command("demo")(command(_params(Path("runs/demo")), _analyze, demo_doc, "demo"))


def _analyze(values: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    from interplab.commands.serve import start_server
    from interplab.pipelines.analyze import run_analyze

    cfg = values_for(AnalyzeConfig, values)
    result = run_analyze(cfg, values["out"], overwrite=values["overwrite"])
    table = Table(title=f"{cfg.model}: held-out evaluation")
    for col in ("hook", "FVU", "L0", "dead", "CE recovered", "KL recovered"):
        table.add_column(col)
    for hr in result.hooks:
        ev = hr.evaluation
        table.add_row(hr.hook, *(_fmt(ev.get(k)) for k in ("heldout_fvu", "heldout_l0", "heldout_dead_fraction",
                                                          "heldout_ce_recovered", "heldout_kl_recovered")))
    console = Console(stderr=True)
    console.print(table)
    if values["serve"]:
        start_server(db=str(result.db), port=values["port"], reports=result.reports, device=cfg.device,
                     vectors=result.vectors if result.vectors.is_dir() else None)
    else:
        console.print(f"[green]done. Browse with: interplab serve --db {result.db} --reports {result.reports}")


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else ("n/a" if value is None else str(value))
