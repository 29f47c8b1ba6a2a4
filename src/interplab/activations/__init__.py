"""Activations: cache a model's activations to disk, read them back, stream shuffled training batches."""

from interplab.activations.buffer import ActivationBuffer, BufferConfig
from interplab.activations.exclusion import ExclusionRule
from interplab.activations.store import ActivationStore, Manifest, Shard, StoreHeader, StoreWriter

__all__ = [
    "ActivationBuffer",
    "ActivationStore",
    "BufferConfig",
    "CacheConfig",
    "ExclusionRule",
    "Manifest",
    "Shard",
    "StoreHeader",
    "StoreWriter",
    "cache_activations",
]


def __getattr__(name: str):
    # cache.py imports the models stack (transformers); load it only when asked for.
    if name in ("CacheConfig", "cache_activations"):
        from interplab.activations import cache

        return getattr(cache, name)
    raise AttributeError(name)
