"""`interplab explain` (explain + score SAE latents; `interplab.pipelines.explain.explain_run`) and
`interplab explain-server`. Options come from the pipeline's and the analysis' config dataclasses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from interplab.autointerp import (
    AutointerpConfig,
    ClientConfig,
    ExampleConfig,
    ExplainConfig,
    ScoreConfig,
    TokenStatsConfig,
)
from interplab.autointerp.pipeline import SCORES
from interplab.commands.options import command, dataclass_options, option, values_for
from interplab.pipelines.cache import TextSource
from interplab.pipelines.explain import ExplainModels, ExplainSource

# Fields several classes share get one option (seed) or a name of their own.
_SOURCE_SKIP = ("features",)
_EXAMPLE_RENAME = {"batch_size": "windows_per_batch"}
_SHOWN_RENAME = {"n_top": "shown_top", "n_quantile": "shown_quantile"}
_SCORE_RENAME = {"batch_size": "judge_batch_size", "max_tokens": "judge_max_tokens"}


def register(app: typer.Typer) -> None:
    params = [
        option("out", Path("runs/explain"), "Run folder: explanations.jsonl, scores.csv/json, index.json.", Path,
               "Run"),
        *dataclass_options(ExplainSource, "Latents", exclude=_SOURCE_SKIP),
        option("features", None, "Comma-separated latent indices, e.g. 0,1,2 (default: --top-n).", str | None,
               "Latents"),
        *dataclass_options(TextSource, "Latents"),
        *dataclass_options(ExplainModels, "Explainer and judge"),
        *dataclass_options(ClientConfig, "Explainer and judge", exclude=("max_tokens",)),
        *dataclass_options(ExplainConfig, "Explainer and judge", rename=_SHOWN_RENAME),
        *dataclass_options(TokenStatsConfig, "Token-statistics baseline"),
        *dataclass_options(AutointerpConfig, "Scoring", exclude=("explain", "score", "token_stats", "seed")),
        *dataclass_options(ScoreConfig, "Scoring", exclude=("seed",), rename=_SCORE_RENAME),
        *dataclass_options(ExampleConfig, "Examples", exclude=("seed",), rename=_EXAMPLE_RENAME),
        option("seed", 0, "Seed of example sampling, the explain/held-out split and the judge's shuffling.", int),
        option("device", None, "cpu, cuda, ... (default: CUDA when present).", str | None),
        option("resume", False, "Continue a run in --out, skipping finished latents.", bool),
        option("overwrite", False, "Replace a previous run in --out.", bool),
    ]
    doc = ("Explain SAE latents (an LLM and the token-statistics baseline) and score the explanations "
           "(detection, fuzzing).")
    app.command("explain")(command(params, _explain, doc, "explain"))
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


def _explain(values: dict[str, Any]) -> None:
    from interplab.dashboards import masked_url
    from interplab.pipelines.explain import explain_run

    seed = values["seed"]
    cfg = values_for(AutointerpConfig, values, seed=seed,
                     explain=values_for(ExplainConfig, values, _SHOWN_RENAME),
                     score=values_for(ScoreConfig, values, _SCORE_RENAME, seed=seed),
                     token_stats=values_for(TokenStatsConfig, values))
    run = explain_run(
        values["out"], values_for(ExplainSource, values, features=_features(values["features"])),
        values_for(ExplainModels, values), cfg, texts=values_for(TextSource, values),
        example_cfg=values_for(ExampleConfig, values, _EXAMPLE_RENAME, seed=seed),
        client_cfg=values_for(ClientConfig, values), device=values["device"], resume=values["resume"],
        overwrite=values["overwrite"])
    for rec in sorted(run.records, key=lambda r: (r["feature"], r["baseline"])):
        auroc = f" (AUROC {rec['detection_auroc']})" if rec.get("detection_auroc") is not None else ""
        typer.echo(f"latent {rec['feature']:>6}  det {rec['detection']}{auroc}  fuzz {rec['fuzzing']}  "
                   f"[{rec['explainer']}] {rec['explanation']}")
    _echo_summary(run.summary)
    db = values["db"]
    typer.echo(f"wrote {run.out / 'explanations.jsonl'}"
               + (f" and {len(run.records)} explanations to {masked_url(db)}" if db else ""))


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}"


def _echo_summary(summary: dict[str, Any]) -> None:
    """Per explainer: mean ± std (min..max) of each score (balanced accuracy, AUROC) over latents, and wins
    over the baseline."""
    typer.echo(f"{summary['n_features']} latents; judge: {summary['judge']}")
    for name in str(summary["explainers"]).split(", "):
        parts = []
        for score in SCORES:
            s = {k: summary.get(f"{name} {score} {k}") for k in ("n", "mean", "std", "min", "max")}
            if not s["n"]:
                continue
            parts.append(f"{score} {_fmt(s['mean'])} ± {_fmt(s['std'])} ({_fmt(s['min'])}..{_fmt(s['max'])}, "
                         f"n={s['n']})")
            wins = summary.get(f"{name} {score} above baseline")
            if wins:
                parts[-1] += f", above baseline on {wins}"
        typer.echo(f"  {name}: " + "; ".join(parts))


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
