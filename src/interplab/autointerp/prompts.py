"""Prompts for explaining and scoring latents, and tolerant parsers for the replies.

Conventions (shared by every prompt, so a judge can be scripted against them):
- Examples are numbered lines `Example 3: <text>`; newlines inside an example are shown as `\\n`.
- Marked tokens are written `<<token>>` (leading spaces stay outside the brackets).
- The explainer ends its reply with `Explanation: <one phrase>`.
- Judges answer with one list of 0/1, one entry per example, e.g. `[1, 0, 1]`.
Parsers never raise on a messy reply: explanations fall back to the first line of text, and judgements
that cannot be read return None (the scorer counts them as failures and predicts 0).
Judges read by log-probabilities get one excerpt per prompt and a question answered "Yes" or "No".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

from interplab.autointerp.examples import Example

OPEN, CLOSE = "<<", ">>"

Task = Literal["detection", "fuzzing"]

EXPLAIN_SYSTEM = (
    "You are studying a neuron (a latent of a sparse autoencoder) in a language model. You see text "
    f"excerpts where it activates; tokens where it fires are marked like {OPEN}this{CLOSE}. Work out what "
    "the marked tokens have in common (a word, a topic, a grammatical role, a pattern in the context). "
    "End your reply with one line of the form 'Explanation: <short description>'."
)
DETECTION_SYSTEM = (
    "You judge an explanation of a language-model neuron. Given the explanation and numbered text "
    "excerpts, say for each excerpt whether the neuron fires anywhere in it. Answer only with a list of "
    "0/1, one entry per excerpt in order, e.g. [1, 0, 1]."
)
FUZZING_SYSTEM = (
    "You judge an explanation of a language-model neuron. In each numbered excerpt some tokens are "
    f"marked like {OPEN}this{CLOSE}. Say for each excerpt whether the marked tokens are the ones the "
    "explanation describes (1) or not (0). Answer only with a list of 0/1, one entry per excerpt in "
    "order, e.g. [1, 0, 1]."
)


def _escape(token: str) -> str:
    return token.replace("\n", "\\n")


def format_example(example: Example, marked: Sequence[int] | None = None) -> str:
    """The window's text with the given token indices (default: those where the latent fires) marked."""
    chosen = set(marked) if marked is not None else {i for i, a in enumerate(example.acts) if a > 0}
    parts = []
    for i, token in enumerate(example.tokens):
        text = _escape(token)
        if i in chosen and text.strip():
            core = text.lstrip()
            parts.append(f"{text[: len(text) - len(core)]}{OPEN}{core}{CLOSE}")
        else:
            parts.append(text)
    return "".join(parts)


def _top_tokens(examples: Sequence[Example], n: int = 8) -> str:
    pairs = sorted(
        (
            (a, _escape(t).strip())
            for ex in examples
            for t, a in zip(ex.tokens, ex.acts, strict=True)
            if a > 0
        ),
        reverse=True,
    )
    seen: list[str] = []
    for act, token in pairs:
        label = f"{token!r} ({act:.2f})"
        if token and label not in seen and len(seen) < n:
            seen.append(label)
    return ", ".join(seen)


def explain_messages(examples: Sequence[Example]) -> list[dict[str, str]]:
    """Chat messages asking for an explanation of the latent from its (top and quantile) examples."""
    lines = [f"Example {i + 1}: {format_example(ex)}" for i, ex in enumerate(examples)]
    user = (
        "Excerpts where the neuron activates:\n"
        + "\n".join(lines)
        + f"\n\nStrongest activating tokens (activation): {_top_tokens(examples)}\n\n"
        "What does the neuron respond to? End with 'Explanation: ...'."
    )
    return [{"role": "system", "content": EXPLAIN_SYSTEM}, {"role": "user", "content": user}]


_EXPLANATION = re.compile(r"explanation\s*:\s*(.+)", re.IGNORECASE)


def parse_explanation(reply: str, max_chars: int = 300) -> str:
    """The text after the last 'Explanation:' (else the first non-empty line), one line, quotes stripped."""
    matches = _EXPLANATION.findall(reply)
    if matches:
        text = matches[-1]
    else:
        text = next((line for line in reply.splitlines() if line.strip()), "")
    text = " ".join(text.split()).strip(" \"'`*")
    return text[:max_chars] if text else "(no explanation)"


def _judge_messages(system: str, explanation: str, lines: Sequence[str]) -> list[dict[str, str]]:
    numbered = "\n".join(f"Example {i + 1}: {line}" for i, line in enumerate(lines))
    user = (
        f"Explanation: {explanation}\n\n{numbered}\n\n"
        f"Answer with a list of {len(lines)} values (0 or 1), nothing else."
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def detection_messages(explanation: str, examples: Sequence[Example]) -> list[dict[str, str]]:
    """Ask which of the (unmarked) examples the latent fires on, given the explanation."""
    return _judge_messages(DETECTION_SYSTEM, explanation, [format_example(ex, marked=[]) for ex in examples])


def fuzzing_messages(
    explanation: str, examples: Sequence[Example], marks: Sequence[Sequence[int]]
) -> list[dict[str, str]]:
    """Ask, per example with the given tokens marked, whether the marks match the explanation."""
    lines = [format_example(ex, marked=m) for ex, m in zip(examples, marks, strict=True)]
    return _judge_messages(FUZZING_SYSTEM, explanation, lines)


_LIST = re.compile(r"\[([^\[\]]*)\]")


def parse_judgement(reply: str, n: int) -> list[int] | None:
    """The last bracketed list of n 0/1 values in the reply (also 'yes'/'no', 'true'/'false'); else None.

    The last one, because judges that reason first put their final answer at the end.
    """
    words = {"1": 1, "0": 0, "yes": 1, "no": 0, "true": 1, "false": 0}
    for body in reversed(_LIST.findall(reply)):
        items = [item.strip().strip("'\"").lower() for item in body.split(",") if item.strip()]
        if len(items) == n and all(item in words for item in items):
            return [words[item] for item in items]
    return None


YES_NO_SYSTEM = "You check descriptions of a language-model neuron against text. Answer only Yes or No."
_YES_NO_QUESTION = {
    "detection": "Does this text contain what the description says the neuron fires on?",
    "fuzzing": f"Are the words marked like {OPEN}this{CLOSE} the ones the description says the neuron fires on?",
}


def yes_no_messages(task: Task, explanation: str, excerpt: str) -> list[dict[str, str]]:
    """One excerpt (already formatted, marks included) and a question answered Yes or No."""
    user = (f"Neuron description: {explanation}\n\nText: {excerpt}\n\n{_YES_NO_QUESTION[task]} "
            "Answer Yes or No.")
    return [{"role": "system", "content": YES_NO_SYSTEM}, {"role": "user", "content": user}]
