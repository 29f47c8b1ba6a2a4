"""Models: load any HF model, name its hook points, capture and edit activations."""

from interplab.models.hookpoints import HookPoint, hook_names, resolve_hook
from interplab.models.interventions import (
    ablate,
    add_vector,
    capture,
    replace_activation,
    run_to_capture,
    splice_sae,
)
from interplab.models.loading import LoadedModel, load_model

__all__ = [
    "HookPoint",
    "LoadedModel",
    "ablate",
    "add_vector",
    "capture",
    "hook_names",
    "load_model",
    "replace_activation",
    "resolve_hook",
    "run_to_capture",
    "splice_sae",
]
