"""Architecture name -> SAE class. New architectures register themselves with `@register_sae("name")`."""

from __future__ import annotations

from collections.abc import Callable

from interplab.common import InterplabError
from interplab.saes.base import SAE, SAEConfig

SAE_CLASSES: dict[str, type[SAE]] = {}
"""Registered architectures by name."""


def register_sae(name: str) -> Callable[[type[SAE]], type[SAE]]:
    """Class decorator adding an SAE class to the registry under `name`."""

    def deco(cls: type[SAE]) -> type[SAE]:
        if name in SAE_CLASSES and SAE_CLASSES[name] is not cls:
            raise InterplabError(f"SAE architecture {name!r} is already registered by {SAE_CLASSES[name]}")
        SAE_CLASSES[name] = cls
        cls.architecture_name = name
        return cls

    return deco


def make_sae(cfg: SAEConfig) -> SAE:
    """Build a freshly initialised SAE of `cfg.architecture`."""
    try:
        cls = SAE_CLASSES[cfg.architecture]
    except KeyError:
        raise InterplabError(
            f"unknown SAE architecture {cfg.architecture!r}; choose one of {sorted(SAE_CLASSES)}"
        ) from None
    return cls(cfg)
