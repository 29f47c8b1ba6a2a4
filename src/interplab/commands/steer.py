"""`interplab steer build|generate|sweep|compare`: steering vectors from contrast pairs or SAE latents."""

from __future__ import annotations

from pathlib import Path

import typer

steer_app = typer.Typer(
    help="Steering vectors: build (contrast pairs / SAE latent), generate, sweep coefficients, compare. "
    "Coefficients are in units of the hook's median activation norm (coefficient 1 adds a vector as long as "
    "a typical activation there), so they mean the same on every model and hook.",
    no_args_is_help=True,
)

COEF_HELP = "in units of the hook's median activation norm; 0.25-0.5 steer SmolLM2 fluently, ~1 breaks the text"
# steering.units.DEFAULT_COEF / DEFAULT_SWEEP, repeated so `--help` needs no torch (a test keeps them equal)
DEFAULT_COEF = 0.25
DEFAULT_SWEEP = (-1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0)

DEFAULT_PROMPTS = [
    "I think that",
    "Today I went to the",
    "The best thing about",
    "My favourite food is",
    "Yesterday the weather was",
    "In my opinion, the movie",
]


def register(app: typer.Typer) -> None:
    app.add_typer(steer_app, name="steer")


def _floats(text: str, option: str) -> list[float]:
    from interplab.common import InterplabError

    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise InterplabError(f"{option} takes comma-separated numbers like -4,0,4, got {text!r}") from None
    if not values:
        raise InterplabError(f"{option} is empty; pass comma-separated numbers like -4,0,4")
    return values


def _positions(text: str | None) -> list[int] | None:
    return None if text is None else [int(v) for v in _floats(text, "--positions")]


def _prompts(path: Path | None, inline: list[str] | None) -> list[str]:
    from interplab.common import InterplabError

    if inline:
        return list(inline)
    if path is None:
        return list(DEFAULT_PROMPTS)
    if not path.is_file():
        raise InterplabError(f"no prompts file at {path}; pass a .txt file with one prompt per line")
    prompts = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not prompts:
        raise InterplabError(f"{path} holds no prompts; write one prompt per line")
    return prompts


@steer_app.command("build")
def build(
    out: Path = typer.Option(..., help="Vector path stem: writes <out>.safetensors + <out>.json."),
    model: str | None = typer.Option(None, help="HF hub id or local model folder (with --pairs)."),
    pairs: Path | None = typer.Option(None, help="JSONL with 'positive', 'negative' (and 'prompt') fields."),
    hook: str | None = typer.Option(
        None, help="Hook, e.g. blocks.3.resid_post (default for --sae: its hook)."
    ),
    pooling: str = typer.Option("last", help="last, mean, or answer (CAA: tokens after 'prompt')."),
    sae: Path | None = typer.Option(None, help="SAE folder: build from a latent's decoder row instead."),
    latent: int | None = typer.Option(None, help="Latent index of --sae."),
    language: str | None = typer.Option(None, help="Record the language of the pairs (for compare)."),
    device: str | None = typer.Option(None, help="cpu, cuda, ... (default: CUDA when present)."),
    overwrite: bool = typer.Option(False, help="Replace an existing vector at --out."),
) -> None:
    """Build a steering vector from contrast pairs (mean difference / CAA) or from an SAE latent."""
    from interplab.common import InterplabError
    from interplab.steering import vectors as V

    if (pairs is None) == (sae is None):
        raise InterplabError("pass either --pairs (with --model and --hook) or --sae with --latent")
    if not overwrite and Path(str(out) + ".safetensors").exists():
        raise InterplabError(f"{out}.safetensors already exists; pass --overwrite or choose another --out")
    if sae is not None:
        from interplab.saes.io import load_sae

        if latent is None:
            raise InterplabError("--sae needs --latent (the latent index whose decoder row to use)")
        vec = V.from_sae_latent(load_sae(sae, device="cpu"), latent, hook)
        vec.metadata["sae"] = str(sae)
    else:
        from interplab.models.loading import load_model

        if model is None or hook is None:
            raise InterplabError("--pairs needs --model and --hook (e.g. --hook blocks.3.resid_post)")
        contrast = V.read_pairs(pairs)  # type: ignore[arg-type]
        vec = V.from_contrast_pairs(
            load_model(model, device=device), contrast, hook, V.ContrastConfig(pooling=pooling)
        )
        vec.metadata["pairs"] = str(pairs)
    if language:
        vec.metadata["language"] = language
    path = V.save_vector(vec, out, overwrite=overwrite)
    unit = "" if vec.hook_norm is None else f", the hook's median activation norm {vec.hook_norm:.4g} = coefficient 1"
    typer.echo(f"wrote {path} (hook {vec.hook}, d={vec.d}, norm={vec.norm:.4g}{unit})")


@steer_app.command("generate")
def generate_cmd(
    model: str = typer.Option(..., help="HF hub id or local causal-LM folder."),
    vector: Path = typer.Option(..., help="Vector written by `interplab steer build`."),
    coef: float = typer.Option(DEFAULT_COEF, help=f"Steering strength, {COEF_HELP}."),
    prompt: list[str] = typer.Option(None, help="Prompt (repeat for several; default: a few built-in)."),
    positions: str | None = typer.Option(
        None, help="Absolute token positions to steer, e.g. 0,-1 (default all)."
    ),
    max_new_tokens: int = typer.Option(32, help="Tokens generated per prompt."),
    device: str | None = typer.Option(None, help="cpu, cuda, ..."),
) -> None:
    """Generate with and without the vector, side by side."""
    from interplab.models.loading import load_model
    from interplab.steering.apply import GenerationSettings, generate_steered
    from interplab.steering.vectors import load_vector

    vec = load_vector(vector)
    lm = load_model(model, device=device)
    prompts = _prompts(None, prompt)
    settings = GenerationSettings(max_new_tokens=max_new_tokens)
    plain = generate_steered(lm, prompts, None, settings=settings)
    steered = generate_steered(lm, prompts, vec, coef, _positions(positions), settings)
    for p, a, b in zip(prompts, plain, steered, strict=True):
        typer.echo(f"{p!r}\n  coef 0:      {a!r}\n  coef {coef:g}: {b!r}")


def _target(lm, keywords: str | None, probe_vector: Path | None, probe_pairs: Path | None, hook: str):
    """The sweep's target behaviour from whichever of the three options was given."""
    from interplab.steering.sweep import KeywordTarget, ProbeTarget, probe_from_pairs
    from interplab.steering.vectors import load_vector, read_pairs

    if keywords is not None:
        return KeywordTarget([k.strip() for k in keywords.split(",") if k.strip()])
    if probe_vector is not None:
        probe = load_vector(probe_vector)
        return ProbeTarget(probe.hook, direction_D=probe.vector_D)
    assert probe_pairs is not None
    return ProbeTarget(hook, probe=probe_from_pairs(lm, read_pairs(probe_pairs), hook))


@steer_app.command("sweep")
def sweep_cmd(
    model: str = typer.Option(..., help="HF hub id or local causal-LM folder."),
    vector: Path = typer.Option(..., help="Vector written by `interplab steer build`."),
    out: Path = typer.Option(Path("runs/steer"), help="Run folder (created)."),
    coefs: str = typer.Option(
        ",".join(f"{c:g}" for c in DEFAULT_SWEEP),
        help=f"Comma-separated coefficients, {COEF_HELP} (write --coefs=-0.5,0,0.5).",
    ),
    prompts: Path | None = typer.Option(None, help=".txt file, one prompt per line (default: built-in)."),
    keywords: str | None = typer.Option(
        None, help="Target = fraction of completions with any of these words."
    ),
    probe_vector: Path | None = typer.Option(None, help="Target = projection on this vector's direction."),
    probe_pairs: Path | None = typer.Option(
        None, help="Target = P(positive) of a logistic probe trained on these pairs."
    ),
    probe_hook: str | None = typer.Option(
        None, help="Hook the --probe-pairs probe reads (default: the vector's)."
    ),
    positions: str | None = typer.Option(None, help="Absolute token positions to steer (default all)."),
    max_new_tokens: int = typer.Option(24, help="Tokens generated per prompt."),
    device: str | None = typer.Option(None, help="cpu, cuda, ..."),
    overwrite: bool = typer.Option(False, help="Replace a finished run in --out."),
) -> None:
    """Sweep coefficients: target behaviour vs perplexity under the unsteered model."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from interplab.common import InterplabError
    from interplab.models.loading import load_model
    from interplab.reports.writer import refuse_to_replace_report
    from interplab.steering.apply import GenerationSettings
    from interplab.steering.sweep import SweepConfig, sweep, write_sweep
    from interplab.steering.units import calibrate
    from interplab.steering.vectors import load_vector

    if sum(x is not None for x in (keywords, probe_vector, probe_pairs)) != 1:
        raise InterplabError(
            "pass one target: --keywords word1,word2, --probe-vector <vector> or --probe-pairs <jsonl>"
        )
    refuse_to_replace_report(out, overwrite)
    vec = load_vector(vector)
    cfg = SweepConfig(
        _floats(coefs, "--coefs"), _positions(positions), GenerationSettings(max_new_tokens=max_new_tokens)
    )
    texts = _prompts(prompts, None)
    lm = load_model(model, device=device)
    vec = calibrate(vec, lm)  # the coefficients' unit, recorded in the run's config
    target = _target(lm, keywords, probe_vector, probe_pairs, probe_hook or vec.hook)
    columns = [TextColumn("sweep {task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("coefficients", total=len(cfg.coefs))
        rows, outputs = sweep(
            lm, vec, texts, target, cfg, progress=lambda i, n: bar.update(task, completed=i)
        )
    config = {
        "model": model,
        "vector": str(vector),
        "hook": vec.hook,
        "coefs": cfg.coefs,
        "coef_unit": "the hook's median activation norm",
        "hook_norm": vec.hook_norm,
        "target": target.name,
        "keywords": keywords,
        "probe_vector": str(probe_vector) if probe_vector else None,
        "probe_pairs": str(probe_pairs) if probe_pairs else None,
        "positions": cfg.positions,
        "max_new_tokens": max_new_tokens,
        "prompts": texts,
    }
    index = write_sweep(out, rows, outputs, texts, target.name, config, overwrite=overwrite)
    for r in rows:
        typer.echo(f"coef {r.coef:>7g}  {target.name} {r.target:.4g}  perplexity {r.perplexity:.4g}")
    typer.echo(f"wrote {index}")


@steer_app.command("compare")
def compare(
    vectors: list[Path] = typer.Argument(..., help="Vectors to compare (e.g. one per language)."),
    out: Path | None = typer.Option(None, help="Report folder for the cosine heatmap (optional)."),
    overwrite: bool = typer.Option(False, help="Replace a finished report in --out."),
) -> None:
    """Cosine similarity matrix between vectors (e.g. the same concept in English, French, German)."""
    from interplab.steering.vectors import cosine_comparison, load_vector

    loaded = {}
    for path in vectors:
        vec = load_vector(path)
        name = Path(path).name.removesuffix(".safetensors").removesuffix(".json")
        loaded[f"{name} ({vec.metadata['language']})" if "language" in vec.metadata else name] = vec
    names, matrix = cosine_comparison(loaded)
    width = max(len(n) for n in names)
    for i, name in enumerate(names):
        typer.echo(f"{name:<{width}}  " + "  ".join(f"{float(v):+.3f}" for v in matrix[i]))
    if out is not None:
        from interplab.steering.compare import write_cosine_report

        typer.echo(f"wrote {write_cosine_report(out, names, matrix, [str(v) for v in vectors], overwrite)}")
