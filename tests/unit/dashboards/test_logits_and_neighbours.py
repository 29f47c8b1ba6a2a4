"""Logit effects and decoder neighbours against hand computations."""

from __future__ import annotations

import torch

from interplab.dashboards.logits import logit_effects, unembedding_of
from interplab.dashboards.nearest import nearest_all, nearest_latents, unit_rows
from interplab.models.tokens import token_texts


def test_logit_effects_equal_the_decoder_row_times_the_unembedding(tiny_model_dir):
    from interplab.models.loading import load_model

    lm = load_model(tiny_model_dir("gpt2"), device="cpu")
    w_u = unembedding_of(lm)
    assert w_u is not None and w_u.shape == (lm.d_model, len(lm.tokenizer))
    w_dec = torch.randn(3, lm.d_model, generator=torch.Generator().manual_seed(0))
    pos, neg = logit_effects(w_dec, w_u, 5, token_texts(lm.tokenizer))
    for i in range(3):
        by_hand = [float(w_dec[i] @ lm.model.lm_head.weight[v].detach()) for v in range(w_u.shape[1])]
        order = sorted(range(len(by_hand)), key=by_hand.__getitem__)
        want_pos = [(lm.tokenizer.decode([v]), by_hand[v]) for v in order[::-1][:5]]
        want_neg = [(lm.tokenizer.decode([v]), by_hand[v]) for v in order[:5]]
        assert [t for t, _ in pos[i]] == [t for t, _ in want_pos]
        assert [t for t, _ in neg[i]] == [t for t, _ in want_neg]
        assert all(abs(a[1] - b[1]) < 1e-5 for a, b in zip(pos[i] + neg[i], want_pos + want_neg, strict=True))


def test_models_without_an_unembedding_give_empty_logit_lists():
    class Encoder:
        tokenizer = None

        def unembedding(self):
            return None

    assert unembedding_of(Encoder()) is None and unembedding_of(None) is None
    pos, neg = logit_effects(torch.ones(2, 4), None, 5, token_texts(None))
    assert pos == [[], []] and neg == [[], []]


def test_nearest_neighbours_equal_the_brute_force_cosine_ranking():
    w_dec = torch.randn(50, 8, generator=torch.Generator().manual_seed(1))
    cos = torch.nn.functional.cosine_similarity(w_dec[:, None, :], w_dec[None, :, :], dim=-1)
    cos.fill_diagonal_(-2)
    chunked = nearest_all(w_dec, 3, chunk=7)  # 7 does not divide 50: the last chunk is partial
    assert len(chunked) == 50
    for i, near in enumerate(chunked):
        assert near[0][0] == int(cos[i].argmax())
        assert [j for j, _ in near] == cos[i].topk(3).indices.tolist()
        assert all(abs(c - float(cos[i, j])) < 1e-5 for j, c in near)
    assert nearest_latents(unit_rows(w_dec[:1]), torch.tensor([0]), 3) == [[]]  # a single latent has none
