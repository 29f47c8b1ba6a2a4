"""`interplab train-sae` and `interplab eval-sae`: train an SAE into a run folder, evaluate a saved one.

Run folder of train-sae:
    config.json      data source, SAE config, training config
    metrics.jsonl    one line per logged step (loss, mse, fvu, l0, lr, dead fraction, ...)
    checkpoints/     resumable training state (safetensors + JSON), newest two kept
    sae/             the trained SAE (cfg.json + sae_weights.safetensors, SAELens v6 layout)
    eval.json        final evaluation (FVU, L0, dead/dense fractions; MMCS on synthetic data)
    l0_fvu.png/.html L0 vs FVU over training

Under torchrun (`torchrun --nproc_per_node N -m interplab.cli train-sae ...`) the N processes train
one SAE data-parallel (see training/distributed.py); rank 0 alone writes the run folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

RUN_CONFIG = "config.json"
SYNTHETIC_EVAL_OFFSET = 1_000_000_000  # held-out synthetic batches: indices training never reaches


def register(app: typer.Typer) -> None:
    app.command("train-sae")(train_sae)
    app.command("eval-sae")(eval_sae)


# ---- data sources ------------------------------------------------------------------------------


def _synthetic_source(cfg_dict: dict[str, Any]):
    from interplab.data.synthetic import ToyFeatureConfig, ToyFeatureSource

    return ToyFeatureSource(ToyFeatureConfig(**cfg_dict))


def _open_source(data: dict[str, Any], batch_size: int, seed: int):
    """(resumable batch stream, d_in, SAE metadata) for the run's data description."""
    if data["kind"] == "synthetic":
        source = _synthetic_source(data["synthetic"])
        return source, source.cfg.d, {"dataset": "synthetic", "synthetic": data["synthetic"]}
    import torch

    from interplab.activations import ActivationBuffer, ActivationStore, BufferConfig

    store = ActivationStore.open(data["store"])
    h = store.manifest.header
    # epochs=None: stream until the trainer has taken its steps (several passes over a small store)
    buffer = ActivationBuffer(store, BufferConfig(batch_size=batch_size, seed=seed, epochs=None, dtype=torch.float32))
    meta = {"model_name": h.model, "hook_name": h.hook, "dataset_path": str(data["store"]),
            "context_size": h.context_size, "d_model": h.d, "exclusion": h.exclusion.to_json()}
    return buffer, store.d, meta


def _eval_batches(data_meta: dict[str, Any], store: Path | None, n_batches: int, batch_size: int):
    """Held-out synthetic batches, or the first batches of a store in order."""
    if store is not None:
        from interplab.activations import ActivationStore

        batches = ActivationStore.open(store).batches(batch_size, shuffle=False, drop_last=False)
        return (b for i, b in zip(range(n_batches), batches, strict=False))
    source = _synthetic_source(data_meta["synthetic"])
    return (source.batch(SYNTHETIC_EVAL_OFFSET + i) for i in range(n_batches))


def _evaluate(sae, data_meta: dict[str, Any], store: Path | None, n_batches: int, batch_size: int) -> dict[str, Any]:
    from interplab.evals import evaluate_sae, per_feature_recovery

    result: dict[str, Any] = evaluate_sae(sae, _eval_batches(data_meta, store, n_batches, batch_size)).summary()
    if store is not None:  # FVU and L0 are over the tokens the store keeps: say which it leaves out
        from interplab.activations import ActivationStore

        result["excluded_positions"] = ActivationStore.open(store).exclusion.describe()
    if store is None:
        rec = per_feature_recovery(_synthetic_source(data_meta["synthetic"]).features_FD, sae.W_dec.cpu())
        result.update(mmcs=rec.mmcs, frac_recovered_0_9=rec.frac_recovered)
    return result


# ---- run folder --------------------------------------------------------------------------------


def _prepare_run_folder(out: Path, run_cfg: dict[str, Any], resume: bool) -> int | None:
    """Create or check the run folder; return the checkpoint step a resume continues from (None: fresh)."""
    from interplab.common import InterplabError
    from interplab.training import Checkpointer

    cfg_path = out / RUN_CONFIG
    if cfg_path.exists():
        if not resume:
            raise InterplabError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
        old = json.loads(cfg_path.read_text())
        if old != run_cfg:
            raise InterplabError(f"{out} was started with different settings; resume with the same options "
                                 "(see its config.json) or choose another --out")
        latest = Checkpointer(out / "checkpoints", every=1).latest()
        return Checkpointer.step_of(latest) if latest is not None else 0
    if resume and out.exists() and any(out.iterdir()):
        raise InterplabError(f"{out} has no {RUN_CONFIG}, so there is nothing to resume; choose an empty --out")
    out.mkdir(parents=True, exist_ok=True)
    tmp = cfg_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(run_cfg, indent=2))
    tmp.replace(cfg_path)
    return None


def _on_main_then_shared(info, fn):
    """Run `fn` on rank 0 only and return its result on every rank (its InterplabError too)."""
    from interplab.common import InterplabError

    if info.world_size == 1:
        return fn()
    import torch.distributed as dist

    box: list[Any] = [None]
    if info.is_main:
        try:
            box[0] = ("ok", fn())
        except InterplabError as e:
            box[0] = ("error", str(e))
    dist.broadcast_object_list(box, src=0)
    kind, value = box[0]
    if kind == "error":
        raise InterplabError(value)
    return value


def _progress_callback(bar, task, metrics_log):
    def on_step(step: int, metrics: dict[str, float]) -> None:
        metrics_log(step, metrics)
        if metrics:
            bar.update(task, completed=step, description=f"train-sae fvu={metrics['fvu']:.3f} l0={metrics['l0']:.1f}")
        elif step % 10 == 0:  # a refresh per step would cost more than a small SAE's step
            bar.update(task, completed=step)

    return on_step


def _print_summary(title: str, result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in result.items():
        table.add_row(k, f"{v:.4g}" if isinstance(v, float) else str(v))
    Console().print(table)


# ---- commands ----------------------------------------------------------------------------------


def train_sae(
    out: Path = typer.Option(..., help="Run folder (created): config, metrics, checkpoints, sae/, figures."),
    store: Path | None = typer.Option(None, help="Activation store folder (from `interplab cache`)."),
    synthetic: bool = typer.Option(False, "--synthetic", help="Train on synthetic ground-truth features instead."),
    n_features: int = typer.Option(512, help="Synthetic: number of true features."),
    d_in: int = typer.Option(256, help="Synthetic: activation dimension."),
    mean_active: float = typer.Option(5.0, help="Synthetic: mean number of features active per sample."),
    correlation: float = typer.Option(0.0, help="Synthetic: feature correlation strength in [0, 1)."),
    arch: str = typer.Option("topk", help="SAE architecture: topk, batchtopk, relu, jumprelu."),
    k: int = typer.Option(32, help="TopK / BatchTopK: active latents per token."),
    d_sae: int = typer.Option(4096, help="Number of latents."),
    l1_coeff: float = typer.Option(5.0, help="ReLU: sparsity penalty coefficient."),
    steps: int = typer.Option(1000, help="Training steps."),
    batch_size: int = typer.Option(4096, help="Activations per step."),
    lr: float = typer.Option(4e-4, help="Peak learning rate."),
    lr_warmup: int = typer.Option(0, help="Learning-rate warm-up steps."),
    lr_decay: str = typer.Option("linear", help="Decay over the last 20% of steps: linear, cosine or none."),
    sparsity_warmup: int = typer.Option(0, help="Sparsity-coefficient warm-up steps."),
    dtype: str = typer.Option("float32", help="Compute dtype: float32 or bfloat16 (autocast, fp32 weights)."),
    device: str | None = typer.Option(None, help="cpu, cuda, ... (default: CUDA when present)."),
    checkpoint_every: int = typer.Option(500, help="Checkpoint every N steps."),
    log_every: int = typer.Option(10, help="Log metrics every N steps."),
    eval_batches: int = typer.Option(8, help="Batches for the final evaluation."),
    seed: int = typer.Option(0, help="Seed of the SAE init, the data order and the synthetic data."),
    resume: bool = typer.Option(False, help="Continue the run in --out from its newest checkpoint."),
) -> None:
    """Train a sparse autoencoder on cached activations or synthetic features, with resumable checkpoints."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from interplab.common import InterplabError
    from interplab.evals.plots import plot_l0_fvu
    from interplab.saes import SAEConfig, make_sae, save_sae
    from interplab.training import TrainConfig, distributed, fit
    from interplab.training.metrics_log import JsonlMetrics

    if (store is None) == (not synthetic):
        raise InterplabError("give exactly one data source: --store <activation store folder> or --synthetic")
    data: dict[str, Any] = {"kind": "store", "store": str(store)} if store is not None else {
        "kind": "synthetic", "synthetic": {"n_features": n_features, "d": d_in, "mean_active": mean_active,
                                          "correlation": correlation, "batch_size": batch_size, "seed": seed}}
    source, d, meta = _open_source(data, batch_size, seed)
    sae_cfg = SAEConfig(d_in=d, d_sae=d_sae, architecture=arch, k=k, l1_coeff=l1_coeff, seed=seed, metadata=meta)
    tc = TrainConfig(total_steps=steps, batch_size=batch_size, lr=lr, lr_warmup_steps=lr_warmup, lr_decay=lr_decay,
                     sparsity_warmup_steps=sparsity_warmup, checkpoint_every=checkpoint_every,
                     checkpoint_dir=str(out / "checkpoints"), seed=seed, dtype=dtype, device=device,
                     log_every=log_every)
    tc.check()
    sae = make_sae(sae_cfg)
    run_cfg = {"data": data, "sae": sae_cfg.to_dict(), "train": tc.to_dict()}
    # Under torchrun every process runs this command: join the job first, let rank 0 alone own the
    # run folder, metrics, progress bar and outputs (fit checkpoints on rank 0 too).
    info = distributed.init_from_env()
    try:
        resume_step = _on_main_then_shared(info, lambda: _prepare_run_folder(out, run_cfg, resume))
        tc.resume = resume_step is not None
        if not info.is_main:
            fit(sae, source, tc)
            return
        metrics_log = JsonlMetrics(out / "metrics.jsonl", resume_step=resume_step)
        columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
        with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task("train-sae", total=steps, completed=resume_step or 0)
            fit(sae, source, tc, on_step=_progress_callback(bar, task, metrics_log))
    finally:
        distributed.shutdown()
    save_sae(sae.cpu(), out / "sae", overwrite=True)
    result = _evaluate(sae, meta, store, eval_batches, batch_size)
    (out / "eval.json").write_text(json.dumps(result, indent=2))
    plot_l0_fvu(JsonlMetrics.read(out / "metrics.jsonl"), out, final=result, title=f"{arch} SAE: L0 vs FVU")
    _print_summary(f"trained {arch} SAE -> {out / 'sae'}", result)


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
) -> None:
    """Evaluate a saved SAE: FVU, MSE, L0, dead/dense fractions, MMCS (synthetic), CE/KL recovered (--model)."""
    from interplab.common import InterplabError, get_device
    from interplab.saes import load_sae

    sae = load_sae(sae_path, device=get_device(device))
    meta = sae.cfg.metadata
    if store is None and not synthetic and model is None:
        raise InterplabError("nothing to evaluate on: give --store, --synthetic and/or --model")
    if synthetic and "synthetic" not in meta:
        raise InterplabError(f"{sae_path} was not trained on synthetic data (no metadata.synthetic); use --store")
    result: dict[str, Any] = {}
    if store is not None or synthetic:
        result.update(_evaluate(sae, meta, store, batches, batch_size))
    if model is not None:
        result.update(_loss_recovered(sae, model, hook or meta.get("hook_name"), n_texts, max_length, device))
    folder = sae_path if sae_path.is_dir() else sae_path.parent
    target = out or folder / "eval.json"
    target.write_text(json.dumps(result, indent=2))
    _print_summary(f"eval-sae {sae_path} (written to {target})", result)


def _loss_recovered(sae, model: str, hook: str | None, n_texts: int, max_length: int,
                    device: str | None) -> dict[str, Any]:
    from interplab.activations.exclusion import ExclusionRule
    from interplab.common import InterplabError
    from interplab.data.corpus import load_demo_corpus
    from interplab.evals import loss_recovered_on_texts
    from interplab.models.loading import load_model

    if not hook:
        raise InterplabError("the SAE's metadata names no hook; pass --hook, e.g. blocks.3.resid_post")
    lm = load_model(model, device=device)
    if lm.d_model != sae.cfg.d_in:
        raise InterplabError(f"{model} has d_model={lm.d_model} but the SAE reads d_in={sae.cfg.d_in}; "
                             "pass the model the SAE was trained on")
    exclusion = ExclusionRule.from_json(sae.cfg.metadata.get("exclusion") or {})
    res = loss_recovered_on_texts(lm, load_demo_corpus()[:n_texts], hook, sae=sae.to(lm.device),
                                  max_length=max_length, exclusion=exclusion)
    out = res._asdict()
    out["loss_n_tokens"] = out.pop("n_tokens")  # not the reconstruction's n_tokens, which it would overwrite
    return {**out, "splice_excluded_positions": exclusion.describe()}
