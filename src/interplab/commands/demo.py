"""`interplab demo`: the whole pipeline offline on MiniLM (`interplab.pipelines.demo`), then the web UI."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def demo(
    out: Path = typer.Option(Path("runs/demo"), help="Folder for everything the demo makes."),
    steps: int = typer.Option(600, help="SAE training steps."),
    d_sae: int = typer.Option(1536, help="SAE latents (4x MiniLM's d=384)."),
    k: int = typer.Option(16, help="TopK: active latents per token."),
    serve: bool = typer.Option(True, help="Serve the dashboards at the end (Ctrl-C to stop)."),
    port: int = typer.Option(8000, help="Port for the web UI (bound to 127.0.0.1)."),
    device: str | None = typer.Option(None, help="cpu, cuda, ... (default: CUDA when present)."),
) -> None:
    """Run the offline demo: MiniLM -> activations -> TopK SAE -> evaluation -> dashboards -> web UI."""
    from rich.console import Console

    from interplab.commands.serve import start_server
    from interplab.dashboards import masked_url
    from interplab.pipelines.demo import DEMO_MODEL, run_demo

    console = Console(stderr=True)
    result = run_demo(out, steps, d_sae, k, device)
    console.print(f"[green]SAE saved to {result.run.out / 'sae'} (SAELens layout); metrics in "
                  f"{result.run.out / 'eval.json'}")
    if serve:
        start_server(db=str(result.db), sae=result.run.out / "sae", model=DEMO_MODEL, port=port,
                     reports=out.parent, device=device)
    else:
        console.print(f"[green]done. Browse with: interplab serve --db {masked_url(result.db)}")
