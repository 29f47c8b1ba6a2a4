"""`interplab serve`: the dashboards web UI (feature pages, search, live inference, steering, reports) with uvicorn."""

from __future__ import annotations

from pathlib import Path

import typer

LOOPBACK = ("127.0.0.1", "localhost", "::1")
EVERY_INTERFACE = ("0.0.0.0", "::")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def match_sae_folder(saes: list, folder: Path, db_file: Path | None = None) -> dict[int, Path]:
    """SAE id -> folder for `--sae`: the SAE rows whose stored path leads to that folder, else the only SAE.
    db_file: the SQLite file (relative paths of older databases are read from its folder too)."""
    from interplab.common import InterplabError
    from interplab.dashboards import sae_locations

    target = folder.expanduser().resolve()
    same = {r.id: target for r in saes if target in {p.resolve() for p in sae_locations(r.path, db_file)}}
    if same:
        return same
    if len(saes) == 1:
        return {saes[0].id: target}
    names = ", ".join(f"{r.name} ({r.path})" for r in saes) or "none"
    raise InterplabError(f"--sae {folder} matches no SAE of the database (SAEs: {names}); "
                         "pass the folder the dashboards were built from")


def allowed_hosts(host: str, extra: list[str]) -> tuple[str, ...]:
    """The Host names answered: the loopback names, the bound address (unless it is every interface) and
    the --allow-host names."""
    bound = [] if host in EVERY_INTERFACE else [host.strip("[]")]
    return tuple(dict.fromkeys([*LOOPBACK, *bound, *extra]))


def serve(
    db: str = typer.Option(..., help="Dashboards database: a SQLite file or a SQLAlchemy URL."),
    sae: Path | None = typer.Option(None, help="SAE folder for live inference (default: the path stored in the DB)."),
    model: str | None = typer.Option(None, help="Model for live inference (default: the model stored in the DB)."),
    port: int = typer.Option(8000, help="Port to listen on."),
    host: str = typer.Option("127.0.0.1", help="Interface to bind; the default keeps the UI on this machine."),
    reports: Path | None = typer.Option(None, help="Folder searched for probe / toy-model reports (index.json)."),
    device: str | None = typer.Option(None, help="Device for live inference: cpu, cuda, ... (default: auto)."),
    vectors: Path | None = typer.Option(None, help="Folder of steering vectors (`interplab steer build`) for /steer."),
    allow_host: list[str] | None = typer.Option(
        None, "--allow-host", help="A name (or IP) clients reach the server by, besides the loopback names and --host; "
                                 "repeat for several, '*' for any. Requests for other names are refused (DNS "
                                 "rebinding)."),
    max_body: int | None = typer.Option(
        None, help="Largest request body read, in bytes (default 1 MiB); larger ones get 413."),
    live_batch: int = typer.Option(
        16, help="Most live-inference texts run in one forward pass: requests that arrive while one runs share "
                 "the next (1: each request alone)."),
) -> None:
    """Serve the feature dashboards of a database on http://HOST:PORT (Ctrl-C to stop)."""
    start_server(db=db, sae=sae, model=model, port=port, host=host, reports=reports, device=device,
                 vectors=vectors, allow_host=allow_host, max_body=max_body, live_batch=live_batch)


def start_server(*, db: str, sae: Path | None = None, model: str | None = None, port: int = 8000,
                 host: str = "127.0.0.1", reports: Path | None = None, device: str | None = None,
                 vectors: Path | None = None, allow_host: list[str] | None = None,
                 max_body: int | None = None, live_batch: int = 16) -> None:
    """`interplab serve` as a function (the demo calls it): check the inputs, build the app, run uvicorn."""
    import uvicorn
    from rich.console import Console

    from interplab.common import InterplabError
    from interplab.dashboards.db import DashboardDB
    from interplab.web import GuardConfig, bound_malloc_arenas, create_app

    console = Console(stderr=True)
    database = DashboardDB(db, create=False)
    sae_paths = match_sae_folder(database.list_saes(), sae, database.file) if sae is not None else None
    if reports is not None and not reports.is_dir():
        raise InterplabError(f"--reports {reports} is not a folder")
    if vectors is not None and not vectors.is_dir():
        raise InterplabError(f"--vectors {vectors} is not a folder")
    if live_batch < 1:
        raise InterplabError(f"--live-batch {live_batch}: give at least 1 (1 runs every request alone)")
    guards = GuardConfig(allowed_hosts=allowed_hosts(host, allow_host or []))
    if max_body is not None:
        guards.max_body_bytes = max_body

    bound_malloc_arenas()  # before uvicorn's threads: live batches' memory levels off (web/live.py)
    app = create_app(database, sae_paths=sae_paths, model=model, reports_dir=reports, device=device,
                     vectors_dir=vectors, guards=guards, live_batch=live_batch)
    if host not in LOOPBACK:
        console.print(f"[yellow]warning:[/] binding {host}: the UI (and live inference) is reachable from the network; "
                      f"it answers requests addressed to {', '.join(guards.allowed_hosts)} (add --allow-host NAME)")
    shown = f"[{host}]" if ":" in host else host
    console.print(f"[bold green]interplab dashboards at http://{shown}:{port}[/]  (Ctrl-C to stop)")
    uvicorn.run(app, host=host, port=port, log_level="warning")
