"""Display strings of token ids: contexts concatenate back to readable text for BPE and WordPiece."""

from __future__ import annotations

from interplab.models.loading import load_model
from interplab.models.tokens import is_wordpiece, token_texts


def test_wordpiece_word_starts_get_a_space_and_continuations_lose_their_hashes(minilm) -> None:
    tok = minilm.tokenizer
    assert is_wordpiece(tok)
    ids = tok("The surfers waited")["input_ids"]
    text = "".join(token_texts(tok)(i) for i in ids)
    assert text == "[CLS] the surfers waited[SEP]"


def test_bpe_tokens_keep_their_own_leading_spaces(tiny_model_dir) -> None:
    tok = load_model(str(tiny_model_dir("gpt2"))).tokenizer
    assert not is_wordpiece(tok)
    ids = tok("the cat sat")["input_ids"]
    assert "".join(token_texts(tok)(i) for i in ids) == tok.decode(ids)


def test_without_a_tokenizer_ids_are_shown_as_numbers() -> None:
    assert token_texts(None)(42) == "42"
