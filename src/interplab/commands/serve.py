"""`interplab serve`: the dashboards web UI (feature pages, search, live inference, steering, reports) with uvicorn."""

from __future__ import annotations

from pathlib import Path

import typer

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def match_sae_folder(saes: list, folder: Path) -> dict[int, Path]:
    """SAE id -> folder for `--sae`: the SAE rows whose stored path is that folder, else the only SAE."""
    from interplab.common import InterplabError

    target = folder.expanduser().resolve()
    same = {r.id: target for r in saes if Path(r.path).expanduser().resolve() == target}
    if same:
        return same
    if len(saes) == 1:
        return {saes[0].id: target}
    names = ", ".join(f"{r.name} ({r.path})" for r in saes) or "none"
    raise InterplabError(f"--sae {folder} matches no SAE of the database (SAEs: {names}); "
                         "pass the folder the dashboards were built from")


def serve(
    db: str = typer.Option(..., help="Dashboards database: a SQLite file or a SQLAlchemy URL."),
    sae: Path | None = typer.Option(None, help="SAE folder for live inference (default: the path stored in the DB)."),
    model: str | None = typer.Option(None, help="Model for live inference (default: the model stored in the DB)."),
    port: int = typer.Option(8000, help="Port to listen on."),
    host: str = typer.Option("127.0.0.1", help="Interface to bind; the default keeps the UI on this machine."),
    reports: Path | None = typer.Option(None, help="Folder searched for probe / toy-model reports (index.json)."),
    device: str | None = typer.Option(None, help="Device for live inference: cpu, cuda, ... (default: auto)."),
    vectors: Path | None = typer.Option(None, help="Folder of steering vectors (`interplab steer build`) for /steer."),
) -> None:
    """Serve the feature dashboards of a database on http://HOST:PORT (Ctrl-C to stop)."""
    import uvicorn
    from rich.console import Console

    from interplab.common import InterplabError
    from interplab.dashboards.db import DashboardDB
    from interplab.web import create_app

    console = Console(stderr=True)
    database = DashboardDB(db, create=False)
    sae_paths = match_sae_folder(database.list_saes(), sae) if sae is not None else None
    if reports is not None and not reports.is_dir():
        raise InterplabError(f"--reports {reports} is not a folder")
    if vectors is not None and not vectors.is_dir():
        raise InterplabError(f"--vectors {vectors} is not a folder")
    app = create_app(database, sae_paths=sae_paths, model=model, reports_dir=reports, device=device,
                     vectors_dir=vectors)
    if host not in LOOPBACK:
        console.print(f"[yellow]warning:[/] binding {host}: the UI (and live inference) is reachable from the network")
    shown = f"[{host}]" if ":" in host else host
    console.print(f"[bold green]interplab dashboards at http://{shown}:{port}[/]  (Ctrl-C to stop)")
    uvicorn.run(app, host=host, port=port, log_level="warning")
