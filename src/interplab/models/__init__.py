"""Models: load any HF model (packaged SmolLM2/Gemma 3 GGUF included), name its hook points, capture and
edit activations."""

from interplab.models.hookpoints import HookPoint, hook_names, resolve_hook
from interplab.models.interventions import (
    ablate,
    ablate_mlps,
    add_vector,
    capture,
    replace_activation,
    run_to_capture,
    splice_sae,
    splice_transcoders,
)
from interplab.models.loading import LoadedModel, load_model
from interplab.models.packaged import interplab_home, packaged_model_dir, packaged_model_names

__all__ = [
    "HookPoint",
    "LoadedModel",
    "ablate",
    "ablate_mlps",
    "add_vector",
    "capture",
    "hook_names",
    "interplab_home",
    "load_model",
    "packaged_model_dir",
    "packaged_model_names",
    "replace_activation",
    "resolve_hook",
    "run_to_capture",
    "splice_sae",
    "splice_transcoders",
]
