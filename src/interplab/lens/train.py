"""Training tuned-lens translators (Belrose et al. 2023, https://arxiv.org/abs/2303.08112) on text.

`training.fit` trains SAEs (it calls `training_forward` and tracks dead latents), so this loop is its own,
built from the same parts: the step-function learning-rate schedule (`training.lr_at`), pickle-free
checkpoints with exact resume (`training.Checkpointer` + its optimizer/RNG helpers) and the JSON-lines
metrics log (`training.metrics_log.JsonlMetrics`). Per step:
1. Take the next `batch_size` texts of a seeded permutation (the step alone says which: resume is exact).
2. Run the frozen model once: every lens layer's residual stream and the model's output log-probabilities.
3. Loss = mean over trainable layers of mean KL(model output || tuned lens) over the batch's positions;
   each layer's part is backpropagated on its own, so only one layer's [positions, vocab] logits live at once.
4. Adam step on the translators (zero-initialised: step 0 is the logit lens).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

import torch

from interplab.common import InterplabError, cpu_threads, get_logger, seed_everything
from interplab.lens.decode import final_decoder, kl_from_log_probs, layer_labels
from interplab.lens.logit_lens import lens_log_probs, stream_chunks
from interplab.lens.tuned import TunedLens
from interplab.models import LoadedModel
from interplab.training import Checkpointer, lr_at
from interplab.training.checkpoint import (
    load_optimizer_state_flat,
    optimizer_state_flat,
    rng_state,
    set_rng_state,
)
from interplab.training.metrics_log import JsonlMetrics

log = get_logger(__name__)

StepCallback = Callable[[int, int], None]


@dataclass
class TunedLensConfig:
    """How tuned-lens translators are trained."""

    steps: int = 150
    """Optimiser steps (one batch of texts each)."""
    batch_size: int = 4
    """Texts per step."""
    max_length: int = 128
    """Tokens per text at most."""
    lr: float = 1e-3
    """Peak Adam learning rate."""
    warmup_steps: int = 10
    """Linear learning-rate warm-up steps."""
    lr_decay: str = "linear"
    """Decay to 0 over the last fifth of the steps: "cosine", "linear" or "none"."""
    checkpoint_every: int = 25
    """Save a checkpoint every N steps (0: never); a rerun with resume continues from the newest."""
    log_every: int = 5
    """Write a metrics line every N steps."""
    seed: int = 0
    """Seed of the text order and of torch's RNG."""
    threads: int | None = None
    """CPU threads (None: the cores not busy with other work, see common.free_cpu_threads)."""

    def check(self) -> None:
        if min(self.steps, self.batch_size, self.max_length, self.log_every) < 1 or self.checkpoint_every < 0:
            raise InterplabError("tuned lens: steps, batch_size, max_length and log_every must be >= 1 "
                                 "(checkpoint_every >= 0)")


class LensTrainResult(NamedTuple):
    """What `train_tuned_lens` returns besides the lens."""

    steps: int
    """Steps done in total (including those before a resume)."""
    resumed_from: int
    """Step the run resumed from (0 for a fresh run)."""
    last_loss: float
    """Mean KL over trainable layers at the last step (nats)."""
    tokens: int
    """Token positions trained on by this call (steps since the resume x the batches' non-padding tokens)."""


def _batch_texts(texts: Sequence[str], order: list[int], step: int, size: int) -> list[str]:
    start = (step * size) % len(order)
    return [texts[order[(start + i) % len(order)]] for i in range(size)]


def _step_loss(lm: LoadedModel, lens: TunedLens, batch: list[str], cfg: TunedLensConfig) -> tuple[float, int]:
    """Backpropagate the batch's loss into the translators' .grad; return (the loss, its token positions)."""
    decoder = final_decoder(lm)
    layers = lens.trainable_layers()
    chunks = list(stream_chunks(lm, batch, cfg.max_length, batch_size=len(batch)))
    n_rows = sum(c.final_log_probs_NV.shape[0] for c in chunks)
    total = 0.0
    for chunk in chunks:
        for layer in layers:
            logp_NV = lens_log_probs(decoder, layer, chunk.streams_LND[layer], lens)
            loss = kl_from_log_probs(chunk.final_log_probs_NV, logp_NV).sum() / (n_rows * len(layers))
            loss.backward()
            total += float(loss.detach())
    return total, n_rows


def _save(ckpt: Checkpointer, step: int, lens: TunedLens, opt: torch.optim.Optimizer, cfg: TunedLensConfig) -> None:
    opt_tensors, opt_meta = optimizer_state_flat(opt)
    rng_tensors, rng_meta = rng_state()
    tensors = {"lens.weight": lens.weight_LDD, "lens.bias": lens.bias_LD, **opt_tensors, **rng_tensors}
    ckpt.save(step, tensors, {"step": step, "optimizer": opt_meta, "rng": rng_meta, "config": asdict(cfg)})


def _restore(ckpt: Checkpointer, lens: TunedLens, opt: torch.optim.Optimizer, cfg: TunedLensConfig) -> int:
    found = ckpt.latest_valid(required=("step", "optimizer", "rng", "config"))
    if found is None:
        return 0
    path, tensors, meta = found
    if meta["config"] != asdict(cfg):
        raise InterplabError(f"checkpoint {path} was written with other tuned-lens settings; use a new --out or the "
                             "same settings to resume")
    with torch.no_grad():
        lens.weight_LDD.copy_(tensors["lens.weight"])
        lens.bias_LD.copy_(tensors["lens.bias"])
    load_optimizer_state_flat(opt, tensors, meta["optimizer"])
    set_rng_state(tensors, meta["rng"])
    log.info("resumed the tuned lens from %s", path)
    return int(meta["step"])


def train_tuned_lens(lm: LoadedModel, texts: Sequence[str], cfg: TunedLensConfig | None = None,
                     folder: str | Path | None = None, on_step: StepCallback | None = None,
                     resume: bool = True) -> tuple[TunedLens, LensTrainResult]:
    """Train translators for every lens layer of `lm` on `texts`; with `folder`, checkpoints go to
    folder/checkpoints and metrics to folder/metrics.jsonl (and a rerun resumes when `resume`)."""
    cfg = cfg or TunedLensConfig()
    cfg.check()
    if not texts:
        raise InterplabError("the tuned lens needs training texts")
    final_decoder(lm)  # refuses encoders before any work
    seed_everything(cfg.seed)
    lens = TunedLens(lm.d_model, layer_labels(lm.n_layers), {"model": lm.name, "train": asdict(cfg)}).to(lm.device)
    opt = torch.optim.Adam(lens.parameters(), lr=cfg.lr)
    ckpt = Checkpointer(Path(folder) / "checkpoints", cfg.checkpoint_every) if folder and cfg.checkpoint_every else None
    start = _restore(ckpt, lens, opt, cfg) if ckpt is not None and resume else 0
    metrics = JsonlMetrics(Path(folder) / "metrics.jsonl", resume=start > 0) if folder else None
    order = torch.randperm(len(texts), generator=torch.Generator().manual_seed(cfg.seed)).tolist()
    with cpu_threads(lm.device, cfg.threads):
        frozen = [p for p in lm.model.parameters() if p.requires_grad]
        for p in frozen:
            p.requires_grad_(False)  # only the translators get gradients
        loss, tokens = float("nan"), 0
        try:
            for step in range(start, cfg.steps):
                for group in opt.param_groups:
                    group["lr"] = lr_at(step, cfg.steps, cfg.lr, cfg.warmup_steps, cfg.lr_decay)
                opt.zero_grad(set_to_none=True)
                loss, n_tokens = _step_loss(lm, lens, _batch_texts(texts, order, step, cfg.batch_size), cfg)
                tokens += n_tokens
                if not torch.isfinite(torch.tensor(loss)):
                    raise InterplabError(f"tuned lens training diverged at step {step + 1} (loss {loss}); lower --lr")
                opt.step()
                done = step + 1
                if metrics is not None and (done % cfg.log_every == 0 or done == cfg.steps):
                    metrics(done, {"loss": loss, "lr": opt.param_groups[0]["lr"]})
                if ckpt is not None and (ckpt.should_save(done) or done == cfg.steps):
                    _save(ckpt, done, lens, opt, cfg)
                if on_step is not None:
                    on_step(done, cfg.steps)
        finally:
            for p in frozen:
                p.requires_grad_(True)
    lens.eval()
    return lens, LensTrainResult(steps=cfg.steps, resumed_from=start, last_loss=loss, tokens=tokens)
