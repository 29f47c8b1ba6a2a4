"""`interplab cache`: run a model over text and store one hook's activations on disk (resumable)."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    app.command("cache")(cache)


def cache(
    model: str = typer.Option(..., help="HF hub id or local model folder."),
    hook: str = typer.Option(..., help="Hook point, e.g. blocks.3.resid_post (see `interplab hooks`)."),
    out: Path = typer.Option(..., help="Store folder (created): shards + manifest.json."),
    data: str | None = typer.Option(
        None,
        help=".txt/.jsonl/.parquet file, folder, saved HF dataset or hub dataset (default: demo corpus).",
    ),
    text_field: str = typer.Option("text", help="Field/column holding the text in .jsonl/.parquet/datasets."),
    split: str = typer.Option("train", help="Dataset split for HF datasets."),
    context_size: int = typer.Option(128, help="Tokens per sequence window."),
    batch_size: int = typer.Option(32, help="Sequences per forward pass (keep it when resuming)."),
    shard_tokens: int = typer.Option(65_536, help="Token positions per shard."),
    max_tokens: int | None = typer.Option(None, help="Stop after this many token positions."),
    write_threads: int | None = typer.Option(
        None, help="Shard-writing threads (default: 2 on CUDA, 1 on CPU)."
    ),
    dtype: str = typer.Option("float32", help="Stored activation dtype: float32, bfloat16 or float16."),
    model_dtype: str | None = typer.Option(None, help="Dtype to run the model in (default float32)."),
    device: str | None = typer.Option(None, help="cpu, cuda, ... (default: CUDA when present)."),
    resume: bool = typer.Option(False, help="Continue an interrupted run in --out (or repair bad shards)."),
    overwrite: bool = typer.Option(False, help="Replace a store already in --out."),
    exclude_sinks: bool | None = typer.Option(
        None, "--exclude-sinks/--keep-sinks",
        help="Leave out attention sinks (first position, special tokens, 10x-median norms) from training, "
        "evaluation and dashboards (default: on for causal LMs, off for encoders).",
    ),
    trust_remote_code: bool = typer.Option(
        False, help="Run model code from the hub repo (only for repos you trust)."
    ),
) -> None:
    """Cache activations of one hook over a text corpus into a resumable on-disk store."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from interplab.activations.cache import CacheConfig, cache_activations
    from interplab.activations.store import StoreWriter
    from interplab.data.text import load_texts
    from interplab.models.loading import load_model

    cfg = CacheConfig(
        context_size=context_size,
        batch_size=batch_size,
        shard_tokens=shard_tokens,
        dtype=dtype,
        max_tokens=max_tokens,
        write_threads=write_threads,
        overwrite=overwrite,
        resume=resume,
        exclude_sinks=exclude_sinks,
    )
    StoreWriter.preflight(out, overwrite=overwrite, resume=resume)  # fail before loading the model
    texts = load_texts(data, text_field=text_field, split=split)
    lm = load_model(model, device=device, dtype=model_dtype, trust_remote_code=trust_remote_code)
    console = Console(stderr=True)
    columns = [
        TextColumn("caching {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(hook, total=None)
        store = cache_activations(
            lm,
            texts,
            hook,
            out,
            cfg,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
            dataset=data or "interplab demo corpus",
        )
    norm_sum, n = 0.0, 0
    for shard in store.iter_shards():
        norms = shard.acts[shard.keep].float().norm(dim=-1)
        norm_sum, n = norm_sum + float(norms.sum()), n + len(norms)
    h = store.manifest.header
    typer.echo(
        f"cached {store.n_tokens} tokens ({h.n_seq} sequences x {h.context_size}) of {h.model} {h.hook} "
        f"in {store.n_shards} shards; d={h.d}, dtype={h.dtype}, mean norm={norm_sum / max(n, 1):.4g} -> {out}"
    )
    typer.echo(f"excluded {store.n_excluded} tokens: {store.exclusion.describe()}")
