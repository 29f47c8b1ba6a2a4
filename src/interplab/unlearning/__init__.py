"""Unlearning evaluation: does the knowledge leave the model, or is it only hidden?

A knowledge organism (facts about fictional people, with a gold standard that never learnt the forget
set), unlearning methods behind one interface, metrics and attacks (relearning, probes, direction
removal), and a verdict per method: removed, or suppressed with the evidence.
"""

from interplab.unlearning.direction_removal import DirectionRemovalConfig
from interplab.unlearning.evaluate import (
    GOLD,
    ORGANISM,
    ArmResult,
    EvalConfig,
    attack_split,
    evaluate_methods,
    evaluate_served,
    make_context,
    reference_acts,
    restore,
    run_saved,
)
from interplab.unlearning.methods import (
    METHODS,
    GradientAscentConfig,
    GradientDifferenceConfig,
    NPOConfig,
    OutputBlockConfig,
    RMUConfig,
    SAEClampConfig,
    UnlearningData,
    method,
    unlearn,
)
from interplab.unlearning.organism import MODELS, KnowledgeOrganism, OrganismConfig, build_model, write_card
from interplab.unlearning.probe_attack import ProbeAttackConfig
from interplab.unlearning.relearning import RelearnConfig
from interplab.unlearning.served import ServedModel
from interplab.unlearning.verdict import NOT_FORGOTTEN, REMOVED, SUPPRESSED, VerdictConfig, judge

__all__ = [
    "GOLD",
    "METHODS",
    "MODELS",
    "NOT_FORGOTTEN",
    "ORGANISM",
    "REMOVED",
    "SUPPRESSED",
    "ArmResult",
    "DirectionRemovalConfig",
    "EvalConfig",
    "GradientAscentConfig",
    "GradientDifferenceConfig",
    "KnowledgeOrganism",
    "NPOConfig",
    "OrganismConfig",
    "OutputBlockConfig",
    "ProbeAttackConfig",
    "RMUConfig",
    "RelearnConfig",
    "SAEClampConfig",
    "ServedModel",
    "UnlearningData",
    "VerdictConfig",
    "attack_split",
    "build_model",
    "evaluate_methods",
    "evaluate_served",
    "judge",
    "make_context",
    "method",
    "reference_acts",
    "restore",
    "run_saved",
    "unlearn",
    "write_card",
]
