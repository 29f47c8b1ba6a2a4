"""SAE evaluations: reconstruction (FVU, MSE, CE/KL recovered), sparsity (L0, dead, dense), ground truth (MMCS), feature absorption."""

from interplab.evals.absorption import AbsorptionResult, hierarchy_absorption
from interplab.evals.first_letter import FirstLetterConfig, FirstLetterResult, first_letter_absorption
from interplab.evals.ground_truth import Recovery, cosine_matrix, mmcs, per_feature_recovery
from interplab.evals.meta_sae import MetaLatents, MetaSAEConfig, meta_of, shared_links, train_meta_sae
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
    "AbsorptionResult",
    "FirstLetterConfig",
    "FirstLetterResult",
    "LossRecovered",
    "MetaLatents",
    "MetaSAEConfig",
    "ReconstructionAccumulator",
    "ReconstructionStats",
    "Recovery",
    "SAEEvaluation",
    "SparsityAccumulator",
    "SparsityStats",
    "cosine_matrix",
    "evaluate_sae",
    "evaluate_transcoders",
    "first_letter_absorption",
    "fvu",
    "hierarchy_absorption",
    "log_frequency_histogram",
    "loss_recovered",
    "loss_recovered_on_texts",
    "meta_of",
    "mmcs",
    "per_feature_recovery",
    "shared_links",
    "sparsity_stats",
    "train_meta_sae",
]
