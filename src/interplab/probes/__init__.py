"""Probes: logistic, contrast and CCS probes on residual streams and SAE latents, and how they generalize."""

from interplab.probes.ccs import CCSConfig, CCSProbe, fit_ccs, random_direction_probe
from interplab.probes.contrast import ContrastProbe, contrast_from_texts, evaluate_contrast, fit_contrast
from interplab.probes.directions import (
    combined_decoder_direction,
    cosine_matrix,
    decoder_alignment,
    probe_cosines,
)
from interplab.probes.features import FeatureConfig, extract_features, hook_name
from interplab.probes.generalization import GeneralizationResult, SplitData, generalization_matrix
from interplab.probes.linear import (
    LinearProbe,
    LinearProbeConfig,
    ProbeMetrics,
    auroc,
    evaluate,
    stratified_split,
    train_linear_probe,
)
from interplab.probes.multiclass import SoftmaxProbe, train_softmax_probe
from interplab.probes.sae_probes import (
    SparseProbe,
    encode_latents,
    fit_single_latents,
    k_sparse_sweep,
    rank_latents,
    train_sparse_probe,
)

__all__ = [
    "CCSConfig",
    "CCSProbe",
    "ContrastProbe",
    "FeatureConfig",
    "GeneralizationResult",
    "LinearProbe",
    "LinearProbeConfig",
    "ProbeMetrics",
    "SoftmaxProbe",
    "SparseProbe",
    "SplitData",
    "auroc",
    "combined_decoder_direction",
    "contrast_from_texts",
    "cosine_matrix",
    "decoder_alignment",
    "encode_latents",
    "evaluate",
    "evaluate_contrast",
    "extract_features",
    "fit_ccs",
    "fit_contrast",
    "fit_single_latents",
    "generalization_matrix",
    "hook_name",
    "k_sparse_sweep",
    "probe_cosines",
    "random_direction_probe",
    "rank_latents",
    "stratified_split",
    "train_linear_probe",
    "train_softmax_probe",
    "train_sparse_probe",
]
