"""Architecture name -> (SAE class, config class). Each architecture file registers itself:

    @dataclass
    class MyConfig(SAEConfig):
        architecture: ClassVar[str] = "mine"
        ...
    @register_sae
    class MySAE(SAE):
        config_class = MyConfig

so a new architecture is one file (plus its import in saes/__init__.py, which loads it).
"""

from __future__ import annotations

from typing import Any

from interplab.common import InterplabError
from interplab.saes.base import SAE, SAEConfig

SAE_CLASSES: dict[str, type[SAE]] = {}
"""Registered SAE classes by architecture name."""


def register_sae(cls: type[SAE]) -> type[SAE]:
    """Class decorator filing an SAE class (and its `config_class`) under `config_class.architecture`."""
    name = cls.config_class.architecture
    if not name:
        raise InterplabError(f"{cls.__name__}.config_class must set a ClassVar 'architecture' name")
    if name in SAE_CLASSES and SAE_CLASSES[name] is not cls:
        raise InterplabError(f"SAE architecture {name!r} is already registered by {SAE_CLASSES[name]}")
    SAE_CLASSES[name] = cls
    return cls


def _known() -> str:
    return ", ".join(sorted(SAE_CLASSES))


def config_class(architecture: str) -> type[SAEConfig]:
    """The config class of a registered architecture."""
    try:
        return SAE_CLASSES[architecture].config_class
    except KeyError:
        raise InterplabError(f"unknown SAE architecture {architecture!r}; choose one of {_known()}") from None


def sae_config(architecture: str, **fields: Any) -> SAEConfig:
    """A config of the named architecture, e.g. `sae_config("topk", d_in=64, d_sae=256, k=8)`."""
    cls = config_class(architecture)
    try:
        return cls(**fields)
    except TypeError as exc:
        raise InterplabError(f"{architecture} SAE config: {exc}") from None


def make_sae(cfg: SAEConfig) -> SAE:
    """Build a freshly initialised SAE of `cfg`'s architecture."""
    try:
        cls = SAE_CLASSES[cfg.architecture]
    except KeyError:
        raise InterplabError(f"unknown SAE architecture {cfg.architecture!r}; choose one of {_known()}") from None
    return cls(cfg)


def architecture_from_saelens(name: str) -> str:
    """Our architecture for a SAELens cfg.json `architecture` name."""
    for arch, cls in SAE_CLASSES.items():
        if name in cls.config_class.saelens_reads:
            return arch
    readable = sorted(n for c in SAE_CLASSES.values() for n in c.config_class.saelens_reads)
    raise InterplabError(f"SAELens architecture {name!r} is not supported; supported: {readable}")
