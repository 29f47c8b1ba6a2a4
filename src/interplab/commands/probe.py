"""`interplab probe`: residual-stream vs SAE-feature probes and their generalization across datasets."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    app.command("probe")(probe)


def _int_list(text: str, option: str) -> list[int]:
    from interplab.common import InterplabError

    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise InterplabError(f"{option} takes comma-separated integers like 0,1,2, got {text!r}") from None
    if not values:
        raise InterplabError(f"{option} is empty; pass comma-separated integers like 0,1,2")
    return values


def probe(
    model: str = typer.Option(..., help="HF hub id or local model folder."),
    layers: str = typer.Option("0", help="Comma-separated block indices to probe, e.g. 0,1,2."),
    hook: str = typer.Option(
        "resid_post", help="Site within each block: resid_post, resid_pre, mlp_out, attn_out."
    ),
    datasets: str = typer.Option(
        "equations,celebrity",
        help="Comma-separated: equations, celebrity, or paths to SQuAD-v2/BoolQ/IDK files.",
    ),
    sae: Path | None = typer.Option(
        None, help="SAE folder (cfg.json + sae_weights.safetensors) at the probe hook."
    ),
    out: Path = typer.Option(
        Path("runs/probe"), help="Report folder (created): config, tables, figures, index.json."
    ),
    n: int = typer.Option(200, help="Examples per dataset (balanced)."),
    test_frac: float = typer.Option(0.3, help="Held-out fraction of each dataset."),
    probe_layer: int | None = typer.Option(
        None, help="Layer for matrices and directions (default: SAE hook or last)."
    ),
    pooling: str = typer.Option("last", help="Token pooling: last, mean or marker."),
    c: float = typer.Option(
        1.0, "--C", help="Inverse L2 strength of the logistic probes (scikit-learn's C)."
    ),
    sae_k: int = typer.Option(5, help="Latents of the SAE-feature probe in the generalization matrix."),
    batch_size: int = typer.Option(16, help="Prompts per forward pass."),
    seed: int = typer.Option(0, help="Seed for datasets and splits."),
    device: str | None = typer.Option(None, help="cpu, cuda, ... (default: CUDA when present)."),
    overwrite: bool = typer.Option(False, help="Replace an existing report in --out."),
    trust_remote_code: bool = typer.Option(
        False, help="Run model code from the hub repo (only for repos you trust)."
    ),
) -> None:
    """Train probes on answerability datasets and write a report folder the web UI shows."""
    from interplab.common import InterplabError
    from interplab.probes.study import ProbeStudyConfig

    if n < 4 or not 0 < test_frac < 1:
        raise InterplabError("--n must be at least 4 and --test-frac between 0 and 1")
    cfg = ProbeStudyConfig(
        layers=_int_list(layers, "--layers"),
        site=hook,
        datasets=[d.strip() for d in datasets.split(",") if d.strip()],
        n_per_dataset=n,
        test_frac=test_frac,
        seed=seed,
        C=c,
        pooling=pooling,
        batch_size=batch_size,
        probe_layer=probe_layer,
        sae_k=sae_k,
    )
    _run(cfg, model, sae, out, device, overwrite, trust_remote_code)


def _run(
    cfg, model: str, sae: Path | None, out: Path, device: str | None, overwrite: bool, trust: bool
) -> None:
    """Load the SAE and model, run the study under a status line, print where the report is."""
    from rich.console import Console

    from interplab.models.loading import load_model
    from interplab.probes.study import run_probe_study
    from interplab.reports.writer import refuse_to_replace_report

    refuse_to_replace_report(out, overwrite)  # before loading anything
    console = Console(stderr=True)
    loaded_sae = None
    if sae is not None:
        from interplab.saes.io import load_sae

        loaded_sae = load_sae(sae, device=device)
    lm = load_model(model, device=device, trust_remote_code=trust)
    with console.status("probe study") as status:
        index = run_probe_study(
            lm,
            cfg,
            out,
            sae=loaded_sae,
            overwrite=overwrite,
            on_step=lambda msg: status.update(f"probe: {msg}"),
            sae_source=str(sae) if sae is not None else None,
        )
    console.print(f"wrote {index}")
