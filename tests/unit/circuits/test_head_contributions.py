"""Head contributions to an MLP latent's pre-activation add up to it exactly, on three families."""

from __future__ import annotations

import pytest
import torch

from circuit_helpers import random_transcoders
from interplab.circuits.head_contributions import contributions, neuron_reader, transcoder_reader
from interplab.common import InterplabError
from interplab.models import load_model

TEXTS = ["The cat sat on the mat because it was warm.", "A dog ran to the river and back again."]


def _lm(tiny_model_dir, family):
    lm = load_model(tiny_model_dir(family, n_layers=3), device="cpu")
    lm.model.double()
    return lm


@pytest.mark.parametrize("family", ["llama", "gpt2", "gpt_neox"])
def test_contributions_add_up_to_the_pre_activation(tiny_model_dir, family):
    lm = _lm(tiny_model_dir, family)
    batch = lm.tokenize(TEXTS, max_length=16)
    tcs = random_transcoders(3, lm.d_model, d_sae=32)
    for reader in (transcoder_reader(tcs[2], 2, 5), neuron_reader(lm.model, 2, 7), neuron_reader(lm.model, 0, 1)):
        c = contributions(lm.model, batch, reader)
        torch.testing.assert_close(c.total_BS(), c.pre_BS, rtol=0, atol=1e-9)
        n_layers = reader.layer + (0 if family == "gpt_neox" else 1)  # Pythia-style parallel blocks
        assert c.heads_BSLH.shape == (2, batch["input_ids"].shape[1], n_layers, 4)
        assert n_layers == 0 or float(c.heads_BSLH.abs().sum()) > 0
    assert set(c.patterns) == set(range(1 if family != "gpt_neox" else 0))


def test_a_head_contribution_is_what_ablating_its_output_removes_from_the_pre_activation(tiny_model_dir):
    lm = _lm(tiny_model_dir, "llama")
    batch = lm.tokenize(TEXTS[:1], max_length=12)
    reader = neuron_reader(lm.model, 2, 3)
    c = contributions(lm.model, batch, reader)
    # zeroing head 1 of layer 2 (the MLP's own layer) changes only this layer's residual before its MLP,
    # so with the norm scale held, the pre-activation drops by exactly that head's contribution
    d_head = lm.d_model // 4

    def drop_head(z):
        z = z.clone()
        z[..., d_head: 2 * d_head] = 0
        return z

    from interplab.models.interventions import replace_activation

    with replace_activation(lm.model, "blocks.2.attn_z", drop_head):
        changed = contributions(lm.model, batch, reader)
    scale_ratio = changed.others["embed"] / c.others["embed"]  # s changes with the residual; undo it
    want = (c.pre_BS - reader.bias - c.heads_BSLH[..., 2, 1]) * scale_ratio + reader.bias
    torch.testing.assert_close(changed.pre_BS, want, rtol=1e-7, atol=1e-9)
    assert float(changed.heads_BSLH[..., 2, 1].abs().max()) == 0.0
    assert float(c.heads_BSLH[..., 2, 1].abs().max()) > 1e-3


def test_gemma_sandwich_norms_are_refused(tiny_model_dir):
    lm = load_model(tiny_model_dir("gemma3", n_layers=2), device="cpu")
    with pytest.raises(InterplabError, match="not gemma3"):
        contributions(lm.model, lm.tokenize(TEXTS[:1], max_length=8), neuron_reader(lm.model, 1, 0))
