from interplab.autointerp.examples import Example
from interplab.autointerp.prompts import (
    detection_messages,
    explain_messages,
    format_example,
    fuzzing_messages,
    parse_explanation,
    parse_judgement,
)

EX = Example(tokens=["The", " cat", " sat", "\n", " down"], acts=[0.0, 3.5, 0.0, 0.0, 1.0])


def test_activating_tokens_are_marked_with_spaces_outside_the_brackets():
    assert format_example(EX) == "The <<cat>> sat\\n <<down>>"
    assert format_example(EX, marked=[0]) == "<<The>> cat sat\\n down"
    assert format_example(EX, marked=[]) == "The cat sat\\n down"


def test_explain_prompt_lists_examples_and_strongest_tokens():
    messages = explain_messages([EX, EX])
    user = messages[-1]["content"]
    assert "Example 2: The <<cat>> sat" in user and "'cat' (3.50)" in user
    assert messages[0]["role"] == "system"


def test_judge_prompts_number_the_examples_and_hide_or_place_marks():
    det = detection_messages("cats", [EX])[-1]["content"]
    assert "Example 1: The cat sat" in det and "<<" not in det
    fuz = fuzzing_messages("cats", [EX], [[2]])[-1]["content"]
    assert "Example 1: The cat <<sat>>" in fuz


def test_explanation_parsing_takes_the_last_explanation_line_or_falls_back():
    assert parse_explanation('thinking...\nExplanation: "the word cat"') == "the word cat"
    assert parse_explanation("  \nanimals, mostly cats\nmore") == "animals, mostly cats"
    assert parse_explanation("") == "(no explanation)"


def test_judgement_parsing_needs_a_list_of_the_right_length():
    assert parse_judgement("Sure: [1, 0, 1]", 3) == [1, 0, 1]
    assert parse_judgement("[yes, no]", 2) == [1, 0]
    assert parse_judgement("first guess [0, 0], final answer [1, 1]", 2) == [1, 1]
    assert parse_judgement("[1, 0]", 3) is None
    assert parse_judgement("no list here", 1) is None
