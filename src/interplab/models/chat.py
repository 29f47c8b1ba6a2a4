"""One user turn as the model expects it: the tokenizer's chat template, or a plain fallback.

Instruct models (SmolLM2-Instruct, ...) ship a chat template; tiny test models and base models do not,
and for them a turn is "User: ...\\nAssistant:". `chat_prompt` ends where the assistant's answer starts,
so prompt + answer is exactly the text a fine-tune trains on and generation continues from.
"""

from __future__ import annotations

from typing import Any

FALLBACK_USER = "User: "
FALLBACK_ASSISTANT = "\nAssistant:"


def has_chat_template(tokenizer: Any) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def chat_prompt(tokenizer: Any, user: str) -> str:
    """The text of one user turn followed by the start of the assistant's turn."""
    if has_chat_template(tokenizer):
        return str(tokenizer.apply_chat_template([{"role": "user", "content": user}], tokenize=False,
                                                 add_generation_prompt=True))
    return f"{FALLBACK_USER}{user}{FALLBACK_ASSISTANT}"


def chat_answer(tokenizer: Any, answer: str) -> str:
    """What follows `chat_prompt` for a given answer: the answer and the end-of-turn marker."""
    end = "<|im_end|>" if has_chat_template(tokenizer) and "<|im_end|>" in str(tokenizer.chat_template) else ""
    eos = "" if end else (getattr(tokenizer, "eos_token", None) or "")
    return f" {answer}{end or eos}" if not has_chat_template(tokenizer) else f"{answer}{end}"
