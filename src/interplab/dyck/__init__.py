"""The Dyck lab: a tiny transformer trained from scratch to tell balanced bracket strings and their depth,
and the tools that find its circuit (depth probes, head ablations, an SAE's depth latents)."""

from interplab.dyck.analysis import (
    ABLATIONS,
    DyckSAEConfig,
    accuracy,
    counting_evidence,
    depth_accuracy,
    depth_latents,
    depth_probe_accuracies,
    head_ablation_table,
    residuals_at_brackets,
    train_depth_sae,
)
from interplab.dyck.model import (
    DyckModelConfig,
    DyckOutput,
    DyckTransformer,
    depth_class,
    load_dyck_model,
    save_dyck_model,
)
from interplab.dyck.train import DyckTrainConfig, train_dyck_model

__all__ = [
    "ABLATIONS",
    "DyckModelConfig",
    "DyckOutput",
    "DyckSAEConfig",
    "DyckTrainConfig",
    "DyckTransformer",
    "accuracy",
    "counting_evidence",
    "depth_accuracy",
    "depth_class",
    "depth_latents",
    "depth_probe_accuracies",
    "head_ablation_table",
    "load_dyck_model",
    "residuals_at_brackets",
    "save_dyck_model",
    "train_depth_sae",
    "train_dyck_model",
]
