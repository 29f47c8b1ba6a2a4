"""End to end: `interplab probe` on the real MiniLM with a briefly trained SAE, offline, into a report folder."""

from __future__ import annotations

import json

import torch
from typer.testing import CliRunner

from interplab.cli import app
from interplab.data.qa_formats import qa_prompt
from interplab.data.synthetic.answerability import make_celebrity, make_equations
from interplab.models.interventions import run_to_capture
from interplab.saes import TopKConfig, make_sae, save_sae

HOOK = "blocks.3.resid_post"
SQUAD = {
    "version": "v2.0",
    "data": [
        {
            "title": "T",
            "paragraphs": [
                {
                    "context": f"The river {name} flows north through the valley of {place} and reaches the sea at Port {name}.",
                    "qas": [
                        {
                            "id": f"{i}a",
                            "question": f"Where does the river {name} reach the sea?",
                            "answers": [{"text": f"Port {name}", "answer_start": 60}],
                            "is_impossible": False,
                        },
                        {
                            "id": f"{i}b",
                            "question": f"Who built the first bridge over the river {name}?",
                            "answers": [],
                            "plausible_answers": [{"text": place, "answer_start": 40}],
                            "is_impossible": True,
                        },
                    ],
                }
            ],
        }
        for i, (name, place) in enumerate(
            [
                ("Arda", "Mell"),
                ("Tessa", "Korr"),
                ("Umbra", "Lys"),
                ("Vanta", "Orr"),
                ("Wren", "Pell"),
                ("Yola", "Quin"),
            ]
        )
    ],
}


def train_small_sae(minilm, folder) -> None:
    """A real TopK SAE trained for a few hundred steps on MiniLM token activations at HOOK."""
    prompts = [qa_prompt(e) for e in make_equations(16, seed=11) + make_celebrity(16, seed=11)]
    batch = minilm.tokenize(prompts)
    acts = run_to_capture(minilm.model, batch, [HOOK])[HOOK]
    tokens_ND = acts[batch["attention_mask"].bool()].float()
    sae = make_sae(TopKConfig(d_in=384, d_sae=512, k=16, seed=0))
    opt = torch.optim.Adam(sae.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    for _ in range(40):
        idx = torch.randint(0, len(tokens_ND), (128,), generator=gen)
        loss = sae.training_forward(tokens_ND[idx]).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        sae.set_decoder_norm_to_unit_()
    save_sae(sae, folder, metadata={"model_name": "all-MiniLM-L6-v2", "hook_name": HOOK})


def test_probe_cli_writes_full_report_on_minilm(minilm, tmp_path):
    train_small_sae(minilm, tmp_path / "sae")
    squad = tmp_path / "tiny-squad.json"
    squad.write_text(json.dumps(SQUAD))
    out = tmp_path / "report"
    args = [
        "probe",
        "--model",
        "sentence-transformers/all-MiniLM-L6-v2",
        "--layers",
        "1,3",
        "--datasets",
        f"equations,celebrity,{squad}",
        "--sae",
        str(tmp_path / "sae"),
        "--out",
        str(out),
        "--n",
        "100",
        "--pooling",
        "mean",
        "--device",
        "cpu",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output + repr(result.exception)

    index = json.loads((out / "index.json").read_text())
    assert index["summary"]["probe_hook"] == HOOK and index["summary"]["datasets"] == [
        "equations",
        "celebrity",
        "tiny-squad",
    ]
    tables = {t["name"] for t in index["tables"]}
    assert {
        "layer_sweep",
        "generalization_residual",
        "generalization_sae",
        "generalization_contrast",
        "sae_latent_ranking",
        "sae_k_sparse",
        "probe_decoder_cosines",
        "probe_direction_cosines",
    } <= tables
    for entry in index["figures"]:
        assert (out / entry["png"]).stat().st_size > 1000
    sweep = json.loads((out / "tables" / "layer_sweep.json").read_text())
    assert len(sweep) == 6
    # MiniLM separates defined from undefined variables well above chance at the middle layer
    equations_mid = next(r for r in sweep if r["dataset"] == "equations" and r["hook"] == HOOK)
    # (30 held-out examples: AUROC 0.75 is far outside what a signal-free probe reaches)
    assert equations_mid["auroc"] > 0.75 and equations_mid["accuracy"] > 0.6
    residual = json.loads((out / "tables" / "generalization_residual.json").read_text())
    assert len(residual) == 9 and all(0.0 <= r["accuracy"] <= 1.0 for r in residual)
    ranking = json.loads((out / "tables" / "sae_latent_ranking.json").read_text())
    assert {r["dataset"] for r in ranking} == {"equations", "celebrity", "tiny-squad"}
    assert all(0 <= r["latent"] < 512 for r in ranking)
    config = json.loads((out / "config.json").read_text())
    assert config["layers"] == [1, 3] and config["model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert config["sae"] == str(tmp_path / "sae")

    again = CliRunner().invoke(app, args)
    assert again.exit_code != 0 and "overwrite" in str(again.exception)
    assert (out / "index.json").exists()
