"""QA loaders read the published layouts; synthetic answerability sets are balanced, seeded and correct."""

from __future__ import annotations

import json
import re

import pytest

from interplab.common import InterplabError
from interplab.data.qa_formats import QAExample, load_boolq, load_idk, load_qa_file, load_squad_v2, qa_prompt
from interplab.data.synthetic.answerability import make_celebrity, make_equations

SQUAD = {
    "version": "v2.0",
    "data": [
        {
            "title": "Normans",
            "paragraphs": [
                {
                    "context": "The Normans were the people who in the 10th and 11th centuries gave their name to Normandy.",
                    "qas": [
                        {
                            "question": "In what country is Normandy located?",
                            "id": "56ddde6b9a695914005b9628",
                            "answers": [{"text": "France", "answer_start": 159}],
                            "is_impossible": False,
                        },
                        {
                            "question": "Who gave their name to Normandy in the 1000's and 1100's",
                            "id": "5ad39d53604f3c001a3fe8d1",
                            "answers": [],
                            "plausible_answers": [{"text": "Normans", "answer_start": 4}],
                            "is_impossible": True,
                        },
                    ],
                }
            ],
        }
    ],
}

BOOLQ = [
    {
        "question": "do iran and afghanistan speak the same language",
        "title": "Persian language",
        "answer": True,
        "passage": "Persian, also known by its endonym Farsi, is spoken in Iran and Afghanistan.",
    },
    {
        "question": "is the liver part of the excretory system",
        "title": "Liver",
        "answer": False,
        "passage": "The liver is a vital organ found only in vertebrates which detoxifies.",
    },
    {
        "question": "is windows movie maker part of windows essentials",
        "title": "Windows Movie Maker",
        "answer": True,
        "passage": "Windows Movie Maker is a discontinued video editing program by Microsoft.",
    },
    {
        "question": "can you use oyster card at epsom station",
        "title": "Epsom railway station",
        "answer": False,
        "passage": "Epsom railway station serves the town of Epsom in Surrey.",
    },
]


def write_jsonl(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_squad_v2_reads_is_impossible_and_contexts(tmp_path):
    path = tmp_path / "dev-v2.0.json"
    path.write_text(json.dumps(SQUAD, indent=2))
    examples = load_squad_v2(path)
    assert [e.answerable for e in examples] == [True, False]
    assert examples[1].context.startswith("The Normans") and examples[0].source == "squad_v2"
    assert load_qa_file(path) == examples


def test_boolq_keeps_own_passages_answerable_and_mismatches_the_rest(tmp_path):
    path = write_jsonl(tmp_path / "dev.jsonl", BOOLQ)
    examples = load_boolq(path, mismatch_fraction=0.5, seed=1)
    assert sum(e.answerable for e in examples) == 2
    passages = {r["question"]: r["passage"] for r in BOOLQ}
    for e in examples:
        assert (e.context == passages[e.question]) == e.answerable
    assert load_boolq(path, seed=1) == examples
    assert load_qa_file(path) == load_boolq(path)


def test_idk_labels_from_flag_or_idk_answer(tmp_path):
    rows = [
        {"question": "What is the capital of France?", "answer": "Paris"},
        {"question": "What did I have for breakfast?", "answer": "I don't know."},
        {"question": "Who won?", "context": "The match was postponed.", "answerable": False},
    ]
    examples = load_idk(write_jsonl(tmp_path / "idk.jsonl", rows))
    assert [e.answerable for e in examples] == [True, False, False]
    assert examples[2].context == "The match was postponed."
    with pytest.raises(InterplabError, match="answerable"):
        load_idk(write_jsonl(tmp_path / "bad.jsonl", [{"question": "q?"}]))


def test_loaders_give_one_line_errors(tmp_path):
    with pytest.raises(InterplabError, match="does not exist"):
        load_squad_v2(tmp_path / "nope.json")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(InterplabError, match="not valid JSON"):
        load_squad_v2(tmp_path / "broken.json")
    with pytest.raises(InterplabError, match="passage"):
        load_boolq(write_jsonl(tmp_path / "b.jsonl", [{"question": "x"}, {"question": "y"}]))


def test_equations_are_balanced_seeded_and_labelled_by_definitions():
    examples = make_equations(100, seed=3)
    assert sum(e.answerable for e in examples) == 50
    assert examples == make_equations(100, seed=3) and examples != make_equations(100, seed=4)
    for e in examples:
        defined = set(re.findall(r"([a-z]) = \d+", e.context))
        used = set(re.findall(r"\b([a-z])\b", e.question.split("of", 1)[1]))
        assert used <= defined if e.answerable else len(used - defined) == 1


def test_celebrity_answerable_iff_asked_attribute_is_in_bio():
    examples = make_celebrity(60, seed=0)
    assert sum(e.answerable for e in examples) == 30
    keyword = {
        "year": "born in",
        "city": "grew up",
        "living": "works as",
        "instrument": "plays",
        "award": "won",
        "dish": "favourite dish",
    }
    for e in examples:
        cue = next(v for k, v in keyword.items() if k in e.question)
        assert (cue in e.context) == e.answerable
        assert len(re.findall(r"\.", e.context)) == 3


def test_prompt_ends_with_answer_cue():
    prompt = qa_prompt(QAExample("Ctx.", "Why?", True, "x"))
    assert prompt == "Context: Ctx.\nQuestion: Why?\nAnswer:"
    assert qa_prompt(QAExample("", "Why?", True, "x")).startswith("Question:")
