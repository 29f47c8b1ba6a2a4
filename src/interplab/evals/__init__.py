"""SAE evaluations: reconstruction (FVU, MSE, CE/KL recovered), sparsity (L0, dead, dense), ground truth (MMCS)."""

from interplab.evals.ground_truth import Recovery, cosine_matrix, mmcs, per_feature_recovery
from interplab.evals.reconstruction import (
    LossRecovered,
    ReconstructionAccumulator,
    ReconstructionStats,
    SAEEvaluation,
    evaluate_sae,
    fvu,
    loss_recovered,
    loss_recovered_on_texts,
)
from interplab.evals.sparsity import (
    SparsityAccumulator,
    SparsityStats,
    log_frequency_histogram,
    sparsity_stats,
)
from interplab.evals.transcoders import evaluate_transcoders

__all__ = [
    "LossRecovered",
    "ReconstructionAccumulator",
    "ReconstructionStats",
    "Recovery",
    "SAEEvaluation",
    "SparsityAccumulator",
    "SparsityStats",
    "cosine_matrix",
    "evaluate_sae",
    "evaluate_transcoders",
    "fvu",
    "log_frequency_histogram",
    "loss_recovered",
    "loss_recovered_on_texts",
    "mmcs",
    "per_feature_recovery",
    "sparsity_stats",
]
