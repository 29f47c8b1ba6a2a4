"""Auto-interpretability: explain SAE latents with an LLM and score the explanations (detection, fuzzing)."""

from interplab.autointerp.clients import ClientConfig, ExplainerClient, LocalHFClient, OpenAICompatibleClient
from interplab.autointerp.examples import (
    Example,
    ExampleConfig,
    LatentExamples,
    collect_examples,
    split_held_out,
)
from interplab.autointerp.explain import ExplainConfig, Explanation, explain_latent
from interplab.autointerp.pipeline import AutointerpConfig, examples_from_db, run_autointerp
from interplab.autointerp.score import ScoreConfig, ScoreResult, detection_score, fuzzing_score
from interplab.autointerp.serve import ExplainServer, serve_client

__all__ = [
    "AutointerpConfig",
    "ClientConfig",
    "Example",
    "ExampleConfig",
    "ExplainConfig",
    "ExplainServer",
    "Explanation",
    "ExplainerClient",
    "LatentExamples",
    "LocalHFClient",
    "OpenAICompatibleClient",
    "ScoreConfig",
    "ScoreResult",
    "collect_examples",
    "detection_score",
    "examples_from_db",
    "explain_latent",
    "fuzzing_score",
    "run_autointerp",
    "serve_client",
    "split_held_out",
]
