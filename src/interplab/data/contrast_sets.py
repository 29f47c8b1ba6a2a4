"""Built-in contrast sets for steering and probing: pairs of texts that differ in one concept.

Each set is a list of (positive, negative) texts with the same shape, so their activation difference
isolates the concept; `prompts` are neutral openings to steer from and `keywords` mark the concept in
generated text (the sweep's target). Users bring their own sets as JSONL (`steer build --pairs`).
"""

from __future__ import annotations

from dataclasses import dataclass

from interplab.common import InterplabError


@dataclass(frozen=True)
class ContrastSet:
    """A named concept as contrast pairs, with prompts to steer and words that show it."""

    name: str
    pairs: tuple[tuple[str, str], ...]
    """(positive, negative) texts."""
    prompts: tuple[str, ...]
    """Neutral prompts to generate from."""
    keywords: tuple[str, ...]
    """Words whose presence in a completion marks the positive side."""


SENTIMENT = ContrastSet(
    name="sentiment",
    pairs=(
        ("I love this, it is wonderful", "I hate this, it is awful"),
        ("What a happy day", "What a sad day"),
        ("She was delighted with the gift", "She was disgusted with the gift"),
        ("The food was delicious and the staff were kind", "The food was disgusting and the staff were rude"),
        ("We had a great time together", "We had a terrible time together"),
        ("This is the best news I have heard", "This is the worst news I have heard"),
        ("I am so grateful for my friends", "I am so angry at my friends"),
        ("The concert was beautiful", "The concert was dreadful"),
    ),
    prompts=(
        "I think that",
        "Today I went to the",
        "The best thing about",
        "My favourite food is",
        "Yesterday the weather was",
        "In my opinion, the movie",
    ),
    keywords=("love", "happy", "wonderful", "great", "beautiful", "delight", "excited", "enjoy", "amazing",
              "grateful", "joy", "best"),
)

CONTRAST_SETS = {s.name: s for s in (SENTIMENT,)}


def contrast_set(name: str) -> ContrastSet:
    """A built-in contrast set by name."""
    try:
        return CONTRAST_SETS[name]
    except KeyError:
        raise InterplabError(f"no built-in contrast set {name!r}; choose one of {sorted(CONTRAST_SETS)} "
                             "or pass a JSONL file of pairs") from None
