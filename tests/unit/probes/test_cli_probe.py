"""`interplab probe` on a tiny random GPT-2 (no SAE), and its one-line errors."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from interplab.cli import app
from interplab.common import InterplabError


def test_probe_cli_without_sae_on_tiny_gpt2(tiny_model_dir, tmp_path):
    out = tmp_path / "rep"
    result = CliRunner().invoke(
        app,
        [
            "probe",
            "--model",
            str(tiny_model_dir("gpt2")),
            "--layers",
            "0,1",
            "--n",
            "40",
            "--out",
            str(out),
            "--device",
            "cpu",
        ],
    )
    assert result.exit_code == 0, repr(result.exception)
    index = json.loads((out / "index.json").read_text())
    assert index["summary"]["probe_hook"] == "blocks.1.resid_post" and index["summary"]["has_sae"] is False
    names = {t["name"] for t in index["tables"]}
    assert "generalization_residual" in names and "sae_latent_ranking" not in names
    rows = json.loads((out / "tables" / "layer_sweep.json").read_text())
    assert {r["hook"] for r in rows} == {"blocks.0.resid_post", "blocks.1.resid_post"}


def test_probe_cli_rejects_bad_layers_and_datasets(tiny_model_dir, tmp_path):
    model = str(tiny_model_dir("gpt2"))
    bad_layers = CliRunner().invoke(
        app, ["probe", "--model", model, "--layers", "0,x", "--out", str(tmp_path / "a")]
    )
    assert isinstance(bad_layers.exception, InterplabError) and "--layers" in str(bad_layers.exception)
    far = CliRunner().invoke(app, ["probe", "--model", model, "--layers", "7", "--out", str(tmp_path / "b")])
    assert isinstance(far.exception, InterplabError) and "out of range" in str(far.exception)
    missing = CliRunner().invoke(
        app, ["probe", "--model", model, "--datasets", "nope.json", "--out", str(tmp_path / "c")]
    )
    assert isinstance(missing.exception, InterplabError) and "nope.json" in str(missing.exception)
