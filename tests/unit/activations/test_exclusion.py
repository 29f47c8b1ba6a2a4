"""The exclusion rule: which real tokens training, evaluation and dashboards leave out."""

from __future__ import annotations

import pytest
import torch

from interplab.activations.exclusion import ExclusionRule
from interplab.common import InterplabError


def test_first_positions_are_counted_from_each_rows_first_real_token():
    real = torch.tensor([[True, True, True, True], [False, False, True, True]])  # row 1 is left-padded
    keep = ExclusionRule(first_positions=1).keep_mask(torch.zeros(2, 4, dtype=torch.long), real)
    assert keep.tolist() == [[False, True, True, True], [False, False, False, True]]


def test_special_token_ids_are_left_out_wherever_they_are_and_padding_never_kept():
    tokens = torch.tensor([[5, 1, 7, 1], [1, 8, 9, 0]])
    real = torch.tensor([[True, True, True, True], [True, True, True, False]])
    keep = ExclusionRule(token_ids=(1,)).keep_mask(tokens, real)
    assert keep.tolist() == [[True, False, True, False], [False, True, True, False]]


def test_norm_limit_leaves_out_massive_activations_and_keeps_ordinary_ones():
    acts = torch.ones(1, 6, 3)
    acts[0, 2] *= 50.0  # 50x the median norm
    acts[0, 4] *= 5.0  # large, but under 10x
    real = torch.ones(1, 6, dtype=torch.bool)
    rule = ExclusionRule(max_norm_ratio=10.0)
    assert rule.keep_mask(torch.zeros(1, 6, dtype=torch.long), real, acts).tolist() == [
        [True, True, False, True, True, True]]
    # without activations (e.g. a token-only view) the norm part cannot apply
    assert rule.keep_mask(torch.zeros(1, 6, dtype=torch.long), real).all()


def test_empty_rule_keeps_every_real_token_and_says_none():
    real = torch.tensor([[True, True, False]])
    rule = ExclusionRule()
    assert rule.is_empty and rule.describe() == "none"
    assert torch.equal(rule.keep_mask(torch.zeros(1, 3, dtype=torch.long), real, torch.randn(1, 3, 4)), real)


def test_rule_survives_a_json_round_trip_and_describes_itself():
    rule = ExclusionRule(1, (0, 2), ("<s>", "</s>"), 10.0)
    data = rule.to_json()
    assert data["description"] == ("the first position of each sequence; special tokens <s> </s>; "
                                   "tokens with norm above 10x the median")
    assert ExclusionRule.from_json(data) == rule
    assert ExclusionRule.from_json({}) == ExclusionRule()


def test_cache_config_excludes_sinks_of_causal_lms_and_not_of_encoders_unless_asked(tiny_model_dir):
    from transformers import AutoTokenizer

    from interplab.activations.cache import CacheConfig

    tok = AutoTokenizer.from_pretrained(tiny_model_dir("gpt2"))
    causal = CacheConfig().exclusion_rule(tok, is_causal=True)
    assert causal.first_positions == 1 and causal.max_norm_ratio == 10.0
    assert causal.token_ids == (tok.eos_token_id,) and causal.token_names == ("<|endoftext|>",)
    assert CacheConfig().exclusion_rule(tok, is_causal=False).is_empty
    assert CacheConfig(exclude_sinks=False).exclusion_rule(tok, is_causal=True).is_empty
    forced = CacheConfig(exclude_sinks=True, exclude_special_tokens=False, max_norm_ratio=None)
    assert forced.exclusion_rule(tok, is_causal=False) == ExclusionRule(first_positions=1)


def test_a_norm_limit_at_or_below_the_median_is_refused():
    with pytest.raises(InterplabError, match="max_norm_ratio above 1"):
        ExclusionRule.for_tokenizer(None, 1, False, 0.5)
