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
- a `LogprobJudge` (a local model) never writes; each item gets a score and the AUROC of the scores
  (threshold-free) is reported beside the balanced accuracy. Items are class-balanced by construction,
  so the decision is calibrated per explanation: predict 1 above the median score of its own items.
  Why: SmolLM2-135M asked "Yes or No?" put every margin log P(Yes) - log P(No) of the demo SAE's
  latents below 0 (-1.6..-0.2), and their order did not follow the labels (AUROC 0.47), so no
  threshold helps. The default `method` "likelihood" asks what a small LM does well instead, predict
  text: an item's score is how much more likely its tokens become when the explanation precedes the
  excerpt ("A neuron that fires on 'Paris'. Text where it fires: ...") than after a neutral prefix,
  log P(token | explanation, text before) - log P(token | neutral prefix, text before):
  detection takes the largest gain over the excerpt, fuzzing the mean gain over the marked tokens.
  `method` "yes-no" keeps the question for larger local judges.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from interplab.autointerp.clients import ExplainerClient
from interplab.autointerp.examples import Example, LatentExamples
from interplab.autointerp.logprob import LogprobJudge
from interplab.autointerp.prompts import (
    Task,
    detection_messages,
    format_example,
    fuzzing_messages,
    parse_judgement,
    yes_no_messages,
)
from interplab.common import InterplabError, get_logger

log = get_logger(__name__)

METHODS = ("likelihood", "yes-no")

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
    method: str = "likelihood"
    """How a log-prob judge reads an explanation: 'likelihood' (how much more likely the excerpt's tokens
    become when the explanation precedes it) or 'yes-no' (log P(Yes) - log P(No) to a question)."""

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise InterplabError(f"method takes {' or '.join(METHODS)}, got {self.method!r}")


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
    """Log-prob judges: P(a label-1 item's score > a label-0 one's), ties count half; None otherwise."""
    threshold: float | None = None
    """Log-prob judges: the score (the median of the explanation's items) above which an item is predicted 1."""

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


EXPLAINED = "A neuron that {explanation}. Text where it fires:"
NEUTRAL = "A neuron. Text:"
"""Likelihood method: the prefixes an excerpt is read after, with and without the explanation."""


def _likelihood_scores(judge: LogprobJudge, explanation: str, items: list[Item], task: Task,
                       cfg: ScoreConfig) -> list[float]:
    """Per item, the log-probability its tokens gain from the explanation: the largest gain over the
    excerpt (detection), the mean gain over the marked tokens (fuzzing)."""
    texts = [it.example.text() for it in items]
    told = judge.text_logprobs(EXPLAINED.format(explanation=explanation.rstrip(".")), texts, cfg.batch_size)
    untold = judge.text_logprobs(NEUTRAL, texts, cfg.batch_size)
    scores = []
    for it, (logp_T, spans), (base_T, _) in zip(items, told, untold, strict=True):
        gain_T = logp_T - base_T
        if task == "detection":
            scores.append(float(gain_T.max()) if len(gain_T) else 0.0)
            continue
        ends = [len(t) for t in it.example.tokens]
        starts = [sum(ends[:i]) for i in range(len(ends))]
        marked = [(starts[i], starts[i] + ends[i]) for i in it.marks]
        hit = [t for t, (a, b) in enumerate(spans) if any(a < e and s < b for s, e in marked)]
        scores.append(float(gain_T[hit].mean()) if hit else 0.0)
    return scores


def _yes_no_margins(judge: LogprobJudge, explanation: str, items: list[Item], task: Task,
                    cfg: ScoreConfig) -> list[float]:
    """Per item, log P(Yes) - log P(No) to one question about its excerpt (marks shown)."""
    texts = [format_example(it.example, marked=it.marks) for it in items]
    prompts = [yes_no_messages(task, explanation, t) for t in texts]
    logp_NA = judge.answer_logprobs(prompts, ["Yes", "No"], batch_size=max(cfg.batch_size, 1))
    return (logp_NA[:, 0] - logp_NA[:, 1]).tolist()


def median_predictions(scores: Sequence[float]) -> tuple[list[int], float]:
    """(1 for the scores above their median, else 0; the median): on a class-balanced set, as many 1s as
    label-1 items when the scores differ."""
    threshold = statistics.median(scores) if scores else 0.0
    return [int(s > threshold) for s in scores], threshold


def _judge_logprob(judge: LogprobJudge, explanation: str, items: list[Item], task: Task,
                   cfg: ScoreConfig) -> ScoreResult:
    """Score every item by `cfg.method`, predict 1 above the median score, and report the scores' AUROC."""
    scorer = _likelihood_scores if cfg.method == "likelihood" else _yes_no_margins
    scores = scorer(judge, explanation, items, task, cfg)
    labels = [it.label for it in items]
    preds, threshold = median_predictions(scores)
    bacc, tpr, tnr = balanced_accuracy(labels, preds)
    area = auroc(labels, scores)
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
    """As many held-out activating windows (1) as silent ones (0), unmarked, shuffled."""
    n = min(len(activating(held_out)), len(held_out.random), cfg.max_examples)
    items = [Item(ex, [], 1) for ex in activating(held_out)[:n]]
    items += [Item(ex, [], 0) for ex in held_out.random[:n]]
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
    """Held-out activating windows, every other one with its marks moved to random tokens (0), as many of
    each label, shuffled."""
    rng = random.Random(cfg.seed)
    items = []
    for i, ex in enumerate(activating(held_out)[: 2 * cfg.max_examples]):
        true_marks = [j for j, a in enumerate(ex.acts) if a > 0]
        fuzzed = _fuzzed_marks(ex, rng) if i % 2 else None
        if fuzzed is not None:
            items.append(Item(ex, fuzzed, 0))
        elif true_marks:
            items.append(Item(ex, true_marks, 1))
    n = min(sum(it.label for it in items), sum(1 - it.label for it in items))
    items = [it for it in items if it.label == 1][:n] + [it for it in items if it.label == 0][:n]
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
