"""Train an SAE into a run folder, and evaluate a saved one.

Run folder (see run_folder.py for the create / continue / reuse rules):
    config.json      data source, SAE config, training config
    metrics.jsonl    one line per logged step (loss, mse, fvu, l0, lr, dead fraction, ...)
    checkpoints/     resumable training state (safetensors + JSON, sha256-checked), newest two kept
    sae/             the trained SAE (cfg.json + sae_weights.safetensors, SAELens v6 layout)
    eval.json        final evaluation (FVU, L0, dead/dense fractions; MMCS on synthetic data)
    l0_fvu.png/.html L0 vs FVU over training
    done.json        written last

Under torchrun every process calls `train_sae_run`; they train one SAE data-parallel (see
training/distributed.py) and rank 0 alone writes the run folder.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import Tensor

from interplab.common import InterplabError, get_device
from interplab.data.synthetic import ToyFeatureConfig, ToyFeatureSource
from interplab.evals import evaluate_sae, per_feature_recovery
from interplab.evals.l0_fvu_plot import plot_l0_fvu
from interplab.files import read_json_object, write_json_atomic
from interplab.pipelines.progress import progress_bar
from interplab.pipelines.run_folder import RunFolder, RunState, open_run
from interplab.saes import SAE, SAEConfig, TranscoderFields, load_sae, make_sae, save_sae
from interplab.training import TrainConfig, distributed, fit
from interplab.training.metrics_log import JsonlMetrics

SYNTHETIC_EVAL_OFFSET = 1_000_000_000  # held-out synthetic batches: indices training never reaches
T = TypeVar("T")


@dataclass
class StoreData:
    """Train on an activation store (from `interplab cache`)."""

    store: Path


@dataclass
class SyntheticData:
    """Train on synthetic ground-truth features (MMCS against the true directions is reported)."""

    features: ToyFeatureConfig


Data = StoreData | SyntheticData


@dataclass
class TrainRun:
    """What `train_sae_run` leaves behind."""

    out: Path
    sae: SAE
    evaluation: dict[str, Any]
    reused: bool
    """True when the folder already held this finished run (nothing was trained)."""


def data_description(data: Data) -> dict[str, Any]:
    """The data part of config.json (also what a resume must match)."""
    if isinstance(data, StoreData):
        return {"kind": "store", "store": str(data.store)}
    return {"kind": "synthetic", "synthetic": data.features.to_dict()}


def open_training_data(data: Data, batch_size: int, seed: int) -> tuple[Any, int, dict[str, Any]]:
    """(resumable batch stream, d_in, SAE metadata) for a data source."""
    if isinstance(data, SyntheticData):
        source = ToyFeatureSource(data.features)
        return source, data.features.d, {"dataset": "synthetic", "synthetic": data.features.to_dict()}
    from interplab.activations import ActivationBuffer, ActivationStore, BufferConfig

    store = ActivationStore.open(data.store)
    h = store.manifest.header
    # epochs=None: stream until the trainer has taken its steps (several passes over a small store)
    buffer = ActivationBuffer(store, BufferConfig(batch_size=batch_size, seed=seed, epochs=None, dtype=torch.float32))
    meta = {"model_name": h.model, "hook_name": h.hook, "dataset_path": str(data.store),
            "context_size": h.context_size, "d_model": h.d, "exclusion": h.exclusion.to_json()}
    return buffer, store.d, meta


def data_dim(data: Data) -> int:
    """The activation width of a data source (the SAE's d_in)."""
    if isinstance(data, SyntheticData):
        return data.features.d
    from interplab.activations import ActivationStore

    return ActivationStore.open(data.store).d


def eval_batches(sae_meta: dict[str, Any], store: Path | None, n_batches: int, batch_size: int) -> Iterator[Tensor]:
    """Held-out synthetic batches (from the SAE's metadata), or the first batches of a store in order."""
    if store is not None:
        from interplab.activations import ActivationStore

        batches = ActivationStore.open(store).batches(batch_size, shuffle=False, drop_last=False)
        return (b for _, b in zip(range(n_batches), batches, strict=False))
    if "synthetic" not in sae_meta:
        raise InterplabError("the SAE was not trained on synthetic data (no metadata.synthetic); pass a store")
    source = ToyFeatureSource(ToyFeatureConfig(**sae_meta["synthetic"]))
    return (source.batch(SYNTHETIC_EVAL_OFFSET + i) for i in range(n_batches))


def evaluate_on_data(sae: SAE, store: Path | None, n_batches: int, batch_size: int) -> dict[str, Any]:
    """FVU, L0, dead/dense fractions on a store (or held-out synthetic batches, plus MMCS)."""
    meta = sae.cfg.metadata
    result: dict[str, Any] = evaluate_sae(sae, eval_batches(meta, store, n_batches, batch_size)).summary()
    if store is not None:  # FVU and L0 are over the tokens the store keeps: say which it leaves out
        from interplab.activations import ActivationStore

        result["excluded_positions"] = ActivationStore.open(store).exclusion.describe()
    if store is None:
        truth = ToyFeatureSource(ToyFeatureConfig(**meta["synthetic"])).features_FD
        rec = per_feature_recovery(truth, sae.W_dec.detach().cpu())
        result.update(mmcs=rec.mmcs, frac_recovered_0_9=rec.frac_recovered)
    return result


def _on_main_then_shared(info: distributed.DistInfo, fn: Callable[[], T]) -> T:
    """Run `fn` on rank 0 only and return its result on every rank (its InterplabError too)."""
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


def _reuse(folder: RunFolder) -> TrainRun:
    sae = load_sae(folder.path / "sae")
    return TrainRun(folder.path, sae, read_json_object(folder.path / "eval.json", what="evaluation"), reused=True)


def _train_with_progress(sae: SAE, source: Any, tc: TrainConfig, out: Path, resumed: bool, show: bool) -> None:
    metrics_log = JsonlMetrics(out / "metrics.jsonl", resume=resumed)
    with progress_bar(f"train {sae.cfg.architecture} SAE", total=tc.total_steps, show=show) as update:
        def on_step(step: int, metrics: dict[str, float]) -> None:
            metrics_log(step, metrics)
            if metrics:
                update(step, None, f"train {sae.cfg.architecture} SAE fvu={metrics['fvu']:.3f} l0={metrics['l0']:.1f}")
            elif step % 10 == 0:  # a refresh per step would cost more than a small SAE's step
                update(step, None, None)

        fit(sae, source, tc, on_step=on_step)


def train_sae_run(
    out: str | Path,
    data: Data,
    sae_cfg: SAEConfig,
    train_cfg: TrainConfig,
    resume: bool = False,
    overwrite: bool = False,
    n_eval_batches: int = 8,
    show_progress: bool = True,
) -> TrainRun:
    """Train `sae_cfg` on `data` into the run folder `out`, evaluate it and plot L0 vs FVU.

    Rerunning the same call continues an unfinished run from its newest valid checkpoint (with the
    same result as an uninterrupted run) and reuses a finished one.
    """
    out = Path(out)
    if isinstance(sae_cfg, TranscoderFields):
        raise InterplabError(f"{sae_cfg.architecture} is a transcoder (MLP input -> MLP output), not an autoencoder "
                             f"of one store; train it with `interplab train-transcoders --arch {sae_cfg.architecture}`")
    source, d, meta = open_training_data(data, train_cfg.batch_size, train_cfg.seed)
    if sae_cfg.d_in != d:
        raise InterplabError(f"the SAE config has d_in={sae_cfg.d_in} but the data has d={d}; set d_in={d}")
    sae_cfg = sae_cfg.replace(metadata={**meta, **sae_cfg.metadata})
    tc = train_cfg.replace(checkpoint_dir=str(out / "checkpoints"))
    tc.check()
    sae = make_sae(sae_cfg)
    run_cfg = {"data": data_description(data), "sae": sae_cfg.to_dict(), "train": tc.to_dict()}
    # Under torchrun every process runs this: join the job first, let rank 0 alone own the run folder,
    # metrics, progress bar and outputs (fit checkpoints on rank 0 too).
    info = distributed.init_from_env()
    try:
        folder = _on_main_then_shared(info, lambda: open_run(out, run_cfg, resume=resume, overwrite=overwrite))
        if folder.finished:
            return _reuse(folder)
        tc = tc.replace(resume=folder.state is RunState.CONTINUE)
        if not info.is_main:
            fit(sae, source, tc)
            return TrainRun(out, sae, {}, reused=False)
        _train_with_progress(sae, source, tc, out, tc.resume, show_progress)
    finally:
        distributed.shutdown()
    save_sae(sae.cpu(), out / "sae", overwrite=True)
    store = data.store if isinstance(data, StoreData) else None
    result = evaluate_on_data(sae, store, n_eval_batches, train_cfg.batch_size)
    write_json_atomic(out / "eval.json", result)
    plot_l0_fvu(JsonlMetrics.read(out / "metrics.jsonl"), out, final=result,
                title=f"{sae_cfg.architecture} SAE: L0 vs FVU")
    folder.mark_done({"fvu": result.get("fvu"), "l0": result.get("l0")})
    return TrainRun(out, sae, result, reused=False)


def evaluate_sae_run(
    sae_path: str | Path,
    store: Path | None = None,
    synthetic: bool = False,
    model: str | None = None,
    hook: str | None = None,
    n_texts: int = 32,
    max_length: int = 128,
    n_batches: int = 8,
    batch_size: int = 4096,
    out: Path | None = None,
    device: str | None = None,
    absorption: bool = False,
    absorption_words: int = 1500,
) -> tuple[dict[str, Any], Path]:
    """Evaluate a saved SAE (FVU, L0, dead/dense; MMCS on synthetic data; CE/KL recovered with `model`;
    with `absorption`, the first-letter absorption task on `model`) and write the metrics JSON
    (default: <sae folder>/eval.json). Returns (metrics, where written)."""
    sae_path = Path(sae_path)
    sae = load_sae(sae_path, device=get_device(device))
    if store is None and not synthetic and model is None:
        raise InterplabError("nothing to evaluate on: give a store, synthetic=True and/or a model")
    if absorption and model is None:
        raise InterplabError("--absorption runs the first-letter task on a model; pass --model too")
    result: dict[str, Any] = {}
    if store is not None or synthetic:
        result.update(evaluate_on_data(sae, store, n_batches, batch_size))
    if model is not None:
        lm = _load_lm(model, sae, device)
        hook = hook or sae.cfg.metadata.get("hook_name")
        if lm.is_causal or not absorption:  # an encoder (MiniLM) has no LM head: no CE/KL recovered
            result.update(loss_recovered(sae, lm, hook, n_texts, max_length))
        if absorption:
            result["first_letter"] = first_letter_summary(sae, lm, hook, absorption_words)
    folder = sae_path if sae_path.is_dir() else sae_path.parent
    target = out or folder / "eval.json"
    write_json_atomic(target, result)
    return result, target


def _load_lm(model: str, sae: SAE, device: str | None) -> Any:
    from interplab.models.loading import load_model

    lm = load_model(model, device=device)
    if lm.d_model != sae.cfg.d_in:
        raise InterplabError(f"{model} has d_model={lm.d_model} but the SAE reads d_in={sae.cfg.d_in}; "
                             "pass the model the SAE was trained on")
    return lm


def loss_recovered(sae: SAE, lm: Any, hook: str | None, n_texts: int, max_length: int) -> dict[str, Any]:
    """CE / KL loss recovered with the SAE spliced in at `hook`, on the demo corpus (positions the SAE's
    store left out, such as attention sinks, keep their real activations)."""
    from interplab.activations.exclusion import ExclusionRule
    from interplab.data.corpus import load_demo_corpus
    from interplab.evals import loss_recovered_on_texts

    if not hook:
        raise InterplabError("the SAE's metadata names no hook; pass --hook, e.g. blocks.3.resid_post")
    exclusion = ExclusionRule.from_json(sae.cfg.metadata.get("exclusion") or {})
    res = loss_recovered_on_texts(lm, load_demo_corpus()[:n_texts], hook, sae=sae.to(lm.device),
                                  max_length=max_length, exclusion=exclusion)
    out = res._asdict()
    out["loss_n_tokens"] = out.pop("n_tokens")  # not the reconstruction's n_tokens, which it would overwrite
    return {**out, "splice_excluded_positions": exclusion.describe()}


def first_letter_summary(sae: SAE, lm: Any, hook: str | None, n_words: int) -> dict[str, Any]:
    """First-letter absorption, probe F1 and k-sparse F1 (evals/first_letter.py) as a JSON block."""
    from interplab.evals import FirstLetterConfig, first_letter_absorption

    return first_letter_absorption(lm, sae.to(lm.device), hook, FirstLetterConfig(n_words=n_words)).summary()
