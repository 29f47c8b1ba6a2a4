"""Configs for tests that run one body over every architecture: each gets the fields it has."""

from __future__ import annotations

import dataclasses
from typing import Any

from interplab.saes import SAEConfig, config_class


def config_for(arch: str, **fields: Any) -> SAEConfig:
    """A config of `arch` from `fields`, keeping those the architecture declares (k for TopK,
    l1_coeff for ReLU, ...), so a parametrized test can name every architecture's knobs at once."""
    cls = config_class(arch)
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in fields.items() if k in names})
