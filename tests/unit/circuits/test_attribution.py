"""Attribution graphs: completeness against the real model, batching, pruning, interventions."""

from __future__ import annotations

import pytest
import torch

from circuit_helpers import random_transcoders
from interplab.circuits.attribution import GraphConfig, attribute
from interplab.circuits.graph import graph_json, node_ids
from interplab.circuits.interventions import frozen_change
from interplab.common import InterplabError

PROMPT = "The cat sat on the mat because it was"


def _hf_logit(lm, prompt: str, token: int) -> float:
    ids = lm.tokenizer(prompt, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        return float(lm.model(input_ids=ids).logits[0, -1, token])


@pytest.mark.parametrize("arch", ["topk_skip_transcoder", "jumprelu_transcoder"])
def test_contributions_plus_errors_and_bias_sum_to_the_real_logit(tiny64, arch):
    tcs = random_transcoders(tiny64.n_layers, tiny64.d_model, arch)
    g = attribute(tiny64.model, tiny64.tokenizer, tcs, PROMPT, GraphConfig(max_feature_nodes=10_000, batch_size=16))
    assert g.n_features > 50 and len(g.row_features) > 0
    real = _hf_logit(tiny64, PROMPT, g.logit_tokens[0])
    total = float(g.rows[0].double().sum() + g.row_bias[0])
    assert abs(total - real) < 1e-4, (total, real)
    # every visited feature's incoming edges + bias add up to its activation too
    assert float(g.completeness_error().max()) < 1e-8
    errors = g.rows[0, g.n_features: g.n_features + g.n_layers * g.n_positions]
    assert float(errors.abs().sum()) > 0  # random transcoders leave real error nodes


def test_rows_do_not_depend_on_how_targets_are_batched(tiny64):
    tcs = random_transcoders(tiny64.n_layers, tiny64.d_model)
    a = attribute(tiny64.model, tiny64.tokenizer, tcs, PROMPT, GraphConfig(max_feature_nodes=40, batch_size=4))
    b = attribute(tiny64.model, tiny64.tokenizer, tcs, PROMPT, GraphConfig(max_feature_nodes=40, batch_size=40))
    common = sorted(set(a.row_features.tolist()) & set(b.row_features.tolist()))
    assert len(common) >= 20
    ra = {int(c): i + 1 for i, c in enumerate(a.row_features)}
    rb = {int(c): i + 1 for i, c in enumerate(b.row_features)}
    for c in common:
        torch.testing.assert_close(a.rows[ra[c]], b.rows[rb[c]])
    torch.testing.assert_close(a.rows[0], b.rows[0])


def test_graph_json_keeps_the_logit_and_links_between_listed_nodes(tiny64):
    tcs = random_transcoders(tiny64.n_layers, tiny64.d_model)
    g = attribute(tiny64.model, tiny64.tokenizer, tcs, PROMPT, GraphConfig(max_feature_nodes=64, batch_size=16))
    data = graph_json(g, node_threshold=0.8, edge_threshold=0.98)
    ids = {n["node_id"] for n in data["nodes"]}
    assert f"L_{g.logit_tokens[0]}" in ids
    assert data["links"] and all(link["source"] in ids and link["target"] in ids for link in data["links"])
    kinds = {n["feature_type"] for n in data["nodes"]}
    assert {"logit", "transcoder"} <= kinds
    full = graph_json(g, node_threshold=1.0, edge_threshold=1.0)
    assert len(full["links"]) > len(data["links"])  # pruning removed something
    assert len(node_ids(g)) == g.rows.shape[1]


def test_graph_direct_effects_equal_interventions_in_the_replacement_model(tiny64):
    tcs = random_transcoders(tiny64.n_layers, tiny64.d_model)
    g = attribute(tiny64.model, tiny64.tokenizer, tcs, PROMPT, GraphConfig(max_feature_nodes=64, batch_size=16))
    cols = g.rows[0, : g.n_features].abs().argsort(descending=True)[:5].tolist()
    for c in cols:  # ablation (scale 0) in the frozen model moves the logit by minus the edge weight
        assert frozen_change(tiny64.model, tcs, g, c, 0.0) == pytest.approx(-float(g.rows[0, c]), rel=1e-6)


def test_frozen_attention_change_is_exact_without_mlp_nonlinearity_downstream(tiny64):
    from interplab.circuits.interventions import check_interventions

    tcs = random_transcoders(tiny64.n_layers, tiny64.d_model)
    g = attribute(tiny64.model, tiny64.tokenizer, tcs, PROMPT, GraphConfig(max_feature_nodes=64, batch_size=16))
    last = tiny64.n_layers - 1
    cols = [c for c in range(g.n_features)
            if int(g.feat_layer[c]) == last and int(g.feat_pos[c]) == g.n_positions - 1][:3]
    assert cols
    rows = check_interventions(tiny64.model, tcs, g, columns=cols)
    # an edit at the last layer's MLP output reaches the logit only through the final norm: with its scale
    # held the change is the graph's direct effect, and the real model differs only by that norm moving
    for row, c in zip(rows, cols, strict=True):
        assert row["delta_frozen_attn"] == pytest.approx(-float(g.rows[0, c]), rel=1e-6, abs=1e-9)
        assert row["delta_frozen_attn"] == pytest.approx(row["delta_graph"], rel=1e-6, abs=1e-9)
    assert all(abs(r["delta_graph"]) > 1e-6 for r in rows)
    assert any(abs(r["delta_real"] - r["delta_frozen_attn"]) > 1e-9 for r in rows)


def test_top_features_by_influence_reach_earlier_layers_and_weigh_the_logit_row(tiny64):
    from interplab.circuits.attribution import influence
    from interplab.circuits.interventions import top_features

    tcs = random_transcoders(tiny64.n_layers, tiny64.d_model)
    g = attribute(tiny64.model, tiny64.tokenizer, tcs, PROMPT, GraphConfig(max_feature_nodes=64, batch_size=16))
    direct = top_features(g, 5, "direct")
    assert direct == g.rows[0, : g.n_features].abs().argsort(descending=True)[:5].tolist()
    by_influence = top_features(g, 5, "influence")
    assert len(set(by_influence)) == 5 and all(0 <= c < g.n_features for c in by_influence)
    # a feature of the last layer feeds no other row: its influence is its share of the logit row's |A|
    weights = torch.zeros(g.rows.shape[0], dtype=torch.float64)
    weights[0] = 1.0
    infl = influence(g.rows.double(), g.row_cols(), weights, g.rows.shape[1])
    share = g.rows[0].double().abs() / g.rows[0].double().abs().sum()
    last = [c for c in range(g.n_features) if int(g.feat_layer[c]) == tiny64.n_layers - 1]
    assert torch.allclose(infl[last], share[last], rtol=1e-9, atol=1e-15)
    # earlier features gain influence through the rows of the features they feed
    earlier = [c for c in range(g.n_features) if int(g.feat_layer[c]) < tiny64.n_layers - 1]
    assert bool((infl[earlier] > share[earlier] + 1e-12).any())
    with pytest.raises(InterplabError, match="unknown feature selection"):
        top_features(g, 5, "random")


def test_first_position_features_join_its_error_node_and_completeness_still_holds(tiny64):
    tcs = random_transcoders(tiny64.n_layers, tiny64.d_model)
    kept = attribute(tiny64.model, tiny64.tokenizer, tcs, PROMPT,
                     GraphConfig(max_feature_nodes=16, batch_size=16, first_position_features=True))
    dropped = attribute(tiny64.model, tiny64.tokenizer, tcs, PROMPT, GraphConfig(max_feature_nodes=16, batch_size=16))
    assert bool((kept.feat_pos == 0).any())  # random transcoders fire at the sink position too
    assert not bool((dropped.feat_pos == 0).any())
    assert dropped.n_features == kept.n_features - int((kept.feat_pos == 0).sum())
    real = _hf_logit(tiny64, PROMPT, dropped.logit_tokens[0])
    for g in (kept, dropped):
        assert abs(float(g.rows[0].double().sum() + g.row_bias[0]) - real) < 1e-4
        assert float(g.completeness_error().max()) < 1e-8


def test_linear_change_is_the_graph_prediction_once_every_feature_row_is_computed(tiny64):
    from interplab.circuits.interventions import graph_prediction, linear_change

    tcs = random_transcoders(tiny64.n_layers, tiny64.d_model)
    full = attribute(tiny64.model, tiny64.tokenizer, tcs, PROMPT, GraphConfig(max_feature_nodes=10_000, batch_size=64))
    # no budget: every feature with a path to the logit gets its row (the rest cannot move the logit)
    assert full.meta["n_visited"] == len(full.row_features) < 10_000
    first = [c for c in range(full.n_features) if int(full.feat_layer[c]) == 0]
    cols = sorted(first, key=lambda c: -abs(float(full.rows[0, c])))[:4]
    for c in cols:
        for scale in (0.0, 2.0):
            predicted = graph_prediction(full, c, scale)[1]
            assert linear_change(tiny64.model, tcs, full, c, scale) == pytest.approx(predicted, rel=1e-5, abs=1e-7)
    # with a row budget the graph's prediction is a truncation of it, and not the same number
    small = attribute(tiny64.model, tiny64.tokenizer, tcs, PROMPT, GraphConfig(max_feature_nodes=4, batch_size=4))
    gaps = [abs(graph_prediction(small, c, 0.0)[1] - linear_change(tiny64.model, tcs, small, c, 0.0))
            for c in cols]
    assert max(gaps) > 1e-6
