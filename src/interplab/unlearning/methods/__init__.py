"""Unlearning methods behind one interface: `unlearn(lm, data, "rmu", cfg, seed) -> ServedModel`."""

from __future__ import annotations

from typing import Any

from interplab.common import InterplabError
from interplab.models import LoadedModel
from interplab.unlearning.methods.base import Method, UnlearningData
from interplab.unlearning.methods.gradient import (
    GradientAscentConfig,
    GradientDifferenceConfig,
    NPOConfig,
    gradient_ascent,
    gradient_difference,
    npo,
)
from interplab.unlearning.methods.output_block import OutputBlockConfig, output_block
from interplab.unlearning.methods.rmu import RMUConfig, rmu
from interplab.unlearning.methods.sae_clamp import SAEClampConfig, sae_clamp
from interplab.unlearning.served import ServedModel

METHODS: dict[str, Method] = {m.name: m for m in (
    Method("gradient-ascent", GradientAscentConfig, gradient_ascent, "gradient ascent on the forget set"),
    Method("gradient-difference", GradientDifferenceConfig, gradient_difference,
           "ascent on the forget set + descent on the retain set"),
    Method("npo", NPOConfig, npo, "negative preference optimisation + retain loss (Zhang et al. 2024)"),
    Method("rmu", RMUConfig, rmu, "push forget activations at one layer to a random vector (Li et al. 2024)"),
    Method("sae-clamp", SAEClampConfig, sae_clamp, "clamp SAE latents that fire on the forget set (Farrell et al. 2024)"),
    Method("output-block", OutputBlockConfig, output_block, "FAKE control: block the answer tokens at the output"),
)}
"""Every method by name, in the order tables list them."""


def method(name: str) -> Method:
    if name not in METHODS:
        raise InterplabError(f"unknown unlearning method {name!r}; use one of {', '.join(METHODS)}")
    return METHODS[name]


def unlearn(lm: LoadedModel, data: UnlearningData, name: str, cfg: Any = None, seed: int = 0) -> ServedModel:
    """Apply method `name` (config `cfg`, default when None) to `lm` in place; return the served model."""
    m = method(name)
    cfg = cfg if cfg is not None else m.config()
    if not isinstance(cfg, m.config):
        raise InterplabError(f"method {name} takes a {m.config.__name__}, not a {type(cfg).__name__}")
    return m.run(lm, data, cfg, seed)


__all__ = [
    "METHODS",
    "GradientAscentConfig",
    "GradientDifferenceConfig",
    "Method",
    "NPOConfig",
    "OutputBlockConfig",
    "RMUConfig",
    "SAEClampConfig",
    "UnlearningData",
    "method",
    "unlearn",
]
