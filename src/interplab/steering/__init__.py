"""Steering: vectors from contrast pairs or SAE latents, added at a hook in forward passes and generation."""

from interplab.steering.apply import GenerationSettings, generate, generate_steered, steer
from interplab.steering.compare import write_cosine_report
from interplab.steering.sweep import KeywordTarget, ProbeTarget, SweepConfig, perplexity, sweep, write_sweep
from interplab.steering.units import DEFAULT_COEF, DEFAULT_SWEEP, calibrate, hook_median_norm
from interplab.steering.vectors import (
    ContrastConfig,
    ContrastPair,
    SteeringVector,
    cosine_comparison,
    from_contrast_pairs,
    from_sae_latent,
    load_vector,
    read_pairs,
    save_vector,
)

__all__ = [
    "DEFAULT_COEF",
    "DEFAULT_SWEEP",
    "ContrastConfig",
    "ContrastPair",
    "GenerationSettings",
    "KeywordTarget",
    "ProbeTarget",
    "SteeringVector",
    "SweepConfig",
    "calibrate",
    "cosine_comparison",
    "from_contrast_pairs",
    "from_sae_latent",
    "generate",
    "generate_steered",
    "hook_median_norm",
    "load_vector",
    "perplexity",
    "read_pairs",
    "save_vector",
    "steer",
    "sweep",
    "write_cosine_report",
    "write_sweep",
]
