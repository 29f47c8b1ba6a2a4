"""Write a natural-language explanation of one latent from its examples (Bills et al. 2023).

1. Take the explain half of the latent's examples (`split_held_out`): strongest first, then a few
   quantile samples so the explainer also sees how weak activations look.
2. Show them with activating tokens marked `<<like this>>` plus the strongest tokens and activations.
3. Ask the explainer LLM for one line `Explanation: ...` and parse it (tolerantly).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from interplab.autointerp.clients import ExplainerClient
from interplab.autointerp.examples import Example, LatentExamples
from interplab.autointerp.prompts import explain_messages, parse_explanation
from interplab.common import InterplabError


@dataclass
class ExplainConfig:
    """What the explainer sees."""

    n_top: int = 6
    """Top examples shown (strongest first)."""
    n_quantile: int = 4
    """Quantile examples shown after them."""
    max_tokens: int = 96
    """Reply length cap (a reasoning sentence plus the explanation line)."""


@dataclass
class Explanation:
    """An explanation and the reply it was parsed from."""

    text: str
    """The parsed one-line explanation."""
    reply: str
    """The explainer's full reply (kept for auditing odd explanations)."""
    n_examples: int
    """Examples shown to the explainer."""


class Explainer(Protocol):
    """Anything that turns a latent's examples into an explanation (an LLM, token statistics, ...)."""

    name: str

    def explain(self, examples: LatentExamples) -> Explanation: ...


def explain_examples(examples: LatentExamples, cfg: ExplainConfig) -> list[Example]:
    """The examples the explainer is shown: top first, then quantile samples."""
    shown = examples.top[: cfg.n_top] + examples.quantile[: cfg.n_quantile]
    if not shown:
        raise InterplabError(
            "the latent has no activating examples to explain; pick a latent that fires on --data"
        )
    return shown


def explain_latent(
    client: ExplainerClient, examples: LatentExamples, cfg: ExplainConfig | None = None
) -> Explanation:
    """Ask `client` to explain the latent behind `examples`."""
    cfg = cfg or ExplainConfig()
    shown = explain_examples(examples, cfg)
    reply = client.complete(explain_messages(shown), max_tokens=cfg.max_tokens)
    return Explanation(parse_explanation(reply), reply, len(shown))


class LLMExplainer:
    """An explainer LLM behind any `ExplainerClient` (a local model or an OpenAI-compatible server)."""

    def __init__(self, client: ExplainerClient, cfg: ExplainConfig | None = None):
        self.client = client
        self.cfg = cfg or ExplainConfig()
        self.name = client.name

    def explain(self, examples: LatentExamples) -> Explanation:
        return explain_latent(self.client, examples, self.cfg)
