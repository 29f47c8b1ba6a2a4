"""Scoring matches decoding, the output filter acts only where it should, network edits live only inside
their block, and each method changes what it claims to change (and nothing it claims not to)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from interplab.common import InterplabError
from interplab.data.synthetic.fictional_people import items
from interplab.training.causal_lm import encode_pairs, sequence_logprob
from interplab.unlearning import METHODS, KnowledgeOrganism, ServedModel, UnlearningData, unlearn
from interplab.unlearning.direction_removal import ProjectOut
from interplab.unlearning.methods import GradientAscentConfig, OutputBlockConfig, RMUConfig
from interplab.unlearning.scoring import perplexity, score_answers, score_choices
from unlearning_data import TINY_METHODS


@pytest.fixture()
def organism(tiny_organism: Path) -> KnowledgeOrganism:
    return KnowledgeOrganism.open(tiny_organism)


def _data(org: KnowledgeOrganism) -> UnlearningData:
    return UnlearningData(org.cfg.people, org.forget, org.retain, ["The cat sat on the mat."] * 4)


def test_exact_match_is_what_greedy_decoding_says(organism: KnowledgeOrganism) -> None:
    lm = organism.load("organism", "cpu")
    gold = organism.load("gold", "cpu")
    its = items(organism.forget[:4], "qa", organism.cfg.people)
    for model in (lm, gold):
        scores = score_answers(ServedModel(model), its)
        for it, correct in zip(its, scores.correct.tolist(), strict=True):
            n = len(model.tokenizer(it.answer, add_special_tokens=False)["input_ids"])
            inputs = model.tokenize(it.prompt)
            out = model.model.generate(**inputs, max_new_tokens=n, do_sample=False, pad_token_id=model.tokenizer.pad_token_id)
            decoded = model.tokenizer.decode(out[0, inputs["input_ids"].shape[1]:])
            assert (decoded == it.answer) == correct, (it.prompt, decoded)


def test_multiple_choice_picks_the_option_with_the_highest_sequence_likelihood(organism: KnowledgeOrganism) -> None:
    lm = organism.load("gold", "cpu")
    its = items(organism.people[:6], "mc", organism.cfg.people)
    picked = score_choices(ServedModel(lm), its)
    for it, correct in zip(its, picked.tolist(), strict=True):
        with torch.no_grad():
            lp = sequence_logprob(lm.model, encode_pairs(lm.tokenizer, [(it.prompt, o) for o in it.options]))
        assert (it.options[int(lp.argmax())] == it.answer) == correct


def test_output_filter_blocks_forget_answers_only(organism: KnowledgeOrganism) -> None:
    lm = organism.load("organism", "cpu")
    served = unlearn(lm, _data(organism), "output-block", OutputBlockConfig(), 0)
    forget, retain = items(organism.forget, "qa", organism.cfg.people), items(organism.retain, "qa", organism.cfg.people)
    assert score_answers(served, forget).accuracy() == 0.0
    assert score_answers(served, forget, with_filter=False).accuracy() == score_answers(ServedModel(lm), forget).accuracy()
    torch.testing.assert_close(score_answers(served, retain).logprob, score_answers(ServedModel(lm), retain).logprob)
    texts = ["The weather in the city was calm.", "Numbers like 1987 appear in dates."]
    assert perplexity(served, texts) == pytest.approx(perplexity(ServedModel(lm), texts))


def test_network_edits_act_inside_their_block_only(organism: KnowledgeOrganism) -> None:
    lm = organism.load("organism", "cpu")
    its = items(organism.forget[:3], "qa", organism.cfg.people)
    v = torch.nn.functional.normalize(torch.randn(lm.d_model, generator=torch.Generator().manual_seed(0)), dim=0)
    edited = ServedModel(lm, (ProjectOut("blocks.0.resid_post", v),))
    plain = score_answers(ServedModel(lm), its).logprob
    assert not torch.allclose(score_answers(edited, its).logprob, plain)
    torch.testing.assert_close(score_answers(ServedModel(lm), its).logprob, plain)


def _changed(before: dict, model: torch.nn.Module) -> set[str]:
    return {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}


@pytest.mark.parametrize("name", list(METHODS))
def test_each_method_changes_only_what_it_claims(organism: KnowledgeOrganism, name: str) -> None:
    lm = organism.load("organism", "cpu")
    before = {k: v.clone() for k, v in lm.model.state_dict().items()}
    served = unlearn(lm, _data(organism), name, TINY_METHODS.get(name), seed=0)
    changed = _changed(before, lm.model)
    if name in ("sae-clamp", "output-block"):
        assert not changed  # edits and filters leave the weights alone
        assert (served.edits, served.output_filter) != ((), None)
    elif name == "rmu":
        assert changed and all(".mlp." in k and k.split(".layers.")[1].split(".")[0] in {"0", "1"} for k in changed)
    else:
        assert changed and not any("embed" in k for k in changed)


def test_gradient_ascent_lowers_the_forget_answers_likelihood(organism: KnowledgeOrganism) -> None:
    lm = organism.load("organism", "cpu")
    its = items(organism.forget, "qa", organism.cfg.people)
    before = score_answers(ServedModel(lm), its).logprob.mean()
    unlearn(lm, _data(organism), "gradient-ascent", GradientAscentConfig(steps=5, lr=1e-3), 0)
    assert score_answers(ServedModel(lm), its).logprob.mean() < before - 0.3


def test_unknown_method_and_wrong_config_are_refused(organism: KnowledgeOrganism) -> None:
    lm = organism.load("organism", "cpu")
    with pytest.raises(InterplabError, match="unknown unlearning method"):
        unlearn(lm, _data(organism), "lobotomy")
    with pytest.raises(InterplabError, match="takes a RMUConfig"):
        unlearn(lm, _data(organism), "rmu", GradientAscentConfig())
    with pytest.raises(InterplabError, match="RMU layer"):
        unlearn(lm, _data(organism), "rmu", RMUConfig(layer=7))


def test_scores_come_back_in_item_order_whatever_the_batching(organism: KnowledgeOrganism) -> None:
    served = ServedModel(organism.load("organism", "cpu"))
    its = [it for form in ("qa", "paraphrase") for it in items(organism.people[:5], form, organism.cfg.people)]
    batched, alone = score_answers(served, its, batch_size=4), score_answers(served, its, batch_size=1)
    assert batched.correct.tolist() == alone.correct.tolist()
    torch.testing.assert_close(batched.logprob, alone.logprob, atol=1e-4, rtol=1e-4)
    mc = items(organism.people[:5], "mc", organism.cfg.people)
    assert score_choices(served, mc, batch_size=4).tolist() == score_choices(served, mc, batch_size=1).tolist()
