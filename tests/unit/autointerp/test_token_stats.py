"""The token-statistics explainer: templated explanations from top tokens and contexts, scored like any other."""

from interplab.autointerp import (
    TokenStatsConfig,
    TokenStatsExplainer,
    detection_score,
    fuzzing_score,
    split_held_out,
)
from interplab.autointerp.examples import Example
from interplab.autointerp.token_stats import token_stats_text


def _ex(text: str, fire: dict[str, float]) -> Example:
    words = text.split()
    tokens = [(" " if i else "") + w for i, w in enumerate(words)]
    return Example(tokens=tokens, acts=[fire.get(w, 0.0) for w in words])


def test_the_heaviest_tokens_are_named_most_first_with_their_usual_spelling():
    examples = [_ex("we flew to Paris in May", {"Paris": 3.0}), _ex("she lives in London now", {"London": 2.0}),
                _ex("Paris is large", {"Paris": 2.5}), _ex("a trip to London soon", {"London": 0.5, "trip": 0.1})]
    text = token_stats_text(examples, TokenStatsConfig())
    assert text.startswith("fires on 'Paris', 'London'") and "'trip'" not in text  # trip holds 1 % of the mass


def test_a_neighbour_that_recurs_at_the_peaks_is_named_as_context():
    examples = [_ex(f"they met in {city} last year", {city: 1.0}) for city in ("Rome", "Oslo", "Lima", "Kyiv")]
    assert token_stats_text(examples, TokenStatsConfig()).endswith("often after 'in' and before 'last'")
    no_context = TokenStatsConfig(min_context_share=1.01)
    assert "often" not in token_stats_text(examples, no_context)


def test_kinds_are_named_only_when_every_named_token_has_them():
    digits = [_ex(f"in {y} the war", {y: 1.0}) for y in ("1914", "1939", "1945")]
    assert "(numbers)" in token_stats_text(digits, TokenStatsConfig())
    mixed = [_ex("in 1914 the war", {"1914": 1.0, "war": 1.0})]
    assert "(numbers)" not in token_stats_text(mixed, TokenStatsConfig())


def test_a_latent_spread_over_many_tokens_is_called_broad():
    words = [f"w{i}" for i in range(20)]  # the 5 named hold 25 % of the mass
    examples = [_ex(" ".join(words), {w: 1.0 for w in words})]
    assert token_stats_text(examples, TokenStatsConfig()).startswith("fires on many different tokens, most on")


def test_the_baseline_explains_from_the_explain_half_and_a_keyword_judge_scores_it_perfectly(cat_examples, judge):
    shown, held = split_held_out(cat_examples)
    explanation = TokenStatsExplainer().explain(shown)
    assert explanation.text.startswith("fires on 'cat'") and explanation.n_examples == len(shown.top + shown.quantile)
    assert detection_score(judge, explanation.text, held).balanced_accuracy == 1.0
    assert fuzzing_score(judge, explanation.text, held).balanced_accuracy == 1.0
