"""Phase classification on hand-built weights, and config validation of the experiments."""

import pytest
import torch

from interplab.common import InterplabError
from interplab.toy.experiments import DimensionalityConfig, IntroConfig, run_dimensionality, run_intro
from interplab.toy.phase import (
    DEDICATED,
    NOT_LEARNED,
    PHASES,
    SUPERPOSITION,
    PhaseConfig,
    classify,
    run_phase_diagram,
)


@pytest.mark.parametrize(
    ("w", "phase"),
    [
        ([1.0, 0.0], NOT_LEARNED),  # the dimension is feature 1's
        ([0.0, 0.0], NOT_LEARNED),  # nothing learned
        ([0.0, -1.0], DEDICATED),  # feature 2 owns the dimension (sign is irrelevant)
        ([1.0, -1.0], SUPERPOSITION),  # antipodal pair
        ([-0.9, 1.05], SUPERPOSITION),
        ([0.6, 0.8], DEDICATED),  # same sign = one mixed direction, feature 2 dominates
        ([0.8, 0.6], NOT_LEARNED),
    ],
)
def test_classify_names_feature_2s_phase(w, phase):
    assert classify(torch.tensor([[w]])).tolist() == [phase]
    assert len(PHASES) == 3


def test_classify_rejects_models_with_more_than_two_features():
    with pytest.raises(InterplabError, match="n_features=2"):
        classify(torch.zeros(1, 1, 3))


def test_bad_experiment_settings_raise_one_line_errors():
    with pytest.raises(InterplabError, match="sparsities"):
        run_intro(IntroConfig(sparsities=(0.5, 1.0)))
    with pytest.raises(InterplabError, match="1/\\(1-S\\)"):
        run_dimensionality(DimensionalityConfig(inverse_density=(0.5,)))
    with pytest.raises(InterplabError, match="phase grid"):
        run_phase_diagram(PhaseConfig(min_density=0.0))
