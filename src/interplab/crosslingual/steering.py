"""Does a steering vector built from English pairs steer Spanish and French prompts? And a shuffled-label control.

1. Per language, a sentiment vector from its own contrast pairs (steering.from_contrast_pairs: mean
   positive minus mean negative activation at the hook, pooled over each sentence's tokens).
2. Shuffled-label control: the same pairs with the sides swapped in half of them (chosen with a seed), so
   the labels carry no sentiment and the difference is what remains (repeated `n_shuffles` times).
3. Effect of a vector on a language's prompts: add it at every position of the prompt, scaled to the norm
   of that language's own vector (so only the direction differs), and take the mean change over prompts
   of log P(positive words) - log P(negative words) for the next token (words: data/multilingual.py).
4. Transfer = effect of the English vector / effect of the in-language vector, on Spanish and French prompts.
5. Cosines between the per-language vectors (steering.cosine_comparison), and the same between shuffled
   vectors: the control's mean off-diagonal cosine as a fraction of the real one.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from interplab.data.multilingual import SENTIMENT_PAIRS, SENTIMENT_PROMPTS, SENTIMENT_WORDS
from interplab.models import LoadedModel, add_vector
from interplab.steering import (
    ContrastConfig,
    ContrastPair,
    SteeringVector,
    cosine_comparison,
    from_contrast_pairs,
)


@dataclass
class CrossSteeringConfig:
    """Where vectors are read and added, and the control's repeats."""

    layer: int = 6
    """Block whose resid_post the vectors are read at and added to."""
    strength: float = 1.0
    """Each vector is scaled to this multiple of the target language's own vector norm."""
    n_shuffles: int = 5
    """Shuffled-label vectors per language."""
    seed: int = 0
    """Seed of the shuffles."""


def pairs_of(language: str, shuffle_seed: int | None = None) -> list[ContrastPair]:
    """The language's sentiment pairs; with a seed, exactly half of them with their sides swapped."""
    pairs = [ContrastPair(positive=p, negative=n) for p, n in SENTIMENT_PAIRS[language]]
    if shuffle_seed is None:
        return pairs
    swap = set(random.Random(shuffle_seed).sample(range(len(pairs)), len(pairs) // 2))
    return [ContrastPair(positive=p.negative, negative=p.positive) if i in swap else p for i, p in enumerate(pairs)]


def language_vectors(lm: LoadedModel, languages: Sequence[str], cfg: CrossSteeringConfig,
                     shuffle_seed: int | None = None) -> dict[str, SteeringVector]:
    hook = f"blocks.{cfg.layer}.resid_post"
    contrast = ContrastConfig(pooling="mean")
    return {lang: from_contrast_pairs(lm, pairs_of(lang, shuffle_seed), hook, contrast,
                                      {"language": lang, "shuffled": shuffle_seed is not None})
            for lang in languages}


def _word_ids(lm: LoadedModel, words: Sequence[str]) -> list[int]:
    return sorted({int(lm.tokenizer(w, add_special_tokens=False)["input_ids"][0]) for w in words})


@torch.no_grad()
def sentiment_scores(lm: LoadedModel, language: str, vector_D: Tensor | None = None, hook: str = "") -> Tensor:
    """Per prompt of `language`: log P(positive words) - log P(negative words) for the next token."""
    pos_ids, neg_ids = (_word_ids(lm, ws) for ws in SENTIMENT_WORDS[language])
    scores = []
    for prompt in SENTIMENT_PROMPTS[language]:
        batch = lm.tokenize(prompt)
        # only the last position's logits: Gemma's 262k-token unembedding dominates a short prompt's cost
        if vector_D is None:
            logits = lm.model(**batch, logits_to_keep=1).logits[0, -1]
        else:
            with add_vector(lm.model, hook, vector_D):
                logits = lm.model(**batch, logits_to_keep=1).logits[0, -1]
        logp = torch.log_softmax(logits.float(), -1)
        scores.append(torch.logsumexp(logp[pos_ids], 0) - torch.logsumexp(logp[neg_ids], 0))
    return torch.stack(scores).cpu()


def steering_effect(lm: LoadedModel, language: str, vector: SteeringVector, norm: float,
                    base: Tensor | None = None) -> float:
    """Mean change of the prompts' sentiment score when `vector`, rescaled to `norm`, is added."""
    base = sentiment_scores(lm, language) if base is None else base
    scaled = vector.vector_D * (norm / max(vector.norm, 1e-12))
    return float((sentiment_scores(lm, language, scaled, vector.hook) - base).mean())


def _mean_off_diagonal(cos_KK: Tensor) -> float:
    k = cos_KK.shape[0]
    return float(cos_KK[~torch.eye(k, dtype=torch.bool)].mean())


def cross_steering(lm: LoadedModel, languages: Sequence[str], cfg: CrossSteeringConfig) -> dict[str, Any]:
    """Transfer table, real and shuffled effects, and both cosine matrices (see the module docstring)."""
    real = language_vectors(lm, languages, cfg)
    shuffled = [language_vectors(lm, languages, cfg, cfg.seed * 1000 + s) for s in range(cfg.n_shuffles)]
    rows = []
    for lang in languages:
        base = sentiment_scores(lm, lang)
        norm = cfg.strength * real[lang].norm
        own = steering_effect(lm, lang, real[lang], norm, base)
        english = steering_effect(lm, lang, real["en"], norm, base) if "en" in real else float("nan")
        control = sum(steering_effect(lm, lang, s[lang], norm, base) for s in shuffled) / len(shuffled)
        rows.append({"language": lang, "in_language_effect": own, "english_vector_effect": english,
                     "transfer_fraction": english / own if own else float("nan"),
                     "shuffled_label_effect": control,
                     "shuffled_fraction_of_real": abs(control) / abs(own) if own else float("nan"),
                     "vector_norm": real[lang].norm})
    names, cos_KK = cosine_comparison(real)
    shuffled_cos = torch.stack([cosine_comparison(s)[1] for s in shuffled]).mean(0)
    return {"rows": rows, "names": names, "cosines": cos_KK, "shuffled_cosines": shuffled_cos,
            "mean_cosine": _mean_off_diagonal(cos_KK), "mean_shuffled_cosine": _mean_off_diagonal(shuffled_cos),
            "vectors": real}
