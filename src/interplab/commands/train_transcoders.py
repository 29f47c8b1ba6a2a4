"""`interplab train-transcoders`: one transcoder per MLP layer, trained together from streamed forward passes.

Options come from the transcoder architectures' configs, `TrainConfig`, `StreamConfig` and `TextSource`;
the job is `interplab.pipelines.transcoders.train_transcoders_run`. The last `--eval-texts` documents
are held out for the evaluation (per-layer FVU / L0, CE / KL recovered with every MLP replaced).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from interplab.activations.stream import StreamConfig
from interplab.commands.options import (
    command,
    dataclass_options,
    option,
    pick_fields,
    union_options,
    values_for,
)
from interplab.common import InterplabError
from interplab.pipelines.cache import TextSource
from interplab.saes import SAE_CLASSES, SAEConfig, TranscoderFields
from interplab.training import TrainConfig

_TC_SKIP = ("d_in", "seed", "metadata", "apply_b_dec_to_input")
_TC_RENAME = {"dtype": "sae_dtype"}
_TRAIN_SKIP = ("checkpoint_dir", "resume", "seed", "batch_size", "device")  # the stream's batch_size counts
_STREAM_SKIP = ("seed",)
_TRAIN_ALIASES = {"total_steps": ["--steps"], "lr_warmup_steps": ["--lr-warmup"]}


def transcoder_classes() -> dict[str, type]:
    """Architecture name -> config class, for the transcoders only."""
    return {name: cls.config_class for name, cls in SAE_CLASSES.items()
            if issubclass(cls.config_class, TranscoderFields)}


def _field_names() -> list[str]:
    import dataclasses

    return sorted({f.name for c in transcoder_classes().values() for f in dataclasses.fields(c)} - set(_TC_SKIP))


def register(app: typer.Typer) -> None:
    params = [
        option("model", ..., "HF hub id, local model folder, .gguf file or packaged name (smollm2-135m).", str,
               "Model"),
        option("out", ..., "Run folder (created): config, metrics, checkpoints, transcoders/, eval.json.", Path,
               "Model"),
        option("layers", "all", "Layers to train, e.g. 0,5,10 (all: every layer; a graph needs all).", str, "Model"),
        option("device", None, "cpu, cuda, ... (default: CUDA when present).", str | None, "Model"),
        *dataclass_options(TextSource, "Data"),
        option("eval_texts", 16, "Documents held out at the end of the data for the evaluation.", int, "Data"),
        option("arch", "topk_skip_transcoder", f"Architecture: {', '.join(sorted(transcoder_classes()))}.", str,
               "Transcoder"),
        *union_options(transcoder_classes(), "Transcoder", exclude=_TC_SKIP, rename=_TC_RENAME,
                       required={"d_sae": 4096}),
        *dataclass_options(TrainConfig, "Training", exclude=_TRAIN_SKIP, aliases=_TRAIN_ALIASES,
                           defaults={"lr": 2e-3, "checkpoint_every": 200}),
        *dataclass_options(StreamConfig, "Stream", exclude=_STREAM_SKIP),
        option("seed", 0, "Seed of the transcoders' init (plus the layer), the data order and the stream.", int,
               "Run"),
        option("resume", False, "Continue the run in --out (an identical rerun continues it anyway).", bool, "Run"),
        option("overwrite", False, "Replace a different run already in --out.", bool, "Run"),
    ]
    doc = ("Train a transcoder (MLP input -> MLP output) for every MLP layer at once from streamed forward "
           "passes, then evaluate FVU / L0 and CE / KL recovered with the MLPs replaced.")
    app.command("train-transcoders")(command(params, _train, doc, "train-transcoders"))


def parse_layers(text: str, n_layers: int) -> list[int] | None:
    """None for "all", else the listed layers, each checked against the model."""
    if text.strip().lower() == "all":
        return None
    try:
        layers = sorted({int(x) for x in text.replace(" ", "").split(",") if x})
    except ValueError:
        raise InterplabError(f"--layers takes 'all' or comma-separated layer numbers, not {text!r}") from None
    if not layers or layers[0] < 0 or layers[-1] >= n_layers:
        raise InterplabError(f"--layers {text}: the model has layers 0..{n_layers - 1}")
    return layers


def transcoder_config(values: dict[str, Any], d_in: int, seed: int) -> SAEConfig:
    """The chosen transcoder architecture's config from the options given."""
    classes = transcoder_classes()
    if values["arch"] not in classes:
        raise InterplabError(f"--arch {values['arch']} is not a transcoder; choose one of {', '.join(sorted(classes))}")
    cls = classes[values["arch"]]
    return cls(d_in=d_in, seed=seed, **pick_fields(values, cls, f"--arch {values['arch']}", _field_names(), _TC_RENAME))


def _train(values: dict[str, Any]) -> None:
    from interplab.models.loading import load_model
    from interplab.pipelines.transcoders import train_transcoders_run

    seed, n_eval = values["seed"], values["eval_texts"]
    lm = load_model(values["model"], device=values["device"])
    layers = parse_layers(values["layers"], lm.n_layers)
    cfg = transcoder_config(values, lm.d_model, seed)
    texts = values_for(TextSource, values).load()
    if n_eval < 1 or len(texts) <= n_eval:
        raise InterplabError(f"--eval-texts {n_eval} needs at least {n_eval + 1} documents; the data has {len(texts)}")
    train_cfg = values_for(TrainConfig, values, seed=seed, device=values["device"])
    stream_cfg = values_for(StreamConfig, values, seed=seed)
    run = train_transcoders_run(values["out"], lm, texts[:-n_eval], texts[-n_eval:], cfg, train_cfg, stream_cfg,
                                layers=layers, model_name=values["model"], resume=values["resume"],
                                overwrite=values["overwrite"])
    ev = run.evaluation
    title = "reused the finished run" if run.reused else f"trained {len(run.transcoders)} {cfg.architecture}s"
    typer.echo(f"{title} -> {run.out / 'transcoders'}")
    typer.echo(f"FVU mean {ev['fvu_mean']:.4f}, CE recovered {ev['ce_recovered']:.4f}, KL recovered "
               f"{ev['kl_recovered']:.4f} on {ev['n_tokens']} tokens ({ev['n_excluded']} left out as sinks)")
