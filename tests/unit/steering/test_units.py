"""Coefficients in units of the hook's median activation norm: measured at build, stored, applied."""

from __future__ import annotations

import json

import pytest
import torch

from interplab.common import InterplabError
from interplab.models import capture, run_to_capture
from interplab.steering.apply import GenerationSettings, generate_steered, steer
from interplab.steering.units import DEFAULT_COEF, DEFAULT_SWEEP, calibrate, hook_median_norm, reference_texts
from interplab.steering.vectors import (
    ContrastPair,
    SteeringVector,
    from_contrast_pairs,
    load_vector,
    save_vector,
)

HOOK = "blocks.1.resid_post"


def test_hook_norm_is_the_median_norm_over_the_reference_text_without_the_first_position(gpt2):
    texts = reference_texts()[:5]
    norms = []
    for text in texts:
        batch = gpt2.tokenize([text], max_length=64)
        acts_SD = run_to_capture(gpt2.model, batch, HOOK)[HOOK][0]
        norms.append(acts_SD[1:].norm(dim=-1))  # position 0 is the sink; no special tokens inside a text
    assert hook_median_norm(gpt2, HOOK, texts) == pytest.approx(float(torch.cat(norms).median()), rel=1e-5)
    assert len(reference_texts()) > 30


def test_contrast_vectors_carry_the_hook_norm_and_save_it(gpt2, tmp_path):
    vec = from_contrast_pairs(gpt2, [ContrastPair("I love it", "I hate it")], HOOK)
    assert vec.hook_norm == pytest.approx(hook_median_norm(gpt2, HOOK))
    save_vector(vec, tmp_path / "v")
    assert load_vector(tmp_path / "v").hook_norm == vec.hook_norm
    meta = json.loads((tmp_path / "v.json").read_text())
    assert meta["hook_norm"] == vec.hook_norm and "median activation norm" in meta["coef_unit"]


def test_coefficient_one_adds_the_hook_norm_along_the_direction_whatever_the_vector_length(gpt2):
    batch = gpt2.tokenize(["The cat sat"])
    direction_D = torch.randn(gpt2.d_model, generator=torch.Generator().manual_seed(0))
    with capture(gpt2.model, HOOK) as clean:
        gpt2.model(**batch)
    added = []
    for length in (1.0, 50.0):  # the same direction built at two lengths steers identically
        vec = SteeringVector(length * direction_D, HOOK, hook_norm=7.0)
        with steer(gpt2.model, vec, coef=0.5), capture(gpt2.model, HOOK) as steered:
            gpt2.model(**batch)
        added.append(steered[HOOK] - clean[HOOK])
    torch.testing.assert_close(added[0], added[1], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(added[0][0, 0].norm(), torch.tensor(0.5 * 7.0), atol=1e-4, rtol=1e-4)


def test_a_vector_saved_without_a_hook_norm_loads_and_is_measured_on_first_use(gpt2, tmp_path):
    direction_D = torch.randn(gpt2.d_model, generator=torch.Generator().manual_seed(1))
    save_vector(SteeringVector(direction_D, HOOK), tmp_path / "old")
    meta = json.loads((tmp_path / "old.json").read_text())
    del meta["hook_norm"], meta["coef_unit"]  # what files written before the unit existed hold
    (tmp_path / "old.json").write_text(json.dumps(meta))
    old = load_vector(tmp_path / "old")
    assert old.hook_norm is None
    with pytest.raises(InterplabError, match="calibrate"):
        old.step_D()
    measured = calibrate(old, gpt2)
    assert measured.hook_norm == pytest.approx(hook_median_norm(gpt2, HOOK))
    settings = GenerationSettings(max_new_tokens=6)
    assert generate_steered(gpt2, ["The cat"], old, 2.0, settings=settings) == \
        generate_steered(gpt2, ["The cat"], measured, 2.0, settings=settings)


def test_cli_and_web_defaults_are_the_library_defaults():
    from interplab.commands import steer as cli
    from interplab.web.schemas import DEFAULT_STEER_COEF, SteerRequest

    assert cli.DEFAULT_COEF == DEFAULT_STEER_COEF == DEFAULT_COEF
    assert cli.DEFAULT_SWEEP == DEFAULT_SWEEP
    assert SteerRequest(vector="v", prompt="p").coef == DEFAULT_COEF
