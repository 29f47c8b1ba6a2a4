"""Token ids -> display strings for dashboards and live inference.

Decoding one id at a time keeps GPT-2/Llama style word-start markers as a leading space (' the'), but
WordPiece (BERT) marks the opposite way round: continuations carry '##' and word starts carry nothing,
so per-id decoding glues a sentence together ("thelionrested"). For WordPiece the display string of a
word start gets a leading space and '##' is dropped from continuations, so the tokens of a context
concatenate back to readable text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

TokenText = Callable[[int], str]


def is_wordpiece(tokenizer: Any) -> bool:
    """True for tokenizers whose continuation pieces start with '##' (BERT, DistilBERT, ELECTRA...)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        return type(backend.model).__name__ == "WordPiece"
    return type(tokenizer).__name__.replace("Fast", "") in {"BertTokenizer", "DistilBertTokenizer",
                                                             "ElectraTokenizer"}


def token_texts(tokenizer: Any) -> TokenText:
    """A memoised id -> display string function (str(id) when there is no tokenizer)."""
    cache: dict[int, str] = {}
    wordpiece = tokenizer is not None and is_wordpiece(tokenizer)
    special = set(getattr(tokenizer, "all_special_ids", []) or [])

    def text(token_id: int) -> str:
        if token_id not in cache:
            if tokenizer is None:
                cache[token_id] = str(token_id)
            elif wordpiece and token_id not in special:
                piece = str(tokenizer.convert_ids_to_tokens(token_id))
                cache[token_id] = piece[2:] if piece.startswith("##") else " " + piece
            else:
                cache[token_id] = str(tokenizer.decode([token_id]))
        return cache[token_id]

    return text
