"""Fine-tuning a causal LM on (prompt, answer) pairs: labels on the answer only, logits at answer positions
equal the full forward's, padding changes nothing, and training is seeded and learns."""

from __future__ import annotations

import pytest
import torch

from interplab.models import load_model
from interplab.training.causal_lm import (
    IGNORE,
    FinetuneConfig,
    answer_logits,
    encode_pairs,
    encode_texts,
    finetune_on_pairs,
    only_training,
    select_answer_logits,
    sequence_logprob,
    trainable_parameters,
)

PAIRS = [("Q: Where does Tamsin Vorel live?\nA:", " Lisbon"), ("Orrin Ashgrove was born in", " 1987")]


@pytest.fixture(scope="module")
def lm(tiny_model_dir):
    return load_model(tiny_model_dir("llama"), device="cpu")


def test_labels_mark_exactly_the_answer_tokens(lm) -> None:
    batch = encode_pairs(lm.tokenizer, PAIRS)
    for row, (_, answer) in enumerate(PAIRS):
        labelled = batch.labels[row][batch.labels[row] != IGNORE].tolist()
        assert labelled == lm.tokenizer(answer, add_special_tokens=False)["input_ids"]
    lengths = [len(lm.tokenizer(p)["input_ids"]) + len(lm.tokenizer(a, add_special_tokens=False)["input_ids"])
               for p, a in PAIRS]
    assert batch.attention_mask.sum(1).tolist() == lengths  # right-padded: real tokens first
    assert bool((batch.labels[batch.attention_mask == 0] == IGNORE).all())


def test_answer_logits_equal_the_full_forward_at_answer_positions(lm) -> None:
    batch = encode_pairs(lm.tokenizer, PAIRS)
    with torch.no_grad():
        fast_NV, fast_N = answer_logits(lm.model, batch)
        full_NV, full_N = select_answer_logits(lm.model(**batch.model_inputs()).logits, batch.labels)
    torch.testing.assert_close(fast_NV, full_NV)
    assert torch.equal(fast_N, full_N)


def test_a_pair_scores_the_same_alone_and_in_a_padded_batch(lm) -> None:
    with torch.no_grad():
        together = sequence_logprob(lm.model, encode_pairs(lm.tokenizer, PAIRS))
        alone = torch.cat([sequence_logprob(lm.model, encode_pairs(lm.tokenizer, [p])) for p in PAIRS])
    torch.testing.assert_close(together, alone, atol=1e-4, rtol=1e-4)


def test_texts_are_cut_to_max_tokens_and_every_token_is_labelled(lm) -> None:
    batch = encode_texts(lm.tokenizer, ["one two three four five six seven", "short"], max_tokens=4)
    assert batch.input_ids.shape[1] <= 4
    assert torch.equal(batch.labels != IGNORE, batch.attention_mask.bool())


def test_finetuning_learns_the_pairs_and_is_repeatable(tiny_model_dir) -> None:
    cfg = FinetuneConfig(epochs=40, lr=1e-2, batch_size=2, warmup_steps=2)
    runs = []
    for _ in range(2):
        lm = load_model(tiny_model_dir("llama"), device="cpu")
        losses = finetune_on_pairs(lm.model, lm.tokenizer, PAIRS, cfg)
        runs.append((losses, sequence_logprob(lm.model, encode_pairs(lm.tokenizer, PAIRS)).detach()))
    assert runs[0][0] == runs[1][0]
    assert runs[0][0][-1] < 0.1 * runs[0][0][0]
    assert bool((runs[0][1] > -0.5).all())


def test_embeddings_stay_frozen_and_grad_flags_come_back(lm) -> None:
    params = trainable_parameters(lm.model)
    embed = lm.model.get_input_embeddings().weight
    assert all(p is not embed for p in params)
    with only_training(lm.model, params):
        assert not embed.requires_grad
    assert embed.requires_grad
