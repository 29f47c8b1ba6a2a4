"""Score an explanation by how well an LLM judge can use it on held-out examples (Paulo et al. 2024,
"Automatically interpreting millions of features in LLMs", arXiv:2410.13928).

Detection:
1. Mix held-out activating windows (label 1) with windows where the latent never fires (label 0).
2. Show them unmarked, in shuffled batches, with the explanation; the judge says which ones fire.
Fuzzing:
1. Take held-out activating windows; mark the truly activating tokens in half of them (label 1) and as
   many random non-activating tokens in the other half (label 0).
2. The judge says for each whether the marks match the explanation.
Both: balanced accuracy = (true-positive rate + true-negative rate) / 2, so 0.5 is chance whatever the
class balance. Unreadable replies predict 0 for their batch and are counted in `parse_failures`.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from interplab.autointerp.clients import ExplainerClient
from interplab.autointerp.examples import Example, LatentExamples
from interplab.autointerp.prompts import detection_messages, fuzzing_messages, parse_judgement
from interplab.common import get_logger

log = get_logger(__name__)


@dataclass
class ScoreConfig:
    """How many examples the judge sees, and how."""

    batch_size: int = 5
    """Examples per judge prompt: small batches keep small judges on track."""
    max_examples: int = 20
    """Examples per class at most (cost control)."""
    seed: int = 0
    """Seed for shuffling and random fuzzing marks."""
    max_tokens: int | None = None
    """Judge reply cap; None allows just the list (8 + 4 tokens per example). Raise it for judges
    that reason before answering."""


@dataclass
class ScoreResult:
    """One scoring method's outcome on one explanation."""

    balanced_accuracy: float
    """(TPR + TNR) / 2; NaN when a class is empty."""
    tpr: float
    """Fraction of label-1 examples predicted 1."""
    tnr: float
    """Fraction of label-0 examples predicted 0."""
    n: int
    """Examples judged."""
    parse_failures: int
    """Judge replies that could not be read (their examples predicted 0)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def balanced_accuracy(labels: Sequence[int], preds: Sequence[int]) -> tuple[float, float, float]:
    """(balanced accuracy, TPR, TNR) of 0/1 predictions; NaN parts when a class is absent."""
    pos = [p for y, p in zip(labels, preds, strict=True) if y == 1]
    neg = [p for y, p in zip(labels, preds, strict=True) if y == 0]
    tpr = sum(pos) / len(pos) if pos else float("nan")
    tnr = (len(neg) - sum(neg)) / len(neg) if neg else float("nan")
    return (tpr + tnr) / 2, tpr, tnr


def _judge(client: ExplainerClient, items: list[tuple[Any, int]], build, cfg: ScoreConfig) -> ScoreResult:
    """Ask the judge in batches; `build(batch_items)` makes the messages; returns balanced accuracy."""
    labels, preds, failures = [], [], 0
    for start in range(0, len(items), cfg.batch_size):
        batch = items[start : start + cfg.batch_size]
        reply = client.complete(build(batch), max_tokens=cfg.max_tokens or 8 + 4 * len(batch))
        judged = parse_judgement(reply, len(batch))
        if judged is None:
            failures += 1
            log.debug("unreadable judge reply %r", reply[:200])
            judged = [0] * len(batch)
        labels += [label for _, label in batch]
        preds += judged
    bacc, tpr, tnr = balanced_accuracy(labels, preds)
    return ScoreResult(bacc, tpr, tnr, len(labels), failures)


def activating(held_out: LatentExamples) -> list[Example]:
    return held_out.top + held_out.quantile


def detection_score(
    client: ExplainerClient, explanation: str, held_out: LatentExamples, cfg: ScoreConfig | None = None
) -> ScoreResult:
    """Can the judge tell activating from non-activating windows given only the explanation?"""
    cfg = cfg or ScoreConfig()
    rng = random.Random(cfg.seed)
    items = [(ex, 1) for ex in activating(held_out)[: cfg.max_examples]]
    items += [(ex, 0) for ex in held_out.random[: cfg.max_examples]]
    rng.shuffle(items)
    return _judge(client, items, lambda batch: detection_messages(explanation, [ex for ex, _ in batch]), cfg)


def _fuzzed_marks(example: Example, rng: random.Random) -> list[int] | None:
    """As many random non-activating, non-blank token indices as the example has activating ones."""
    n_true = sum(1 for a in example.acts if a > 0)
    pool = [
        i for i, (t, a) in enumerate(zip(example.tokens, example.acts, strict=True)) if a <= 0 and t.strip()
    ]
    if n_true == 0 or len(pool) < n_true:
        return None
    return sorted(rng.sample(pool, n_true))


def fuzzing_score(
    client: ExplainerClient, explanation: str, held_out: LatentExamples, cfg: ScoreConfig | None = None
) -> ScoreResult:
    """Can the judge tell correctly marked activating tokens from randomly marked ones?"""
    cfg = cfg or ScoreConfig()
    rng = random.Random(cfg.seed)
    examples = activating(held_out)[: 2 * cfg.max_examples]
    items: list[tuple[tuple[Example, list[int]], int]] = []
    for i, ex in enumerate(examples):
        true_marks = [j for j, a in enumerate(ex.acts) if a > 0]
        fuzzed = _fuzzed_marks(ex, rng) if i % 2 else None
        if fuzzed is not None:
            items.append(((ex, fuzzed), 0))
        elif true_marks:
            items.append(((ex, true_marks), 1))
    rng.shuffle(items)

    def build(batch):
        return fuzzing_messages(explanation, [ex for (ex, _), _ in batch], [m for (_, m), _ in batch])

    return _judge(client, items, build, cfg)
