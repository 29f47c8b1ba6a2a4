"""`interplab train-sae` and `interplab eval-sae` over `interplab.pipelines.train`.

Every field of every registered SAE architecture's config (transcoders excepted: they train on
(MLP input, MLP output) pairs from `interplab train-transcoders`), of `TrainConfig` and of the synthetic data's
`ToyFeatureConfig` is an option, with the help and defaults written under the dataclass fields; a
field the chosen `--arch` lacks is refused rather than ignored.
Under torchrun (`torchrun --nproc_per_node N -m interplab.cli train-sae ...`) the N processes train one
SAE data-parallel; rank 0 writes the run folder.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import typer

from interplab.commands.options import (
    command,
    dataclass_options,
    option,
    pick_fields,
    union_options,
    values_for,
)
from interplab.data.synthetic import ToyFeatureConfig
from interplab.saes import SAE_CLASSES, SAEConfig, TranscoderFields
from interplab.training import TrainConfig

# Fields set by the command itself (seed is one option for SAE init, data order and synthetic data).
_SAE_SKIP = ("d_in", "seed", "metadata")
_TRAIN_SKIP = ("checkpoint_dir", "resume", "seed")
_SYNTH_SKIP = ("batch_size", "seed")
_SAE_RENAME = {"dtype": "sae_dtype"}  # TrainConfig's compute dtype keeps --dtype
_SYNTH_RENAME = {"d": "d_in"}  # the synthetic width is the SAE's d_in
_TRAIN_ALIASES = {"total_steps": ["--steps"], "lr_warmup_steps": ["--lr-warmup"],
                  "sparsity_warmup_steps": ["--sparsity-warmup"]}


def _sae_classes() -> dict[str, type]:
    """The autoencoder architectures (transcoders have their own command)."""
    return {name: cls.config_class for name, cls in SAE_CLASSES.items()
            if not issubclass(cls.config_class, TranscoderFields)}


def _sae_field_names() -> list[str]:
    return sorted({f.name for cls in _sae_classes().values() for f in dataclasses.fields(cls)} - set(_SAE_SKIP))


def register(app: typer.Typer) -> None:
    params = [
        option("out", ..., "Run folder (created): config, metrics, checkpoints, sae/, figures.", Path, "Data"),
        option("store", None, "Activation store folder (from `interplab cache`).", Path | None, "Data"),
        option("synthetic", False, "Train on synthetic ground-truth features instead.", bool, "Data",
               decls=["--synthetic"]),
        *dataclass_options(ToyFeatureConfig, "Synthetic data (with --synthetic)", exclude=_SYNTH_SKIP,
                           rename=_SYNTH_RENAME),
        option("arch", "topk", f"SAE architecture: {', '.join(sorted(_sae_classes()))}.", str, "SAE"),
        *union_options(_sae_classes(), "SAE", exclude=_SAE_SKIP, rename=_SAE_RENAME, required={"d_sae": 4096}),
        *dataclass_options(TrainConfig, "Training", exclude=_TRAIN_SKIP, aliases=_TRAIN_ALIASES,
                           defaults={"checkpoint_every": 500}),
        option("seed", 0, "Seed of the SAE init, the data order and the synthetic data.", int, "Run"),
        option("eval_batches", 8, "Batches for the final evaluation.", int, "Run"),
        option("resume", False, "Continue the run in --out (an identical rerun continues it anyway).", bool, "Run"),
        option("overwrite", False, "Replace a different run already in --out.", bool, "Run"),
    ]
    doc = "Train a sparse autoencoder on cached activations or synthetic features, with resumable checkpoints."
    app.command("train-sae")(command(params, _train, doc, "train-sae"))
    app.command("eval-sae")(eval_sae)


def sae_config_from_options(values: dict[str, Any], d_in: int, seed: int) -> SAEConfig:
    """The chosen architecture's config from the options that were given (others keep its defaults)."""
    from interplab.saes import config_class

    cls = config_class(values["arch"])
    given = pick_fields(values, cls, f"--arch {values['arch']}", _sae_field_names(), _SAE_RENAME)
    return cls(d_in=d_in, seed=seed, **given)


def _train(values: dict[str, Any]) -> None:
    from interplab.common import InterplabError
    from interplab.pipelines.train import StoreData, SyntheticData, data_dim, train_sae_run

    store, seed = values["store"], values["seed"]
    if (store is None) == (not values["synthetic"]):
        raise InterplabError("give exactly one data source: --store <activation store folder> or --synthetic")
    if store is not None:
        data: StoreData | SyntheticData = StoreData(store)
    else:
        features = values_for(ToyFeatureConfig, values, _SYNTH_RENAME, batch_size=values["batch_size"], seed=seed)
        features.check()
        data = SyntheticData(features)
    sae_cfg = sae_config_from_options(values, data_dim(data), seed)
    train_cfg = values_for(TrainConfig, values, seed=seed)
    run = train_sae_run(values["out"], data, sae_cfg, train_cfg, resume=values["resume"],
                        overwrite=values["overwrite"], n_eval_batches=values["eval_batches"])
    title = "reused the finished run" if run.reused else f"trained {sae_cfg.architecture} SAE"
    _print_summary(f"{title} -> {run.out / 'sae'}", run.evaluation)


def _print_summary(title: str, result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in _flat(result).items():
        table.add_row(k, f"{v:.4g}" if isinstance(v, float) else str(v))
    Console().print(table)


def _flat(result: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Scalars of a metrics dict, nested blocks as "block.key" (per-item lists such as letters left out)."""
    out: dict[str, Any] = {}
    for k, v in result.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        elif not isinstance(v, list):
            out[prefix + k] = v
    return out


def eval_sae(
    sae_path: Path = typer.Argument(..., help="SAE folder (cfg.json + sae_weights.safetensors) or weights file."),
    store: Path | None = typer.Option(None, help="Activation store to measure FVU / L0 / dead fraction on."),
    synthetic: bool = typer.Option(False, "--synthetic", help="Held-out synthetic data the SAE was trained on (+MMCS)."),
    model: str | None = typer.Option(None, help="Model (hub id or folder) for CE / KL recovered by splicing."),
    hook: str | None = typer.Option(None, help="Hook to splice at (default: the SAE's metadata hook_name)."),
    n_texts: int = typer.Option(32, help="Demo-corpus texts for CE / KL recovered."),
    max_length: int = typer.Option(128, help="Tokens per text for CE / KL recovered."),
    batches: int = typer.Option(8, help="Batches for reconstruction / sparsity metrics."),
    batch_size: int = typer.Option(4096, help="Activations per batch."),
    out: Path | None = typer.Option(None, help="Write the metrics JSON here (default: <sae folder>/eval.json)."),
    device: str | None = typer.Option(None, help="cpu, cuda, ... (default: CUDA when present)."),
    absorption: bool = typer.Option(False, "--absorption", help="First-letter absorption and k-sparse probing "
                                    "F1 on --model (Chanin et al. 2024, SAEBench)."),
    absorption_words: int = typer.Option(1500, help="Vocabulary words of the first-letter task."),
) -> None:
    """Evaluate a saved SAE: FVU, MSE, L0, dead/dense fractions, MMCS (synthetic), CE/KL recovered (--model),
    first-letter absorption (--absorption)."""
    from interplab.pipelines.train import evaluate_sae_run

    result, target = evaluate_sae_run(sae_path, store, synthetic, model, hook, n_texts, max_length, batches,
                                      batch_size, out, device, absorption, absorption_words)
    _print_summary(f"eval-sae {sae_path} (written to {target})", result)
