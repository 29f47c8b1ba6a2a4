"""`interplab explain` (explain + score SAE latents with an LLM) and `interplab explain-server`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer


def register(app: typer.Typer) -> None:
    app.command("explain")(explain)
    app.command("explain-server")(explain_server)


def _features(text: str | None) -> list[int] | None:
    from interplab.common import InterplabError

    if text is None:
        return None
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise InterplabError(f"--features takes comma-separated integers like 0,1,2, got {text!r}") from None
    if not values:
        raise InterplabError("--features is empty; pass comma-separated integers like 0,1,2")
    return values


def _client(
    endpoint: str | None, endpoint_model: str, explainer: str | None, device: str | None, max_tokens: int
):
    from interplab.autointerp.clients import ClientConfig, LocalHFClient, OpenAICompatibleClient
    from interplab.common import InterplabError

    if (endpoint is None) == (explainer is None):
        raise InterplabError(
            "pass one explainer: --endpoint http://host:port (OpenAI-compatible) "
            "or --explainer <hf id or folder>"
        )
    cfg = ClientConfig(max_tokens=max_tokens)
    if endpoint is not None:
        remote = OpenAICompatibleClient(endpoint, model=endpoint_model, cfg=cfg)
        remote.check()  # before loading models: an unreachable endpoint fails in a second
        return remote
    return LocalHFClient(explainer, cfg=cfg, device=device)


def _db_sae_id(db: Any, sae_id: int | None, sae: Path | None) -> int:
    from interplab.common import InterplabError

    records = db.list_saes()
    if sae_id is not None:
        if db.get_sae(sae_id) is None:
            raise InterplabError(
                f"no SAE with id {sae_id} in the database; ids there: {[r.id for r in records]}"
            )
        return sae_id
    matches = [r for r in records if sae is not None and Path(r.path).resolve() == sae.resolve()]
    if len(matches) == 1 or len(records) == 1:
        return int((matches or records)[0].id)
    names = ", ".join(f"{r.id}={r.name}" for r in records) or "none"
    raise InterplabError(
        f"pick the SAE with --sae-id (the database holds: {names}); build dashboards first if none"
    )


def _examples(model, sae, hook, data, features, top_n, context, device, db, sae_id):
    """Examples computed from model + SAE + data when given, else read from the dashboards DB."""
    from interplab.autointerp.examples import ExampleConfig, collect_examples
    from interplab.common import InterplabError

    if model is not None and sae is not None:
        from interplab.data.text import load_texts
        from interplab.models.loading import load_model
        from interplab.saes.io import load_sae

        loaded_sae = load_sae(sae, device=device)
        hook = hook or loaded_sae.cfg.metadata.get("hook_name")
        if not hook:
            raise InterplabError("the SAE's metadata names no hook; pass --hook (e.g. blocks.3.resid_post)")
        lm = load_model(model, device=device)
        texts = load_texts(data)
        return collect_examples(
            lm, loaded_sae, hook, texts, features, ExampleConfig(context=context), top_n=top_n
        )
    if db is None:
        raise InterplabError(
            "pass --model and --sae (examples computed from --data), or --db with dashboards"
        )
    from interplab.autointerp.pipeline import examples_from_db

    if features is None:
        features = [f.idx for f in db.list_features(sae_id, order="frequency", limit=top_n or 10)]
    return examples_from_db(db, sae_id, features)


def explain(
    out: Path = typer.Option(Path("runs/explain"), help="Run folder: explanations.jsonl, scores.csv/json."),
    model: str | None = typer.Option(None, help="Model the SAE reads (to compute examples from --data)."),
    sae: Path | None = typer.Option(None, help="SAE folder (cfg.json + sae_weights.safetensors)."),
    hook: str | None = typer.Option(None, help="Hook of the SAE (default: from its metadata)."),
    data: str | None = typer.Option(None, help="Texts for examples (.txt/.jsonl/...; default: demo corpus)."),
    db: str | None = typer.Option(None, help="Dashboards database (path or SQLAlchemy URL): read/write."),
    sae_id: int | None = typer.Option(None, help="SAE id in --db (default: the only one / the --sae path)."),
    features: str | None = typer.Option(None, help="Comma-separated latent indices, e.g. 0,1,2."),
    top_n: int = typer.Option(10, help="Without --features: the N most frequently firing latents."),
    endpoint: str | None = typer.Option(
        None, help="OpenAI-compatible server URL, e.g. http://127.0.0.1:8000."
    ),
    endpoint_model: str = typer.Option("default", help="Model name sent to --endpoint."),
    explainer: str | None = typer.Option(None, help="Local explainer: HF hub id or model folder."),
    context: int = typer.Option(24, help="Tokens per example window."),
    max_tokens: int = typer.Option(128, help="Explainer reply length cap."),
    device: str | None = typer.Option(None, help="cpu, cuda, ..."),
    resume: bool = typer.Option(False, help="Continue a run in --out, skipping finished latents."),
    overwrite: bool = typer.Option(False, help="Replace a previous run in --out."),
) -> None:
    """Explain SAE latents with an LLM and score the explanations (detection, fuzzing)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from interplab.autointerp.pipeline import check_run_folder, run_autointerp
    from interplab.dashboards import masked_url

    check_run_folder(out, overwrite, resume)  # fail before loading anything, delete nothing yet
    client = _client(endpoint, endpoint_model, explainer, device, max_tokens)
    dash = None
    if db is not None:
        from interplab.dashboards.db import DashboardDB

        dash = DashboardDB(db, create=False)
        sae_id = _db_sae_id(dash, sae_id, sae)
    examples = _examples(model, sae, hook, data, _features(features), top_n, context, device, dash, sae_id)

    def to_db(rec: dict[str, Any]) -> None:
        if dash is not None and sae_id is not None:
            dash.write_explanation(
                sae_id, rec["feature"], rec["explanation"], rec["explainer"], rec["detection"], rec["fuzzing"]
            )

    columns = [TextColumn("explaining"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("latents", total=len(examples))
        records = run_autointerp(
            client,
            examples,
            out,
            overwrite=overwrite,
            resume=resume,
            sink=to_db,
            progress=lambda i, n: bar.update(task, completed=i, total=n),
            run_info={"model": model, "sae": str(sae) if sae else None, "db": masked_url(db) if db else None,
                      "sae_id": sae_id},
        )
    for rec in sorted(records, key=lambda r: r["feature"]):
        typer.echo(
            f"latent {rec['feature']:>6}  det {rec['detection']}  fuzz {rec['fuzzing']}  {rec['explanation']}"
        )
    typer.echo(
        f"wrote {out / 'explanations.jsonl'}"
        + (f" and {len(records)} explanations to {masked_url(db)}" if db else "")
    )


def explain_server(
    model: str = typer.Option(..., help="Local causal LM (HF hub id or folder) to serve."),
    host: str = typer.Option(
        "127.0.0.1", help="Interface to listen on (keep 127.0.0.1 unless you need LAN access)."
    ),
    port: int = typer.Option(8000, help="Port (0 picks a free one)."),
    max_tokens: int = typer.Option(128, help="Default reply length cap."),
    device: str | None = typer.Option(None, help="cpu, cuda, ..."),
) -> None:
    """Serve a local model as an OpenAI-compatible chat endpoint for `interplab explain --endpoint`."""
    from interplab.autointerp.clients import ClientConfig, LocalHFClient
    from interplab.autointerp.serve import ExplainServer

    server = ExplainServer(
        LocalHFClient(model, ClientConfig(max_tokens=max_tokens), device=device), host, port
    )
    typer.echo(f"serving {model} at {server.url}/v1/chat/completions (Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
