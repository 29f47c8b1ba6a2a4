"""The token-statistics explainer: a latent's top tokens and contexts turned into a templated sentence.

No model is asked. It is the baseline every LLM explainer must beat under the same judge: an LLM
explanation that scores below "fires on 'Paris', 'London' after 'in'" has not understood more than
the token counts show.

1. Over the explain half's activating windows (top + quantile), add up each token's activation
   (tokens compared stripped and lower-cased; the most common spelling is shown).
2. Keep the heaviest tokens, at most `n_tokens`, each holding at least `min_share` of the mass.
3. At each window's peak, count the token just before it and the token just after it; one that
   recurs at `min_context_share` of the peaks is named ("after 'in'", "before 'of'").
4. Name a kind when every kept token has it (numbers, punctuation, capitalised words, word pieces),
   and say "many different tokens" when the kept ones hold less than `broad_share` of the mass.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from interplab.autointerp.examples import Example, LatentExamples
from interplab.autointerp.explain import ExplainConfig, Explanation, explain_examples

NAME = "token-stats"


@dataclass
class TokenStatsConfig:
    """What the templated explanation may name."""

    n_tokens: int = 5
    """Top tokens named at most."""
    min_share: float = 0.04
    """A token is named only if it holds at least this share of the activation mass."""
    min_context_share: float = 0.4
    """A neighbour of the peak token is named when it recurs at this share of the windows' peaks."""
    broad_share: float = 0.3
    """Below this share held by the named tokens, the latent is called broad ("many different tokens")."""


def _key(token: str) -> str:
    return token.strip().lower()


def _quoted(forms: Sequence[str]) -> str:
    return ", ".join(f"'{form}'" for form in forms)


def token_mass(examples: Sequence[Example]) -> tuple[dict[str, float], dict[str, str]]:
    """(activation summed per normalised token, the most common spelling of each)."""
    mass: dict[str, float] = defaultdict(float)
    spellings: dict[str, Counter[str]] = defaultdict(Counter)
    for ex in examples:
        for token, act in zip(ex.tokens, ex.acts, strict=True):
            if act > 0 and token.strip():
                mass[_key(token)] += act
                spellings[_key(token)][token.strip()] += 1
    return dict(mass), {k: c.most_common(1)[0][0] for k, c in spellings.items()}


def _kind(forms: Sequence[str], examples: Sequence[Example]) -> str | None:
    if all(f.replace(",", "").replace(".", "").isdigit() for f in forms):
        return "numbers"
    if all(not any(ch.isalnum() for ch in f) for f in forms):
        return "punctuation"
    if all(f[:1].isupper() for f in forms):
        return "capitalised words"
    # a token shown without a leading space inside a window continues the word before it
    starts: set[str] = set()
    pieces: set[str] = set()
    for ex in examples:
        for token, act in zip(ex.tokens[1:], ex.acts[1:], strict=True):
            if act > 0:
                (starts if token[:1].isspace() else pieces).add(_key(token))
    keys = {f.lower() for f in forms}
    return "pieces inside words" if keys <= pieces - starts else None


def _neighbour(examples: Sequence[Example], offset: int, min_share: float) -> str | None:
    """The token at `offset` from each window's peak when one recurs at `min_share` of the peaks."""
    seen: Counter[str] = Counter()
    spelled: dict[str, str] = {}
    for ex in examples:
        peak = max(range(len(ex.acts)), key=ex.acts.__getitem__)
        at = peak + offset
        if 0 <= at < len(ex.tokens) and ex.tokens[at].strip():
            seen[_key(ex.tokens[at])] += 1
            spelled.setdefault(_key(ex.tokens[at]), ex.tokens[at].strip())
    if not seen:
        return None
    key, count = seen.most_common(1)[0]
    return spelled[key] if count >= 2 and count >= min_share * len(examples) else None


def token_stats_text(examples: Sequence[Example], cfg: TokenStatsConfig) -> str:
    """The templated explanation of the latent active in `examples` (see the module docstring)."""
    mass, spelling = token_mass(examples)
    total = sum(mass.values())
    if total <= 0:
        return "(no activating tokens)"
    ranked = sorted(mass, key=lambda k: (-mass[k], k))
    kept = [k for k in ranked[: cfg.n_tokens] if mass[k] >= cfg.min_share * total] or ranked[:1]
    forms = [spelling[k] for k in kept]
    broad = sum(mass[k] for k in kept) < cfg.broad_share * total
    text = ("fires on many different tokens, most on " if broad else "fires on ") + _quoted(forms)
    kind = _kind(forms, examples)
    if kind and not broad:
        text += f" ({kind})"
    before = _neighbour(examples, -1, cfg.min_context_share)
    after = _neighbour(examples, 1, cfg.min_context_share)
    context = [f"after '{before}'"] if before and _key(before) not in kept else []
    context += [f"before '{after}'"] if after and _key(after) not in kept else []
    return text + (", often " + " and ".join(context) if context else "")


class TokenStatsExplainer:
    """Explains a latent from token statistics alone (the baseline; see the module docstring)."""

    name = NAME

    def __init__(self, cfg: TokenStatsConfig | None = None, shown: ExplainConfig | None = None):
        self.cfg = cfg or TokenStatsConfig()
        self.shown = shown or ExplainConfig()
        """Which examples are used: the same ones an LLM explainer is shown."""

    def explain(self, examples: LatentExamples) -> Explanation:
        used = explain_examples(examples, self.shown)
        text = token_stats_text(used, self.cfg)
        return Explanation(text=text, reply=text, n_examples=len(used))
