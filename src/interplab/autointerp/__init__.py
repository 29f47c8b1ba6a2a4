"""Auto-interpretability: explain SAE latents (an LLM, or the token-statistics baseline) and score the
explanations with a judge (detection, fuzzing), by parsed replies or by log-probabilities of fixed answers."""

from interplab.autointerp.clients import ClientConfig, ExplainerClient, LocalHFClient, OpenAICompatibleClient
from interplab.autointerp.examples import (
    Example,
    ExampleConfig,
    LatentExamples,
    collect_examples,
    split_held_out,
)
from interplab.autointerp.explain import ExplainConfig, Explainer, Explanation, LLMExplainer, explain_latent
from interplab.autointerp.logprob import LogprobJudge
from interplab.autointerp.pipeline import (
    AutointerpConfig,
    examples_from_db,
    explainers_for,
    run_autointerp,
    spread,
    summarize,
)
from interplab.autointerp.score import Judge, ScoreConfig, ScoreResult, detection_score, fuzzing_score
from interplab.autointerp.serve import ExplainServer, serve_client
from interplab.autointerp.store_examples import StoreExampleConfig, examples_from_store
from interplab.autointerp.token_stats import TokenStatsConfig, TokenStatsExplainer, token_stats_text

__all__ = [
    "AutointerpConfig",
    "ClientConfig",
    "Example",
    "ExampleConfig",
    "ExplainConfig",
    "ExplainServer",
    "Explainer",
    "Explanation",
    "ExplainerClient",
    "Judge",
    "LLMExplainer",
    "LatentExamples",
    "LocalHFClient",
    "LogprobJudge",
    "OpenAICompatibleClient",
    "ScoreConfig",
    "ScoreResult",
    "StoreExampleConfig",
    "TokenStatsConfig",
    "TokenStatsExplainer",
    "collect_examples",
    "detection_score",
    "examples_from_db",
    "examples_from_store",
    "explain_latent",
    "explainers_for",
    "fuzzing_score",
    "run_autointerp",
    "serve_client",
    "spread",
    "split_held_out",
    "summarize",
    "token_stats_text",
]
