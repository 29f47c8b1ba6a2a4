"""`interplab dashboards`: build feature dashboards of an SAE (or of a hook's neurons) into a database."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    app.command("dashboards")(dashboards)


def dashboards(
    store: Path = typer.Option(..., help="Activation store folder (from `interplab cache`)."),
    db: str = typer.Option(..., help="Database: a SQLite file path, or a SQLAlchemy URL (postgresql+psycopg://...)."),
    sae: Path | None = typer.Option(None, help="SAE folder (cfg.json + sae_weights.safetensors) or weights file."),
    neurons: bool = typer.Option(False, "--neurons", help="Dashboards of the store's raw dimensions instead of an SAE."),
    model: str | None = typer.Option(None, help="Model for the tokenizer and logit effects (default: the store's)."),
    name: str | None = typer.Option(None, help="Name in the database (default: the SAE folder's name)."),
    top_k: int = typer.Option(20, help="Top-activating contexts per latent."),
    n_buckets: int = typer.Option(5, help="Quantile intervals between 0 and each latent's max."),
    samples_per_bucket: int = typer.Option(5, help="Contexts sampled per quantile interval."),
    n_bins: int = typer.Option(32, help="Activation histogram bins."),
    window: int = typer.Option(16, help="Tokens kept either side of a context's peak (-1: the whole row)."),
    n_logits: int = typer.Option(10, help="Promoted / suppressed tokens per latent (models with an unembedding)."),
    n_neighbours: int = typer.Option(10, help="Nearest latents by decoder cosine."),
    max_tokens: int | None = typer.Option(None, help="Scan at most this many token positions of the store."),
    batch_tokens: int = typer.Option(4096, help="Token positions encoded at once (keep it when resuming)."),
    write_batch: int = typer.Option(256, help="Latents per database transaction (and resume step)."),
    seed: int = typer.Option(0, help="Seed of the quantile sampling."),
    device: str | None = typer.Option(None, help="cpu, cuda, ... (default: CUDA when present)."),
    resume: bool = typer.Option(False, help="Continue an interrupted build of the same name (a new one just builds)."),
    overwrite: bool = typer.Option(False, help="Rebuild dashboards already in the database under this name."),
) -> None:
    """Build per-latent dashboards: top contexts, quantile samples, histograms, logit effects, neighbours."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

    from interplab.common import InterplabError
    from interplab.dashboards import DashboardConfig, build_dashboards

    if (sae is None) == (not neurons):
        raise InterplabError("give exactly one of --sae <SAE folder> or --neurons")
    cfg = DashboardConfig(top_k=top_k, n_buckets=n_buckets, samples_per_bucket=samples_per_bucket, n_bins=n_bins,
                          window=None if window < 0 else window, n_logits=n_logits, n_neighbours=n_neighbours,
                          max_tokens=max_tokens, seed=seed, batch_tokens=batch_tokens, write_batch=write_batch)
    cfg.check()
    columns = [TextColumn("dashboards {task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        result = build_dashboards(sae, store, db, cfg, name=name, model=model, resume=resume, overwrite=overwrite,
                                  device=device, progress=progress)
    if result.written == 0:
        typer.echo(f"dashboards of {result.n_latents} latents already complete in {db} (sae id {result.sae_id})")
    else:
        typer.echo(f"wrote dashboards of {result.written} latents ({result.n_latents} in all) over {result.n_tokens} "
                   f"tokens in {result.seconds:.1f}s -> {db} (sae id {result.sae_id})")
