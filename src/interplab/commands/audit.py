"""`interplab audit`: audit a model organism (probes, SAE search, behavioural baseline, blinded game,
causal check) and write a report folder. Options come from `audit.AuditConfig`; the job is
`pipelines.audit.audit_run`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from interplab.audit import AuditConfig
from interplab.commands.options import command, dataclass_options, option, values_for


def register(app: typer.Typer) -> None:
    params = [
        option("model", ..., "The organism: an HF folder with organism_card.json (from `organism train`).", str, "Run"),
        option("out", Path("runs/audit"), "Report folder (created): config, tables, figures, index.json.", Path, "Run"),
        option("card", None, "Organism card file (default: MODEL/organism_card.json).", Path | None, "Run"),
        *dataclass_options(AuditConfig, "Audit"),
        option("device", None, "cpu, cuda, ... (default: CUDA when present).", str | None, "Run"),
        option("overwrite", False, "Replace a finished report in --out.", bool, "Run"),
    ]
    doc = "Audit a model organism with probes, an SAE, a behavioural baseline and a blinded 20-candidate game."
    app.command("audit")(command(params, _audit, doc, "audit"))


def _audit(values: dict[str, Any]) -> None:
    from rich.console import Console

    from interplab.files import read_json_object
    from interplab.pipelines.audit import audit_run

    index = audit_run(values["model"], values["out"], values_for(AuditConfig, values), values["card"],
                      values["overwrite"], values["device"])
    summary = read_json_object(index, what="audit report").get("summary", {})
    ranks = ", ".join(f"{k.removeprefix('rank_')} {v}" for k, v in summary.items() if k.startswith("rank_"))
    Console(stderr=True).print(f"wrote {index}: rank of the truth among {summary.get('candidates')}: {ranks}")
