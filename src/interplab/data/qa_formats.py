"""Answerability datasets from local files, in their published layouts, as one common `QAExample` list.

Layouts read:
  SQuAD v2 (JSON)  {"version": "v2.0", "data": [{"title", "paragraphs": [{"context",
                    "qas": [{"id", "question", "answers": [{"text", "answer_start"}], "is_impossible"}]}]}]}
                   answerable = not is_impossible (or, without that key, a non-empty `answers` list).
  BoolQ (JSONL)    {"question", "title", "answer": true|false, "passage"} per line. Every BoolQ question is
                   answerable from its own passage; as in the answerability literature, unanswerable examples
                   are made by pairing a question with another example's passage (`mismatch_fraction`).
  IDK (JSONL)      {"question", "context"?, "answerable": bool} per line, or {"question", "answer": str}
                   where an "I don't know"-style answer marks the question unanswerable.

Nothing is executed or unpickled: plain `json` only.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from interplab.common import InterplabError


@dataclass(frozen=True)
class QAExample:
    """One question with (possibly empty) context and whether the context/model can answer it."""

    context: str
    """Passage the question is asked about ('' for closed-book questions)."""
    question: str
    """The question text."""
    answerable: bool
    """True when the question can be answered (from the context, for reading-comprehension sets)."""
    source: str
    """Dataset name, e.g. 'squad_v2', 'boolq', 'idk', 'equations', 'celebrity'."""


def qa_prompt(example: QAExample) -> str:
    """The prompt probes read at its last token: 'Context: ... Question: ... Answer:'."""
    head = f"Context: {example.context}\n" if example.context else ""
    return f"{head}Question: {example.question}\nAnswer:"


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InterplabError(f"dataset file {path} does not exist; check the path") from None
    except json.JSONDecodeError as exc:
        raise InterplabError(
            f"{path} is not valid JSON (line {exc.lineno}); expected the SQuAD v2 layout"
        ) from None


def _read_jsonl(path: Path) -> Iterator[dict]:
    if not path.exists():
        raise InterplabError(f"dataset file {path} does not exist; check the path")
    with path.open(encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                raise InterplabError(
                    f"{path}:{lineno} is not a JSON object; expected one JSON object per line"
                ) from None
            if not isinstance(row, dict):
                raise InterplabError(
                    f"{path}:{lineno} is not a JSON object; expected one JSON object per line"
                )
            yield row


def load_squad_v2(path: str | Path) -> list[QAExample]:
    """Every question of a SQuAD v2 JSON file, with its paragraph as context."""
    path = Path(path)
    doc = _read_json(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise InterplabError(f"{path} has no top-level 'data' list; expected the SQuAD v2 JSON layout")
    examples = []
    for article in doc["data"]:
        for paragraph in article.get("paragraphs", []):
            for qa in paragraph.get("qas", []):
                impossible = qa.get("is_impossible")
                answerable = (not impossible) if impossible is not None else bool(qa.get("answers"))
                examples.append(QAExample(paragraph["context"], qa["question"], answerable, "squad_v2"))
    if not examples:
        raise InterplabError(f"{path} holds no questions; expected data[].paragraphs[].qas[]")
    return examples


def load_boolq(path: str | Path, mismatch_fraction: float = 0.5, seed: int = 0) -> list[QAExample]:
    """BoolQ JSONL; a seeded `mismatch_fraction` of questions get another example's passage (unanswerable)."""
    path = Path(path)
    rows = list(_read_jsonl(path))
    missing = [i for i, r in enumerate(rows) if "question" not in r or "passage" not in r]
    if missing:
        raise InterplabError(
            f"{path}: line {missing[0] + 1} lacks 'question' or 'passage' (BoolQ JSONL layout)"
        )
    if len(rows) < 2:
        raise InterplabError(f"{path}: BoolQ needs at least 2 rows to build mismatched (unanswerable) pairs")
    rng = random.Random(seed)
    mismatched = set(rng.sample(range(len(rows)), round(mismatch_fraction * len(rows))))
    examples = []
    for i, row in enumerate(rows):
        if i in mismatched:
            # another row's passage (offset >= 1, so never its own): same style, but it cannot answer this
            j = (i + rng.randrange(1, len(rows))) % len(rows)
            examples.append(QAExample(rows[j]["passage"], row["question"], False, "boolq"))
        else:
            examples.append(QAExample(row["passage"], row["question"], True, "boolq"))
    return examples


_IDK_ANSWERS = (
    "i don't know",
    "i do not know",
    "idk",
    "unknown",
    "unanswerable",
    "i'm not sure",
    "i am not sure",
)


def _idk_label(row: dict, where: str) -> bool:
    for key in ("answerable", "is_answerable"):
        if key in row:
            return bool(row[key])
    if "is_impossible" in row:
        return not row["is_impossible"]
    answer = row.get("answer")
    if isinstance(answer, list):
        answer = answer[0] if answer else ""
    if isinstance(answer, str):
        return not answer.strip().lower().rstrip(".!").startswith(_IDK_ANSWERS)
    raise InterplabError(
        f"{where} has no 'answerable' flag and no string 'answer'; add one (IDK JSONL layout)"
    )


def load_idk(path: str | Path) -> list[QAExample]:
    """IDK-style JSONL: a question, optional context, and an answerable flag or an 'I don't know' answer."""
    path = Path(path)
    examples = []
    for lineno, row in enumerate(_read_jsonl(path), 1):
        if "question" not in row:
            raise InterplabError(f"{path}:{lineno} lacks 'question' (IDK JSONL layout)")
        context = row.get("context") or row.get("passage") or ""
        examples.append(QAExample(context, row["question"], _idk_label(row, f"{path}:{lineno}"), "idk"))
    return examples


def load_qa_file(path: str | Path, fmt: str = "auto", seed: int = 0) -> list[QAExample]:
    """Load a local answerability file; `fmt` is 'squad_v2', 'boolq', 'idk' or 'auto' (by layout)."""
    path = Path(path)
    if fmt == "auto":
        fmt = _sniff_format(path)
    loaders = {"squad_v2": load_squad_v2, "idk": load_idk}
    if fmt == "boolq":
        return load_boolq(path, seed=seed)
    if fmt not in loaders:
        raise InterplabError(f"unknown QA format {fmt!r}; use squad_v2, boolq, idk or auto")
    return loaders[fmt](path)


def _sniff_format(path: Path) -> str:
    if not path.exists():
        raise InterplabError(f"dataset file {path} does not exist; check the path")
    with path.open(encoding="utf-8") as handle:
        first = handle.readline()
    try:
        row = json.loads(first)
    except json.JSONDecodeError:
        row = None  # a pretty-printed JSON document: only SQuAD v2 is stored that way
    if path.suffix == ".json" or not isinstance(row, dict) or "data" in row:
        return "squad_v2"
    return "boolq" if "passage" in row and isinstance(row.get("answer"), bool) else "idk"
