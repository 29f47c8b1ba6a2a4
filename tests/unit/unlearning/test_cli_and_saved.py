"""`interplab unlearning-organism`, `unlearn` and `unlearning-eval` end to end on tiny models; a saved
unlearnt model scores exactly as the one in memory; wrong inputs fail in one line before any work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from interplab.cli import app
from interplab.common import InterplabError
from interplab.data.synthetic.fictional_people import items
from interplab.pipelines.unlearning import unlearn_run, unlearning_eval_run
from interplab.unlearning import KnowledgeOrganism, RMUConfig
from interplab.unlearning.saved import load_unlearnt
from interplab.unlearning.scoring import score_answers
from unlearning_data import TINY_EVAL


def _invoke(*args: str):
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result


def test_organism_command_builds_both_models_and_a_card(tiny_llama: Path, tmp_path: Path) -> None:
    out = tmp_path / "org"
    result = _invoke("unlearning-organism", "--out", out, "--model", tiny_llama, "--n-people", 8, "--n-forget", 2,
                     "--epochs", 1, "--threads", 1)
    assert result.exit_code == 0, result.output
    card = json.loads((out / "card.json").read_text())
    assert card["n_forget"] == 2 and card["build"]["gold"]["pairs"] == 6 * 9 and card["build"]["organism"]["pairs"] == 8 * 9
    assert "| paraphrase | no (held out) |" in (out / "card.md").read_text()
    assert KnowledgeOrganism.open(out).cfg.finetune.epochs == 1


def test_unlearn_then_eval_commands_write_a_model_and_a_report(tiny_organism: Path, tmp_path: Path) -> None:
    model = tmp_path / "rmu"
    result = _invoke("unlearn", "--organism", tiny_organism, "--method", "rmu", "--out", model, "--layer", 1,
                     "--steps", 3, "--data", "demo", "--threads", 1)
    assert result.exit_code == 0, result.output
    meta = json.loads((model / "unlearning.json").read_text())
    assert meta["method"] == "rmu" and meta["config"]["steps"] == 3
    assert meta["changed_tensors"] and all(".mlp." in k for k in meta["changed_tensors"])
    report = tmp_path / "report"
    result = _invoke("unlearning-eval", "--organism", tiny_organism, "--out", report, "--methods", "output-block",
                     "--model", model, "--seeds", "0", "--data", "demo", "--n-retain-eval", 8, "--fluency-docs", 4,
                     "--relearn-steps", 2, "--relearn-eval-every", 1, "--probe-layers", "1", "--probe-positions",
                     "name_last,last", "--direction-layers", "1", "--threads", 1)
    assert result.exit_code == 0, result.output
    methods = [r["method"] for r in json.loads((report / "tables" / "runs.json").read_text())]
    assert methods == ["organism", "gold-standard", "output-block", "rmu (rmu)"]
    assert "output-block: suppressed, not removed (1/1)" in result.output


def test_a_method_option_it_lacks_is_refused(tiny_organism: Path, tmp_path: Path) -> None:
    result = _invoke("unlearn", "--organism", tiny_organism, "--method", "npo", "--out", tmp_path / "x",
                     "--steer-scale", 3)
    assert result.exit_code != 0 and "does not apply to --method npo" in str(result.exception or result.output)


def test_saved_model_scores_exactly_like_the_one_in_memory(tiny_organism: Path, tmp_path: Path) -> None:
    from interplab.unlearning import UnlearningData, unlearn

    cfg = RMUConfig(layer=1, steps=3, lr=1e-3)
    folder = unlearn_run(tiny_organism, "rmu", cfg, 0, tmp_path / "rmu", device="cpu", text_source="demo", threads=1)
    organism = KnowledgeOrganism.open(tiny_organism)
    saved, meta = load_unlearnt(folder, organism, "cpu")
    lm = organism.load("organism", "cpu")
    fresh = unlearn(lm, UnlearningData(organism.cfg.people, organism.forget, organism.retain), "rmu", cfg, 0)
    its = items(organism.forget, "qa", organism.cfg.people)
    torch.testing.assert_close(score_answers(saved, its).logprob, score_answers(fresh, its).logprob)
    assert meta["seed"] == 0


def test_saved_edits_and_filters_come_back(tiny_organism: Path, tmp_path: Path) -> None:
    organism = KnowledgeOrganism.open(tiny_organism)
    its = items(organism.forget, "qa", organism.cfg.people)
    block = unlearn_run(tiny_organism, "output-block", None, 0, tmp_path / "block", text_source="demo", threads=1)
    served, _ = load_unlearnt(block, organism, "cpu")
    assert served.output_filter is not None and score_answers(served, its).accuracy() == 0.0
    assert (block / "weights.safetensors").stat().st_size < 1024  # nothing changed in the weights


def test_eval_refuses_a_finished_report_and_a_missing_organism_before_loading(tiny_organism: Path, tmp_path: Path) -> None:
    with pytest.raises(InterplabError, match="no finished knowledge organism"):
        unlearning_eval_run(tmp_path / "nothing", tmp_path / "r", ["rmu"], [0], cfg=TINY_EVAL)
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "index.json").write_text("{}")
    with pytest.raises(InterplabError, match="already holds a report"):
        unlearning_eval_run(tiny_organism, tmp_path / "r", ["rmu"], [0], cfg=TINY_EVAL)
    with pytest.raises(InterplabError, match="unknown unlearning method"):
        unlearning_eval_run(tiny_organism, tmp_path / "r2", ["lobotomy"], [0], cfg=TINY_EVAL)
    bad = _invoke("unlearning-eval", "--organism", tiny_organism, "--out", tmp_path / "r3", "--probe-positions",
                  "last,middle")
    assert bad.exit_code != 0 and "probe positions must be some of" in str(bad.exception)
    assert not (tmp_path / "r3").exists()
