"""Attention–MLP interactions: scores, look-ups and the report, on a tiny Llama whose latent is planted."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from interplab.circuits.attention_mlp import (
    AttentionMLPConfig,
    auroc,
    head_table,
    logit_lens,
    next_token_candidates,
    scan,
    token_specificity,
)
from interplab.circuits.head_contributions import Reader, neuron_reader
from interplab.cli import app
from interplab.data.text import load_texts
from interplab.models import load_model
from interplab.models.interventions import capture


def test_auroc_matches_the_pairwise_definition_with_ties():
    gen = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 5, (60,), generator=gen).double()
    pos = torch.rand(60, generator=gen) > 0.6
    pairs = [(float(a > b) + 0.5 * float(a == b)) for a in scores[pos] for b in scores[~pos]]
    assert auroc(scores, pos) == pytest.approx(sum(pairs) / len(pairs))
    assert auroc(torch.arange(4.0), torch.tensor([False, False, True, True])) == 1.0


def test_a_planted_next_token_direction_is_the_most_specific_candidate(tiny_model_dir):
    lm = load_model(tiny_model_dir("llama", n_layers=2), device="cpu")
    w_U = lm.model.get_output_embeddings().weight.detach()
    norm_w = lm.model.model.norm.weight.detach()
    writes = torch.randn(50, lm.d_model, generator=torch.Generator().manual_seed(1)) * 0.02
    writes[17] = 3.0 * w_U[42] / norm_w  # through the final norm's weight this is W_U[42]
    cands = next_token_candidates(lm.model, writes, top=3)
    assert cands[0][0] == 17 and cands[0][2][0] == 42
    assert float(token_specificity(logit_lens(lm.model, writes[17:18]))) > 5 * cands[1][1] / cands[0][1]


def test_a_head_that_writes_the_latents_reading_direction_ranks_first_with_a_high_auroc(tiny_model_dir):
    lm = load_model(tiny_model_dir("llama", n_layers=2), device="cpu")
    texts = load_texts(None)[:24]
    d_head = lm.d_model // 4
    attn = lm.model.model.layers[1].self_attn
    with torch.no_grad():  # make layer 1's head 2 loud, and read along what it writes most
        attn.o_proj.weight[:, 2 * d_head: 3 * d_head] *= 30
    batch = lm.tokenize(texts[:8], max_length=32)
    with torch.no_grad(), capture(lm.model, ["blocks.1.attn_z"]) as acts:
        lm.model(**batch)
    z = acts["blocks.1.attn_z"][batch["attention_mask"].bool()][:, 2 * d_head: 3 * d_head]
    writes = z @ attn.o_proj.weight[:, 2 * d_head: 3 * d_head].detach().T
    r = torch.linalg.svd(writes - writes.mean(0), full_matrices=False).Vh[0]
    r = r / lm.model.model.layers[1].post_attention_layernorm.weight.detach()
    reader = Reader(1, r, 0.0, torch.zeros(lm.d_model), "planted", activation=lambda x: (x @ r).relu())
    cfg = AttentionMLPConfig(top_positions=30, max_texts=24, examples_per_head=5)
    s = scan(lm, texts, reader, cfg)
    assert len(s.activation_N) > 200 and s.heads_NLH.shape[1:] == (2, 4)
    first = head_table(s, cfg, lm.tokenizer.decode)[0]
    assert (first["layer"], first["head"]) == (1, 2)
    assert first["auroc"] > 0.9 and first["pearson_r"] > 0.8
    assert first["attends_to"]


def test_attention_mlp_command_writes_a_report_for_a_neuron(tmp_path, tiny_model_dir):
    model_dir = tiny_model_dir("gpt2", n_layers=2)
    res = CliRunner().invoke(app, ["attention-mlp", "--model", str(model_dir), "--layer", "1", "--out",
                                   str(tmp_path / "r"), "--max-texts", "16", "--top-positions", "8"])
    assert res.exit_code == 0, res.output
    index = json.loads((tmp_path / "r" / "index.json").read_text())
    assert index["kind"] == "attention-mlp" and index["summary"]["latent"].startswith("neuron 1/")
    assert {t["name"] for t in index["tables"]} == {"candidates", "heads", "contribution_when_active", "auroc"}
    heads = json.loads((tmp_path / "r" / "tables" / "heads.json").read_text())
    assert len(heads) == 2 * 4 and heads[0]["mean_when_active"] >= heads[-1]["mean_when_active"]
    assert (tmp_path / "r" / "figures" / "auroc.png").read_bytes()[:4] == b"\x89PNG"
    n = int(index["summary"]["latent"].split("/")[1])
    assert neuron_reader(load_model(model_dir, device="cpu").model, 1, n).name == index["summary"]["latent"]
