"""The probe attack reads the name's tokens where they are, fits a multinomial probe that separates what
is separable, and chooses its probe on validation people, not on the test people."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from interplab.common import InterplabError
from interplab.data.synthetic.fictional_people import JOBS, PeopleConfig, items, make_people
from interplab.models import load_model
from interplab.training.causal_lm import encode_pairs
from interplab.unlearning import KnowledgeOrganism, ProbeAttackConfig, ServedModel
from interplab.unlearning.probe_attack import (
    fit_softmax_probe,
    lens_readout,
    name_spans,
    position_acts,
    probe_attack,
    probe_features,
    probe_layers,
    value_tokens,
)
from unlearning_data import TINY_PEOPLE


@pytest.fixture()
def organism(tiny_organism: Path) -> KnowledgeOrganism:
    return KnowledgeOrganism.open(tiny_organism)


def test_name_span_covers_exactly_the_name_tokens(organism: KnowledgeOrganism) -> None:
    tok = organism.load("organism", "cpu").tokenizer
    its = items(organism.people[:3], "qa", organism.cfg.people) + items(organism.people[:3], "statement", organism.cfg.people)
    ids, spans = name_spans(tok, its)
    for it, row, (start, end) in zip(its, ids, spans, strict=True):
        assert tok.decode(row[start:end]).strip() == it.person


def test_positions_read_the_last_token_and_the_name(organism: KnowledgeOrganism) -> None:
    lm = organism.load("organism", "cpu")
    its = items(organism.people[:2], "statement", organism.cfg.people)
    acts = position_acts(ServedModel(lm), its, [1], ("last", "name_last", "name_mean"))
    alone = position_acts(ServedModel(lm), its[:1], [1], ("last", "name_last", "name_mean"))
    for key in acts:  # batching and padding change nothing
        torch.testing.assert_close(acts[key][:1], alone[key], atol=1e-5, rtol=1e-4)
    # "<name> lives in" and "<name> works as a" share every token up to the end of the name
    assert [its[0].prompt.split(" ")[:2], its[2].prompt.split(" ")[:2]] == [its[0].person.split(" ")] * 2
    for position in ("name_last", "name_mean"):
        torch.testing.assert_close(acts[(position, 1)][0], acts[(position, 1)][2], atol=1e-5, rtol=1e-4)
    assert not torch.allclose(acts[("last", 1)][0], acts[("last", 1)][2], atol=1e-3)


def test_softmax_probe_separates_separable_classes() -> None:
    gen = torch.Generator().manual_seed(0)
    centers = torch.randn(4, 16, generator=gen) * 4
    y = torch.arange(200) % 4
    x = centers[y] + torch.randn(200, 16, generator=gen)
    logits = fit_softmax_probe(x[:150], y[:150], 4, C=1.0)
    assert float((logits(x[150:]).argmax(1) == y[150:]).float().mean()) >= 0.95


def test_probe_attack_chooses_on_validation_and_reports_the_choice(organism: KnowledgeOrganism) -> None:
    lm = organism.load("organism", "cpu")
    forget = organism.forget
    cfg = ProbeAttackConfig(layers=(0, 1), concat=2)
    features = probe_features(ServedModel(lm), organism.people, organism.cfg.people, cfg, lm.n_layers)
    assert len(features.its) == 3 * len(organism.people) and features.layers == [0, 1]
    result = probe_attack(features, organism.retain, forget[:6], forget[6:], cfg, 0)
    assert result.choice.split("@")[0] in (*cfg.positions, "lens") and 0 <= result.accuracy <= 1
    assert 0 <= result.validation <= 1 and [layer for layer, _ in result.curve] == [0, 1]
    assert 0 < result.chance <= 1
    # the tiny tokenizer splits city names into several tokens that share the first: no readout candidates
    assert value_tokens(lm.tokenizer, features.its) is None and not features.lens and not result.choice.startswith("lens")


def test_lens_readout_at_the_last_layer_is_the_models_own_next_token_logits(tiny_llama: Path) -> None:
    lm = load_model(str(tiny_llama), device="cpu")
    served = ServedModel(lm)
    # values that are one token each in the tiny tokenizer (its city names are several, sharing " ")
    people_cfg = PeopleConfig(n_people=8, n_forget=4, cities=("water", "year", "the", "and"), jobs=JOBS[:4])
    its = items(make_people(people_cfg), "qa", people_cfg, ("city",))
    last = lm.n_layers - 1
    values, lens = lens_readout(served, its, {last: position_acts(served, its, [last], ("last",))[("last", last)]})
    tokens = value_tokens(lm.tokenizer, its)
    assert tokens is not None and values == sorted(tokens) and lens[last].shape == (len(its), len(values))
    for it, row in zip(its, lens[last], strict=True):
        with torch.no_grad():
            logits_NV, _ = served.answer_logits(encode_pairs(lm.tokenizer, [(it.prompt, it.answer)]))
        torch.testing.assert_close(row, logits_NV[0, [tokens[v] for v in values]], atol=1e-4, rtol=1e-4)
    # the tiny tokenizer's real city names share their first token: no readout there
    cities = items(make_people(TINY_PEOPLE), "qa", TINY_PEOPLE, ("city",))
    assert value_tokens(lm.tokenizer, cities) is None and lens_readout(served, cities, {}) == ([], {})


def test_a_readout_that_decodes_the_validation_people_is_chosen(organism: KnowledgeOrganism) -> None:
    lm = organism.load("organism", "cpu")
    cfg = ProbeAttackConfig(layers=(0, 1), concat=0, lens=False)
    features = probe_features(ServedModel(lm), organism.people, organism.cfg.people, cfg, lm.n_layers)
    values = sorted({p.city for p in organism.people})
    city = {p.name: p.city for p in organism.people}
    truth_NV = torch.stack([torch.eye(len(values))[values.index(city[it.person])] for it in features.its])
    noise_NV = torch.randn(truth_NV.shape, generator=torch.Generator().manual_seed(0))
    lensed = features._replace(lens={0: noise_NV, 1: 10 * truth_NV + noise_NV}, values=values)
    forget = organism.forget
    result = probe_attack(lensed, organism.retain, forget[:6], forget[6:], cfg, 0)
    assert result.choice == "lens@1" and result.validation == 1.0 and result.accuracy == 1.0
    assert [layer for layer, _ in result.curve] == [0, 1] and result.curve[1][1] == 1.0


def test_default_probe_layers_are_every_fourth_and_the_last_four() -> None:
    assert probe_layers(ProbeAttackConfig(), 30) == [0, 4, 8, 12, 16, 20, 24, 26, 27, 28, 29]
    with pytest.raises(InterplabError, match="probe layers"):
        probe_layers(ProbeAttackConfig(layers=(40,)), 30)
    with pytest.raises(InterplabError, match="positions"):
        ProbeAttackConfig(positions=("middle",)).check()
