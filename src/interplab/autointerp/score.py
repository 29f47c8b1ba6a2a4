"""Score an explanation by how well a judge model can use it on held-out examples (Paulo et al. 2024,
"Automatically interpreting millions of features in LLMs", arXiv:2410.13928).

Detection:
1. Mix held-out activating windows (label 1) with windows where the latent never fires (label 0).
2. Show them unmarked with the explanation; the judge says which ones fire.
Fuzzing:
1. Take held-out activating windows; mark the truly activating tokens in half of them (label 1) and as
   many random non-activating tokens in the other half (label 0).
2. The judge says for each whether the marks match the explanation.
Both: balanced accuracy = (true-positive rate + true-negative rate) / 2, so 0.5 is chance whatever the
class balance.

Two kinds of judge:
- a chat client (`ExplainerClient`, local or HTTP) sees shuffled batches and answers a list of 0/1;
  unreadable replies predict 0 for their batch and are counted in `parse_failures`;
- a `LogprobJudge` (a local model) is asked about one window at a time and never writes: its answer
  is the margin log P(Yes) - log P(No). A small model's margins lean to one side whatever the text, so
  the threshold is the margin it gives to a content-free window ("N/A") under the same explanation
  (contextual calibration, Zhao et al. 2021, arXiv:2102.09690): a window is predicted 1 when the
  judge says Yes more readily than it does to no text at all. The margins' AUROC (threshold-free) is
  reported beside the balanced accuracy.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from interplab.autointerp.clients import ExplainerClient
from interplab.autointerp.examples import Example, LatentExamples
from interplab.autointerp.logprob import LogprobJudge
from interplab.autointerp.prompts import (
    CONTENT_FREE,
    Task,
    detection_messages,
    format_example,
    fuzzing_messages,
    parse_judgement,
    yes_no_messages,
)
from interplab.common import get_logger

log = get_logger(__name__)

Judge = ExplainerClient | LogprobJudge
"""What scores explanations: a chat client (parsed replies) or a local model read by log-probabilities."""


@dataclass
class ScoreConfig:
    """How many examples the judge sees, and how."""

    batch_size: int = 5
    """Examples per judge prompt (text judges: small batches keep small judges on track), or prompts
    per forward pass (log-prob judges)."""
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
    auroc: float | None = None
    """Log-prob judges: P(a label-1 example's margin > a label-0 one's), ties count half; None otherwise."""
    threshold: float | None = None
    """Log-prob judges: the calibrated margin (log P(Yes) - log P(No) on a content-free window)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def balanced_accuracy(labels: Sequence[int], preds: Sequence[int]) -> tuple[float, float, float]:
    """(balanced accuracy, TPR, TNR) of 0/1 predictions; NaN parts when a class is absent."""
    pos = [p for y, p in zip(labels, preds, strict=True) if y == 1]
    neg = [p for y, p in zip(labels, preds, strict=True) if y == 0]
    tpr = sum(pos) / len(pos) if pos else float("nan")
    tnr = (len(neg) - sum(neg)) / len(neg) if neg else float("nan")
    return (tpr + tnr) / 2, tpr, tnr


@dataclass
class Item:
    """One window shown to the judge, with the tokens marked in it and the right answer."""

    example: Example
    marks: list[int]
    """Token indices marked `<<like this>>` (none for detection)."""
    label: int
    """1: the latent fires here (detection) / the marks are the activating tokens (fuzzing)."""


def _judge_text(client: ExplainerClient, explanation: str, items: list[Item], task: Task,
                cfg: ScoreConfig) -> ScoreResult:
    """Ask a chat judge in batches for a list of 0/1 and parse it."""
    labels, preds, failures = [], [], 0
    for start in range(0, len(items), cfg.batch_size):
        batch = items[start : start + cfg.batch_size]
        if task == "detection":
            messages = detection_messages(explanation, [it.example for it in batch])
        else:
            messages = fuzzing_messages(explanation, [it.example for it in batch], [it.marks for it in batch])
        reply = client.complete(messages, max_tokens=cfg.max_tokens or 8 + 4 * len(batch))
        judged = parse_judgement(reply, len(batch))
        if judged is None:
            failures += 1
            log.debug("unreadable judge reply %r", reply[:200])
            judged = [0] * len(batch)
        labels += [it.label for it in batch]
        preds += judged
    bacc, tpr, tnr = balanced_accuracy(labels, preds)
    return ScoreResult(bacc, tpr, tnr, len(labels), failures)


def auroc(labels: Sequence[int], scores: Sequence[float]) -> float | None:
    """Probability that a random label-1 score exceeds a random label-0 one (ties half); None if a class is empty."""
    pos = [s for y, s in zip(labels, scores, strict=True) if y == 1]
    neg = [s for y, s in zip(labels, scores, strict=True) if y == 0]
    if not pos or not neg:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def _judge_logprob(judge: LogprobJudge, explanation: str, items: list[Item], task: Task,
                   cfg: ScoreConfig) -> ScoreResult:
    """One Yes/No question per window, answered by log-probabilities, calibrated on a content-free window."""
    texts = [format_example(it.example, marked=it.marks) for it in items]
    prompts = [yes_no_messages(task, explanation, t) for t in [CONTENT_FREE, *texts]]
    logp_NA = judge.answer_logprobs(prompts, ["Yes", "No"], batch_size=max(cfg.batch_size, 1))
    margins = (logp_NA[:, 0] - logp_NA[:, 1]).tolist()
    threshold, margins = margins[0], margins[1:]
    labels = [it.label for it in items]
    preds = [int(m > threshold) for m in margins]
    bacc, tpr, tnr = balanced_accuracy(labels, preds)
    area = auroc(labels, margins)
    return ScoreResult(bacc, tpr, tnr, len(labels), 0, None if area is None else round(area, 4),
                       round(threshold, 4))


def judge_items(judge: Judge, explanation: str, items: list[Item], task: Task, cfg: ScoreConfig) -> ScoreResult:
    """Score `items` with whichever kind of judge was given."""
    if isinstance(judge, LogprobJudge):
        return _judge_logprob(judge, explanation, items, task, cfg)
    return _judge_text(judge, explanation, items, task, cfg)


def activating(held_out: LatentExamples) -> list[Example]:
    return held_out.top + held_out.quantile


def detection_items(held_out: LatentExamples, cfg: ScoreConfig) -> list[Item]:
    """Held-out activating windows (1) and silent ones (0), unmarked, shuffled."""
    items = [Item(ex, [], 1) for ex in activating(held_out)[: cfg.max_examples]]
    items += [Item(ex, [], 0) for ex in held_out.random[: cfg.max_examples]]
    random.Random(cfg.seed).shuffle(items)
    return items


def _fuzzed_marks(example: Example, rng: random.Random) -> list[int] | None:
    """As many random non-activating, non-blank token indices as the example has activating ones."""
    n_true = sum(1 for a in example.acts if a > 0)
    pool = [
        i for i, (t, a) in enumerate(zip(example.tokens, example.acts, strict=True)) if a <= 0 and t.strip()
    ]
    if n_true == 0 or len(pool) < n_true:
        return None
    return sorted(rng.sample(pool, n_true))


def fuzzing_items(held_out: LatentExamples, cfg: ScoreConfig) -> list[Item]:
    """Held-out activating windows, every other one with its marks moved to random tokens (0), shuffled."""
    rng = random.Random(cfg.seed)
    items = []
    for i, ex in enumerate(activating(held_out)[: 2 * cfg.max_examples]):
        true_marks = [j for j, a in enumerate(ex.acts) if a > 0]
        fuzzed = _fuzzed_marks(ex, rng) if i % 2 else None
        if fuzzed is not None:
            items.append(Item(ex, fuzzed, 0))
        elif true_marks:
            items.append(Item(ex, true_marks, 1))
    rng.shuffle(items)
    return items


def detection_score(
    judge: Judge, explanation: str, held_out: LatentExamples, cfg: ScoreConfig | None = None
) -> ScoreResult:
    """Can the judge tell activating from non-activating windows given only the explanation?"""
    cfg = cfg or ScoreConfig()
    return judge_items(judge, explanation, detection_items(held_out, cfg), "detection", cfg)


def fuzzing_score(
    judge: Judge, explanation: str, held_out: LatentExamples, cfg: ScoreConfig | None = None
) -> ScoreResult:
    """Can the judge tell correctly marked activating tokens from randomly marked ones?"""
    cfg = cfg or ScoreConfig()
    return judge_items(judge, explanation, fuzzing_items(held_out, cfg), "fuzzing", cfg)
