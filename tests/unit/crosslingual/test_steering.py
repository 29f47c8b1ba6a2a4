"""Cross-lingual steering: the sentiment score of a prompt, plain and steered."""

from __future__ import annotations

import torch

from interplab.crosslingual import sentiment_scores
from interplab.crosslingual.steering import _word_ids
from interplab.data.multilingual import SENTIMENT_PROMPTS, SENTIMENT_WORDS
from interplab.models import add_vector, load_model


def _by_hand(lm, language: str, vector=None, hook: str = "") -> torch.Tensor:
    pos, neg = (_word_ids(lm, ws) for ws in SENTIMENT_WORDS[language])
    out = []
    for prompt in SENTIMENT_PROMPTS[language]:
        with torch.no_grad():
            if vector is None:
                logits = lm.model(**lm.tokenize(prompt)).logits[0, -1]
            else:
                with add_vector(lm.model, hook, vector):
                    logits = lm.model(**lm.tokenize(prompt)).logits[0, -1]
        logp = torch.log_softmax(logits.float(), -1)
        out.append(torch.logsumexp(logp[pos], 0) - torch.logsumexp(logp[neg], 0))
    return torch.stack(out)


def test_sentiment_scores_are_log_odds_of_the_positive_words_from_the_full_logits(tiny_model_dir) -> None:
    lm = load_model(tiny_model_dir("gemma3"), device="cpu")
    torch.testing.assert_close(sentiment_scores(lm, "es"), _by_hand(lm, "es"))
    vector = torch.randn(lm.d_model, generator=torch.Generator().manual_seed(0))
    steered = sentiment_scores(lm, "es", vector, "blocks.0.resid_post")
    torch.testing.assert_close(steered, _by_hand(lm, "es", vector, "blocks.0.resid_post"))
    assert not torch.allclose(steered, sentiment_scores(lm, "es"))
