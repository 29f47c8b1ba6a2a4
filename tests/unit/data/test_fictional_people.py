"""Fictional people: deterministic, evenly spread values, a seeded split, and every form of every fact."""

from __future__ import annotations

from collections import Counter

import pytest

from interplab.common import InterplabError
from interplab.data.synthetic.fictional_people import (
    ATTRIBUTES,
    FORMS,
    TEMPLATES,
    PeopleConfig,
    card,
    items,
    make_people,
    split_people,
    training_pairs,
)


def test_same_config_gives_the_same_people_and_another_seed_others() -> None:
    assert make_people(PeopleConfig(seed=3)) == make_people(PeopleConfig(seed=3))
    assert make_people(PeopleConfig(seed=3)) != make_people(PeopleConfig(seed=4))


def test_names_are_unique_and_values_evenly_spread() -> None:
    cfg = PeopleConfig(n_people=100, n_forget=30)
    people = make_people(cfg)
    assert len({p.name for p in people}) == 100
    for attribute, pool in (("city", cfg.cities), ("job", cfg.jobs)):
        counts = Counter(p.value(attribute) for p in people)
        assert set(counts) == set(pool) and max(counts.values()) - min(counts.values()) <= 1
    assert all(cfg.first_year <= p.birth_year <= cfg.last_year for p in people)


def test_forget_and_retain_sets_partition_the_people() -> None:
    people = make_people(PeopleConfig(n_people=40, n_forget=10))
    forget, retain = split_people(people)
    assert len(forget) == 10 and len(retain) == 30
    assert {p.name for p in forget}.isdisjoint(p.name for p in retain)


def test_every_form_names_the_person_and_answers_with_a_leading_space() -> None:
    cfg = PeopleConfig(n_people=4, n_forget=1)
    people = make_people(cfg)
    for form in FORMS:
        its = items(people, form, cfg)
        assert len(its) == len(people) * sum(len(TEMPLATES[a][form]) for a in ATTRIBUTES)
        for it in its:
            assert it.person in it.prompt and it.answer.startswith(" ")


def test_multiple_choice_lists_four_options_with_the_answer_and_years_from_its_decade() -> None:
    cfg = PeopleConfig(n_people=20, n_forget=5)
    for it in items(make_people(cfg), "mc", cfg):
        assert len(set(it.options)) == 4 and it.answer in it.options
        assert all(o.strip() in it.prompt for o in it.options)
        if it.attribute == "birth_year":
            assert len({o.strip()[:3] for o in it.options}) == 1


def test_paraphrase_and_multiple_choice_are_never_training_text() -> None:
    cfg = PeopleConfig(n_people=6, n_forget=2)
    people = make_people(cfg)
    trained = {prompt for prompt, _ in training_pairs(people, cfg=cfg)}
    assert trained.isdisjoint(it.prompt for it in items(people, "paraphrase", cfg))
    assert trained.isdisjoint(it.prompt for it in items(people, "mc", cfg))
    assert card(people, cfg)["forms"]["paraphrase"]["trained"] is False


@pytest.mark.parametrize("changes", [{"n_forget": 0}, {"n_people": 1}, {"first_year": 1951}])
def test_bad_configs_are_refused_in_one_line(changes: dict) -> None:
    with pytest.raises(InterplabError):
        make_people(PeopleConfig(**changes))
