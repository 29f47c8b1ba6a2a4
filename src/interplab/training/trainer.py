"""`fit(sae, batches, cfg)`: the SAE training loop, kept short and straight (nanoGPT style).

Per step:
1. Take the next global batch: [B, d_in] for an SAE, an (input, target) pair for transcoders
   (`training_forward(x, state, target)`), stacked [B, M, d] for an `SAEGroup` of M members;
   under torchrun keep this rank's slice.
2. Set the learning rate and the sparsity warm-up for this step (pure functions of the step).
3. Forward (`sae.training_forward`, bf16 autocast if asked; master weights stay fp32), backward.
4. Average gradients over ranks; for unit-norm decoders project out the gradient along each decoder
   row, step Adam, and renormalise the rows.
5. Update the dead-latent tracker (tokens since each latent last fired) with fire counts summed over ranks.
6. Every `log_every` steps collect metrics (and run the evaluator); every `checkpoint_every` steps save.

Resume is exact: the checkpoint holds parameters, Adam moments, tracker counters, RNG states and the
data stream's position (`batches.state_dict()` when the stream has one, else batches are skipped).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import torch
from torch import Tensor

from interplab.common import InterplabError, free_cpu_threads, get_device, get_logger, seed_everything
from interplab.saes.base import SAE, TrainOutput, TrainState
from interplab.saes.group import SAEGroup
from interplab.saes.init import init_b_dec_geometric_median_, init_b_dec_mean_
from interplab.saes.transcoder import is_transcoder
from interplab.training import distributed
from interplab.training.checkpoint import (
    Checkpointer,
    load_optimizer_state_flat,
    optimizer_state_flat,
    rng_state,
    set_rng_state,
)
from interplab.training.schedules import lr_at, sparsity_scale_at

log = get_logger(__name__)

Trainable = SAE | SAEGroup
"""What `fit` trains: one SAE or transcoder, or a group of them sharing one stream."""
Batch = Tensor | tuple[Tensor, Tensor]
"""A stream element: activations, or (input, target) for transcoders."""
Evaluator = Callable[[Any], dict[str, float]]
StepCallback = Callable[[int, dict[str, float]], None]


@dataclass
class TrainConfig:
    """How to train an SAE. JSON-safe (written to the run folder's config.json)."""

    total_steps: int = 1000
    """Optimiser steps to take (one global batch each)."""
    batch_size: int = 4096
    """Rows per global batch; bookkeeping only (tokens = steps × batch_size), the stream decides."""
    lr: float = 4e-4
    """Peak Adam learning rate."""
    adam_betas: tuple[float, float] = (0.9, 0.999)
    """Adam β1, β2."""
    lr_warmup_steps: int = 0
    """Linear learning-rate warm-up steps."""
    lr_decay: str = "linear"
    """Decay to 0 at the end: "cosine", "linear" or "none"."""
    lr_decay_fraction: float = 0.2
    """Share of the steps, at the end, over which the learning rate decays."""
    sparsity_warmup_steps: int = 0
    """Linear 0 -> 1 warm-up of the sparsity coefficient (ReLU / JumpReLU penalties)."""
    dead_after_tokens: int = 10_000_000
    """A latent that has not fired for this many training tokens counts as dead (AuxK trains those)."""
    freq_window_tokens: int = 1_000_000
    """Time constant, in tokens, of the running firing-frequency estimate."""
    max_grad_norm: float | None = None
    """Clip the gradient norm to this value (None: no clipping)."""
    b_dec_init: str = "geometric_median"
    """Initial b_dec from the first batch: "geometric_median", "mean" or "none"."""
    checkpoint_every: int = 0
    """Save a checkpoint every N steps (0: never)."""
    checkpoint_dir: str | None = None
    """Folder for checkpoints (required when checkpoint_every > 0 and no checkpointer is passed)."""
    keep_checkpoints: int = 2
    """Number of newest checkpoints kept."""
    resume: bool = False
    """Continue from the newest checkpoint in the checkpoint folder, if there is one."""
    seed: int = 0
    """Seed of python / numpy / torch RNGs at the start of a fresh run."""
    dtype: str = "float32"
    """Compute dtype: "float32", or "bfloat16" (autocast; parameters and Adam state stay fp32)."""
    device: str | None = None
    """Device to train on (None: CUDA when present, else CPU)."""
    threads: int | None = None
    """CPU threads while training on the CPU (None: OMP_NUM_THREADS if set, else the cores not busy with
    other work; see `common.free_cpu_threads`). Under torchrun each process uses 1."""
    log_every: int = 10
    """Collect metrics (and call the evaluator if eval_every allows) every N steps."""
    eval_every: int = 0
    """Call the evaluator every N steps (0: only at the last step)."""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["adam_betas"] = list(self.adam_betas)
        return d

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def check(self) -> None:
        """Raise a one-line InterplabError naming the bad field."""
        if self.total_steps < 1 or self.log_every < 1:
            raise InterplabError("total_steps and log_every must be >= 1")
        if self.dtype not in ("float32", "bfloat16"):
            raise InterplabError(f"training dtype must be 'float32' or 'bfloat16', got {self.dtype!r}")
        if self.b_dec_init not in ("geometric_median", "mean", "none"):
            raise InterplabError(f"b_dec_init must be geometric_median, mean or none, got {self.b_dec_init!r}")
        if self.checkpoint_every > 0 and not self.checkpoint_dir:
            raise InterplabError("checkpoint_every > 0 needs checkpoint_dir (a folder for the checkpoints)")


class TrainResult(NamedTuple):
    """What `fit` returns (the SAE itself is trained in place)."""

    steps: int
    """Steps completed in total (including those before a resume)."""
    tokens: int
    """Training rows seen in total."""
    metrics: dict[str, float]
    """The last collected metrics."""
    resumed_from: int
    """Step the run resumed from (0 for a fresh run)."""


class DeadLatentTracker:
    """Tokens since each latent last fired, and a running firing frequency.

    The host also keeps an upper bound on the largest counter (it grows by the rows of each step
    and is refreshed by one device read when it reaches the dead threshold), so `maybe_dead_mask`
    can answer "no latent can be dead" without reading the device on almost every step.
    """

    def __init__(self, d_sae: int, dead_after_tokens: int, freq_window_tokens: int, device: torch.device):
        self.tokens_since_fired_F = torch.zeros(d_sae, dtype=torch.long, device=device)
        self.freq_F = torch.zeros(d_sae, dtype=torch.float32, device=device)
        self.dead_after_tokens = dead_after_tokens
        self.freq_window_tokens = freq_window_tokens
        self._max_bound: int | None = 0  # None: unknown (after load), read from the device when asked

    def update(self, fire_counts_F: Tensor, n_rows: int) -> None:
        # In place and without boolean indexing, which would read the mask back to the host.
        self.tokens_since_fired_F.add_(n_rows).masked_fill_(fire_counts_F > 0, 0)
        if self._max_bound is not None:
            self._max_bound += n_rows
        alpha = min(1.0, n_rows / self.freq_window_tokens)
        self.freq_F.mul_(1 - alpha).add_(fire_counts_F.float() / n_rows, alpha=alpha)

    def dead_mask(self) -> Tensor:
        return self.tokens_since_fired_F >= self.dead_after_tokens

    def maybe_dead_mask(self) -> Tensor | None:
        """The dead mask, or None when no latent can be dead yet (same result for the loss)."""
        if self._max_bound is None or self._max_bound >= self.dead_after_tokens:
            self._max_bound = int(self.tokens_since_fired_F.max())  # the one host sync
        if self._max_bound < self.dead_after_tokens:
            return None
        return self.dead_mask()

    def tensors(self) -> dict[str, Tensor]:
        return {"trainer.tokens_since_fired_F": self.tokens_since_fired_F, "trainer.freq_F": self.freq_F}

    def load(self, tensors: dict[str, Tensor]) -> None:
        self.tokens_since_fired_F.copy_(tensors["trainer.tokens_since_fired_F"])
        self.freq_F.copy_(tensors["trainer.freq_F"])
        self._max_bound = None


def _init_b_dec(sae: Trainable, how: str, batch: Batch) -> None:
    """b_dec from the first batch: of the targets for transcoders (b_dec is their output bias)."""
    x, target = split_batch(batch)
    sample = x if target is None else target
    if isinstance(sae, SAEGroup):
        for m, member in enumerate(sae.members):
            _init_b_dec(member, how, sample[:, m])  # type: ignore[arg-type]
    elif how == "geometric_median":
        init_b_dec_geometric_median_(sae, sample[:4096])
    elif how == "mean":
        init_b_dec_mean_(sae, sample)


def split_batch(batch: Batch) -> tuple[Tensor, Tensor | None]:
    """(input, target or None) of a stream element."""
    if isinstance(batch, tuple | list):
        if len(batch) != 2:
            raise InterplabError(f"a training batch is a tensor or an (input, target) pair, not {len(batch)} tensors")
        return batch[0], batch[1]
    return batch, None


def _reads_pairs(sae: Trainable) -> bool:
    if isinstance(sae, SAEGroup):
        return all(is_transcoder(m) for m in sae.members)
    return is_transcoder(sae)


def _forward(sae: Trainable, x: Tensor, target: Tensor | None, state: TrainState) -> TrainOutput:
    if target is None:
        return sae.training_forward(x, state)
    if not _reads_pairs(sae):
        raise InterplabError("the stream yields (input, target) pairs but this SAE reconstructs its input; "
                             "train a transcoder architecture on pairs, or an SAE on plain batches")
    return sae.training_forward(x, state, target)  # type: ignore[call-arg]


def _save(ckpt: Checkpointer, step: int, tokens: int, sae: Trainable, opt: torch.optim.Optimizer,
          tracker: DeadLatentTracker, source: Any, cfg: TrainConfig) -> None:
    opt_tensors, opt_meta = optimizer_state_flat(opt)
    rng_tensors, rng_meta = rng_state()
    tensors = {f"sae.{k}": v for k, v in sae.state_dict().items()}
    tensors.update(opt_tensors, **tracker.tensors(), **rng_tensors)
    data_state = source.state_dict() if hasattr(source, "state_dict") else None
    meta = {"step": step, "tokens": tokens, "optimizer": opt_meta, "rng": rng_meta, "data": data_state,
            "train_config": cfg.to_dict(), "sae_config": sae.cfg.to_dict()}
    path = ckpt.save(step, tensors, meta)
    log.debug("saved checkpoint %s", path)


def _restore(ckpt: Checkpointer, sae: Trainable, opt: torch.optim.Optimizer, tracker: DeadLatentTracker,
             source: Any) -> tuple[int, int, Iterator[Batch]]:
    """Load the newest valid checkpoint; return (step, tokens, batch iterator positioned after it)."""
    found = ckpt.latest_valid(required=("step", "tokens", "optimizer", "rng", "sae_config"))
    if found is None:
        raise InterplabError(f"no readable checkpoint in {ckpt.folder}; delete the folder to start over")
    path, tensors, meta = found
    if type(sae.cfg).from_dict(meta["sae_config"], source=f"{path} sae_config") != sae.cfg:
        raise InterplabError(f"checkpoint {path} belongs to a different SAE config; use a new run folder "
                             "or the same SAE settings to resume")
    sae.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("sae.")})
    load_optimizer_state_flat(opt, tensors, meta["optimizer"])
    tracker.load(tensors)
    set_rng_state(tensors, meta["rng"])
    step = int(meta["step"])
    if meta.get("data") is not None and hasattr(source, "load_state_dict"):
        source.load_state_dict(meta["data"])
        it = iter(source)
    else:  # a plain iterator: skip the batches already trained on
        it = iter(source)
        for _ in range(step):
            next(it)
    log.info("resumed from %s (step %d)", path, step)
    return step, int(meta["tokens"]), it


_LOGGED = ("loss", "mse_loss", "sparsity_loss", "aux_loss", "l0")


def _metrics(out: TrainOutput, tracker: DeadLatentTracker, step: int, tokens: int, lr: float,
             scale: float, info: distributed.DistInfo) -> dict[str, float]:
    """The logged metrics of the global batch. Under torchrun every rank holds an equal slice, so batch
    means are averaged over ranks; FVU is Σ squared error / Σ variance over ranks (the variances are
    taken around each slice's own mean, which for slices of one shuffled batch differ negligibly)."""
    with torch.no_grad():
        values = [getattr(out, k).detach().float() for k in _LOGGED]
        err = out.mse_loss.detach().float()  # Σ error² / rows of this slice
        values += [err, err / out.fvu.detach().float().clamp_min(1e-30)]  # and Σ variance / rows
        vec = distributed.sum_over_ranks(torch.stack(values), info) / info.world_size
    m = dict(zip(_LOGGED, vec[: len(_LOGGED)].tolist(), strict=True))
    err_mean, total_mean = vec[len(_LOGGED):].tolist()
    m.update(fvu=err_mean / total_mean if total_mean > 0 else float("nan"), step=step, tokens=tokens, lr=lr,
             sparsity_scale=scale, dead_fraction=float(tracker.dead_mask().float().mean()))
    return m


def _check_finite(loss: Tensor, x_BD: Tensor, step: int) -> None:
    """Stop with the step number when the loss is NaN/Inf, saying whether the data or the run is at fault."""
    if bool(torch.isfinite(loss)):
        return
    if not bool(torch.isfinite(x_BD).all()):
        raise InterplabError(f"training batch {step} holds NaN/Inf activations; rebuild the activation store "
                             "(interplab cache --overwrite) or drop those rows")
    raise InterplabError(f"training diverged: the loss is {float(loss)} at step {step}; lower --lr or check the data")


def _to(batch: Batch, device: torch.device) -> Batch:
    x, target = split_batch(batch)
    return x.to(device) if target is None else (x.to(device), target.to(device))


def _run_evaluator(sae: Trainable, evaluator: Evaluator) -> dict[str, float]:
    sae.eval()
    try:
        return {f"eval/{k}": v for k, v in evaluator(sae).items()}
    finally:
        sae.train()


def _adam(sae: Trainable, cfg: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    # fused: one kernel per parameter for the whole update instead of ~8 elementwise passes with
    # temporaries (CPU and CUDA have it; same update rule, deterministic, so resume stays exact).
    fused = device.type in ("cpu", "cuda") and all(p.is_floating_point() for p in sae.parameters())
    betas = (cfg.adam_betas[0], cfg.adam_betas[1])
    return torch.optim.Adam(sae.parameters(), lr=cfg.lr, betas=betas, fused=fused or None)


def _optimizer_step(sae: Trainable, opt: torch.optim.Optimizer, cfg: TrainConfig, info: distributed.DistInfo) -> None:
    distributed.average_gradients_(sae.parameters(), info)
    if sae.normalize_decoder:
        sae.remove_gradient_parallel_to_decoder_()
    if cfg.max_grad_norm is not None:
        torch.nn.utils.clip_grad_norm_(sae.parameters(), cfg.max_grad_norm)
    opt.step()
    if sae.normalize_decoder:
        sae.set_decoder_norm_to_unit_()


def fit(
    sae: Trainable,
    batches: Iterable[Batch],
    cfg: TrainConfig,
    evaluator: Evaluator | None = None,
    checkpointer: Checkpointer | None = None,
    on_step: StepCallback | None = None,
) -> TrainResult:
    """Train `sae` in place on global batches (see the module docstring); `on_step(step, metrics)` runs after each step
    (metrics is empty except on logging steps). Under torchrun call `distributed.init_from_env()` first."""
    cfg.check()
    info = distributed.current()
    device = get_device(cfg.device)
    threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(1 if info.world_size > 1 else free_cpu_threads(cfg.threads))
        log.info("training on cpu with %d thread(s)", torch.get_num_threads())
    try:
        return _fit(sae, batches, cfg, evaluator, checkpointer, on_step, info, device)
    finally:
        torch.set_num_threads(threads)


def _fit(sae: Trainable, batches: Iterable[Batch], cfg: TrainConfig, evaluator: Evaluator | None,
         checkpointer: Checkpointer | None, on_step: StepCallback | None, info: distributed.DistInfo,
         device: torch.device) -> TrainResult:
    sae.to(device).train()
    opt = _adam(sae, cfg, device)
    tracker = DeadLatentTracker(sae.cfg.d_sae, cfg.dead_after_tokens, cfg.freq_window_tokens, device)
    if checkpointer is None and cfg.checkpoint_every > 0:
        checkpointer = Checkpointer(cfg.checkpoint_dir, cfg.checkpoint_every, cfg.keep_checkpoints)  # type: ignore[arg-type]
    source, start, tokens = batches, 0, 0
    if cfg.resume and checkpointer is not None and checkpointer.latest() is not None:
        start, tokens, it = _restore(checkpointer, sae, opt, tracker, source)
    else:
        seed_everything(cfg.seed)
        it = iter(source)
        if cfg.b_dec_init != "none":
            first = next(it)
            _init_b_dec(sae, cfg.b_dec_init, _to(first, device))
            it = itertools.chain([first], it)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.dtype == "bfloat16")
    metrics: dict[str, float] = {}
    done = start
    for step in range(start, cfg.total_steps):
        try:
            x_BD, target = split_batch(next(it))
        except StopIteration:
            log.warning("the batch stream ended after %d steps (of %d)", step, cfg.total_steps)
            break
        n_rows = x_BD.shape[0]
        x_BD = distributed.local_slice(x_BD, info).to(device, non_blocking=True)
        if target is not None:
            target = distributed.local_slice(target, info).to(device, non_blocking=True)
        lr = lr_at(step, cfg.total_steps, cfg.lr, cfg.lr_warmup_steps, cfg.lr_decay, cfg.lr_decay_fraction)
        for group in opt.param_groups:
            group["lr"] = lr
        scale = sparsity_scale_at(step, cfg.sparsity_warmup_steps)
        state = TrainState(sparsity_scale=scale, dead_mask_F=tracker.maybe_dead_mask(), freq_F=tracker.freq_F)
        with autocast:
            out = _forward(sae, x_BD, target, state)
        # On CPU reading the loss costs nothing, so every step is checked; on a GPU the read is a
        # sync, so only logging steps are (a diverged run then stops within log_every steps).
        if device.type == "cpu" or (step + 1) % cfg.log_every == 0:
            _check_finite(out.loss, x_BD, step + 1)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        _optimizer_step(sae, opt, cfg, info)
        tracker.update(distributed.sum_over_ranks(out.fire_counts_F.detach(), info), n_rows)
        tokens += n_rows
        done = step + 1
        last = done == cfg.total_steps
        step_metrics: dict[str, float] = {}
        if done % cfg.log_every == 0 or last:
            step_metrics = metrics = _metrics(out, tracker, done, tokens, lr, scale, info)
            if evaluator is not None and info.is_main and (last or (cfg.eval_every and done % cfg.eval_every == 0)):
                step_metrics.update(_run_evaluator(sae, evaluator))
        if on_step is not None:
            on_step(done, step_metrics)
        if checkpointer is not None and info.is_main and (checkpointer.should_save(done) or last):
            _save(checkpointer, done, tokens, sae, opt, tracker, source, cfg)
    sae.eval()
    return TrainResult(steps=done, tokens=tokens, metrics=metrics, resumed_from=start)
