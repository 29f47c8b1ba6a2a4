"""Metrics of a served model: forget and retain accuracy in every form, and fluency.

Forms (see interplab.data.synthetic.fictional_people): `qa` (trained question), `paraphrase` (held-out
question), `mc` (four options, scored by likelihood). For qa and paraphrase both exact match (greedy
decoding gives the answer) and answer probability; for mc the accuracy of the most likely option.
Chance levels are measured on the same people, so a table can say how far above chance each number
is: `chance_accuracy` is what the best constant answer per attribute scores on them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from interplab.data.synthetic.fictional_people import ATTRIBUTES, PeopleConfig, Person, items
from interplab.unlearning.scoring import perplexity, score_answers, score_choices
from interplab.unlearning.served import ServedModel


@dataclass
class SetAccuracy:
    """Accuracy of one set of people (forget or retain) in every form."""

    qa_em: float
    """Exact match on the trained question form."""
    qa_prob: float
    """Mean p(answer | question) on the trained question form."""
    paraphrase_em: float
    """Exact match on the held-out question form."""
    paraphrase_prob: float
    """Mean p(answer | question) on the held-out question form."""
    mc: float
    """Multiple-choice accuracy (4 options, chance 0.25)."""


def set_accuracy(served: ServedModel, people: list[Person], cfg: PeopleConfig, with_filter: bool = True) -> SetAccuracy:
    qa = score_answers(served, items(people, "qa", cfg), with_filter)
    para = score_answers(served, items(people, "paraphrase", cfg), with_filter)
    mc = score_choices(served, items(people, "mc", cfg), with_filter)
    return SetAccuracy(qa.accuracy(), qa.mean_prob(), para.accuracy(), para.mean_prob(), float(mc.float().mean()))


def qa_accuracy(served: ServedModel, people: list[Person], cfg: PeopleConfig, with_filter: bool = False) -> float:
    """Exact match on the trained question form (what the attacks measure recovery with)."""
    return score_answers(served, items(people, "qa", cfg), with_filter).accuracy()


def chance_accuracy(asked: list[Person]) -> float:
    """Exact match of the best constant answer per attribute on `asked` (the share of its most common
    value among them): no model that knows nobody beats it except by luck. It is an upper bound on what
    a constant guess scores, so measuring recovery against it never mistakes a prior for knowledge."""
    hits = sum(Counter(p.value(a) for p in asked).most_common(1)[0][1] for a in ATTRIBUTES)
    return hits / (len(ATTRIBUTES) * len(asked))


def fluency(served: ServedModel, texts: list[str], max_tokens: int) -> float:
    """Perplexity on held-out text, as served."""
    return perplexity(served, texts, with_filter=True, max_tokens=max_tokens)


def served_metrics(served: ServedModel, forget: list[Person], retain: list[Person], cfg: PeopleConfig,
                   texts: list[str], max_tokens: int) -> dict[str, Any]:
    """Forget and retain accuracy in every form plus held-out perplexity, all as served."""
    f, r = set_accuracy(served, forget, cfg), set_accuracy(served, retain, cfg)
    out = {f"forget_{k}": v for k, v in vars(f).items()}
    out.update({f"retain_{k}": v for k, v in vars(r).items()})
    out["fluency_ppl"] = fluency(served, texts, max_tokens)
    return out
