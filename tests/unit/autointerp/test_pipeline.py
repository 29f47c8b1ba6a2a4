import json
import re

import pytest
import torch

from interplab.autointerp.clients import LocalHFClient, OpenAICompatibleClient
from interplab.autointerp.examples import ExampleConfig, collect_examples, split_held_out
from interplab.autointerp.pipeline import AutointerpConfig, examples_from_db, run_autointerp, summarize
from interplab.autointerp.score import ScoreConfig
from interplab.autointerp.serve import serve_client
from interplab.common import InterplabError
from interplab.data.corpus import load_demo_corpus
from interplab.saes import make_sae, sae_config

HOOK = "blocks.0.resid_post"


@pytest.fixture(scope="module")
def sae():
    torch.manual_seed(0)
    return make_sae(sae_config("topk", d_in=64, d_sae=32, k=2, metadata={"hook_name": HOOK}))


@pytest.fixture(scope="module")
def texts():
    return list(load_demo_corpus())[:40]


def test_collected_examples_are_sorted_silent_where_random_and_split_without_overlap(gpt2, sae, texts):
    cfg = ExampleConfig(context=16, n_top=6, n_random=6)
    examples = collect_examples(gpt2, sae, HOOK, texts, top_n=3, cfg=cfg)
    assert len(examples) == 3
    for ex in examples.values():
        maxes = [e.max_act for e in ex.top]
        assert maxes == sorted(maxes, reverse=True) and maxes[0] > 0
        assert all(e.max_act > 0 for e in ex.quantile) and all(e.max_act == 0 for e in ex.random)
        assert all(len(e.tokens) == len(e.acts) == 16 for e in ex.top + ex.random)
        shown, held = split_held_out(ex)
        shown_texts = {e.text() for e in shown.top + shown.quantile + shown.random}
        assert not shown_texts & {e.text() for e in held.top + held.quantile + held.random}


def test_out_of_range_features_are_a_one_line_error(gpt2, sae, texts):
    with pytest.raises(InterplabError, match="out of range"):
        collect_examples(gpt2, sae, HOOK, texts[:5], features=[99], cfg=ExampleConfig(context=16))


def test_explain_pipeline_against_a_real_local_server_writes_explanations_and_scores(
    gpt2, sae, texts, tmp_path
):
    examples = collect_examples(
        gpt2, sae, HOOK, texts, features=[0, 1], cfg=ExampleConfig(context=16, n_top=4, n_random=4)
    )
    cfg = AutointerpConfig(score=ScoreConfig(batch_size=4, max_examples=4))
    cfg.explain.max_tokens = 12
    with serve_client(LocalHFClient(gpt2)) as server:
        client = OpenAICompatibleClient(server.url)
        records = run_autointerp(client, examples, tmp_path / "run", cfg)
    lines = (tmp_path / "run" / "explanations.jsonl").read_text().splitlines()
    assert [json.loads(line)["feature"] for line in lines] == [0, 0, 1, 1]
    for rec in records:
        assert rec["explanation"] and 0.0 <= rec["detection"] <= 1.0 and 0.0 <= rec["fuzzing"] <= 1.0
    assert (tmp_path / "run" / "scores.csv").read_text().count("\n") == 5
    index = json.loads((tmp_path / "run" / "index.json").read_text())
    assert index["summary"]["n_features"] == 2 and index["summary"]["token-stats detection n"] == 2


def test_a_second_run_refuses_the_folder_and_resume_skips_finished_latents(cat_examples, judge, tmp_path):
    run_autointerp(judge, {7: cat_examples}, tmp_path)
    calls = judge.calls
    with pytest.raises(InterplabError, match="--resume"):
        run_autointerp(judge, {7: cat_examples}, tmp_path)
    records = run_autointerp(judge, {7: cat_examples, 8: cat_examples}, tmp_path, resume=True)
    assert sorted(r["feature"] for r in records) == [7, 7, 8, 8]  # the LLM's and the baseline's
    assert judge.calls - calls == calls  # only latent 8 was explained and scored again
    llm = [r for r in records if not r["baseline"]]
    assert llm[0]["detection"] == 1.0 and llm[0]["explanation"] == "the word cat"


def test_examples_are_read_from_and_explanations_written_to_the_dashboards_db(
    cat_db, cat_examples, judge, tmp_path
):
    db, sae_id = cat_db
    examples = examples_from_db(db, sae_id, [0], n_random=4)
    assert len(examples[0].top) == 6 and len(examples[0].random) == 1
    assert all(a == 0 for e in examples[0].random for a in e.acts)

    def to_db(rec):
        db.write_explanation(
            sae_id, rec["feature"], rec["explanation"], rec["explainer"], rec["detection"], rec["fuzzing"]
        )

    run_autointerp(judge, {0: cat_examples}, tmp_path / "run", sink=to_db)
    saved = {e.explainer: e for e in db.get_explanations(sae_id, 0)}
    assert saved[judge.name].text == "the word cat" and saved[judge.name].detection == 1.0
    assert saved["token-stats"].text.startswith("fires on 'cat'") and saved["token-stats"].detection == 1.0


def _dense_sae(latent: int = 0):
    """A TopK SAE whose `latent` fires on every token (a huge bias, no input weight), like a real SAE's densest."""
    torch.manual_seed(0)
    sae = make_sae(sae_config("topk", d_in=64, d_sae=32, k=2, metadata={"hook_name": HOOK}))
    with torch.no_grad():
        sae.W_enc[:, latent] = 0.0
        sae.b_enc[latent] = 1e4
    return sae


def test_top_n_passes_over_latents_that_fire_in_every_window_so_each_pick_has_negatives(gpt2, texts):
    cfg = ExampleConfig(context=16, n_top=4, n_random=6)
    examples = collect_examples(gpt2, _dense_sae(0), HOOK, texts, top_n=3, cfg=cfg)
    assert 0 not in examples and len(examples) == 3
    assert all(len(ex.random) == 6 for ex in examples.values())
    assert all(len(split_held_out(ex)[1].random) == 3 for ex in examples.values())


def test_the_first_position_of_a_causal_window_is_never_an_activating_token(gpt2, texts):
    cfg = ExampleConfig(context=16, n_top=4, n_random=6)
    dense = collect_examples(gpt2, _dense_sae(0), HOOK, texts, features=[0], cfg=cfg)[0]
    assert dense.random == []  # it fires in every window: no negatives, detection cannot score it
    eos = gpt2.tokenizer.eos_token  # the separator between texts: a special token, never activating either
    for ex in dense.top:
        assert ex.acts[0] == 0 and all((a > 0) == (t != eos) for t, a in zip(ex.tokens[1:], ex.acts[1:], strict=True))
    assert any(eos in ex.tokens for ex in dense.top + dense.quantile)
    kept = collect_examples(gpt2, _dense_sae(0), HOOK, texts, features=[0], cfg=ExampleConfig(context=16, skip_first=0))
    assert all(ex.acts[0] > 0 for ex in kept[0].top)


def test_wordpiece_examples_keep_the_spaces_between_words(minilm):
    from interplab.autointerp.examples import token_windows

    torch.manual_seed(0)
    sae = make_sae(sae_config("topk", d_in=384, d_sae=64, k=4))
    texts = list(load_demo_corpus())[:30]
    cfg = ExampleConfig(context=16, n_top=3)
    examples = collect_examples(minilm, sae, "blocks.1.resid_post", texts, features=[0, 1], cfg=cfg)
    def words(text):  # the tokenizer's own decode puts no space before punctuation
        return re.sub(r" ([^\w\s])", r"\1", " ".join(text.split()))

    decoded = {words(minilm.tokenizer.decode(row)).removeprefix("##") for row in token_windows(minilm, texts, 16).tolist()}
    for ex in examples[0].top + examples[1].top:
        assert words(ex.text()) in decoded and len(ex.text().split()) >= 10


def _record(feature, explainer, auroc):
    return {"feature": feature, "explainer": explainer, "judge": "j", "detection": 0.5,
            "detection_auroc": auroc, "fuzzing": None, "fuzzing_auroc": None}


def test_the_summary_gives_each_explainers_auroc_spread_and_wins_over_the_baseline():
    rec = _record
    records = [rec(0, "token-stats", 0.8), rec(1, "token-stats", 0.6), rec(0, "llm", 0.7), rec(1, "llm", 0.9)]
    summary = summarize(records)
    assert summary["token-stats detection_auroc mean"] == 0.7 and summary["token-stats detection_auroc n"] == 2
    assert summary["llm detection_auroc above baseline"] == "1 of 2" and summary["llm fuzzing_auroc n"] == 0
