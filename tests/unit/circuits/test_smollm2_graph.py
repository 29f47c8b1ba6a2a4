"""A graph on the real SmolLM2-135M (30 layers): completeness in float64 (slow)."""

from __future__ import annotations

import pytest
import torch

from circuit_helpers import random_transcoders
from interplab.circuits.attribution import GraphConfig, attribute


@pytest.mark.slow
def test_smollm2_graph_contributions_sum_to_the_real_logit(smollm2):
    model = smollm2.model.double()
    try:
        tcs = random_transcoders(smollm2.n_layers, smollm2.d_model, d_sae=1152)
        prompt = "The capital of France is"
        g = attribute(model, smollm2.tokenizer, tcs, prompt, GraphConfig(max_feature_nodes=16, batch_size=8))
        ids = smollm2.tokenizer(prompt, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            real = float(model(input_ids=ids).logits[0, -1, g.logit_tokens[0]])
        assert abs(float(g.rows[0].double().sum() + g.row_bias[0]) - real) < 1e-4
        assert float(g.completeness_error().max()) < 1e-4
        assert g.n_layers == 30 and len(g.row_features) == 16
    finally:
        model.float()
