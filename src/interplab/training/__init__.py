"""SAE training: the `fit` loop, schedules, pickle-free checkpoints, torchrun data parallelism."""

from interplab.training.checkpoint import Checkpointer
from interplab.training.schedules import lr_at, sparsity_scale_at
from interplab.training.trainer import DeadLatentTracker, TrainConfig, TrainResult, fit

__all__ = ["Checkpointer", "DeadLatentTracker", "TrainConfig", "TrainResult", "fit", "lr_at", "sparsity_scale_at"]
