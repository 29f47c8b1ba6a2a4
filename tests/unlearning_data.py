"""A tiny knowledge organism (2-layer Llama, d=64, 32 people) and settings that evaluate it in seconds.

Used by the unlearning tests and by report_kinds.py. The organism learns every fact (exact match 1.0 on
forget and retain) in 20 epochs; the gold standard stays near chance on the forget set.
"""

from __future__ import annotations

from pathlib import Path

from interplab.data.synthetic.fictional_people import CITIES, JOBS, PeopleConfig
from interplab.training.causal_lm import FinetuneConfig
from interplab.unlearning import (
    DirectionRemovalConfig,
    EvalConfig,
    GradientAscentConfig,
    GradientDifferenceConfig,
    NPOConfig,
    OrganismConfig,
    ProbeAttackConfig,
    RelearnConfig,
    RMUConfig,
    SAEClampConfig,
)

TINY_PEOPLE = PeopleConfig(n_people=32, n_forget=12, cities=CITIES[:4], jobs=JOBS[:4])
TINY_FINETUNE = FinetuneConfig(epochs=20, lr=5e-3, batch_size=16, warmup_steps=5)
TINY_EVAL = EvalConfig(n_retain_eval=8, fluency_docs=4, method_docs=20,
                       relearn=RelearnConfig(steps=10, eval_every=5, lr=1e-3),
                       probe=ProbeAttackConfig(layers=(0, 1)), direction=DirectionRemovalConfig(layers=(1,)))
TINY_METHODS = {
    "gradient-ascent": GradientAscentConfig(steps=5, lr=1e-3),
    "gradient-difference": GradientDifferenceConfig(steps=5, lr=1e-3),
    "npo": NPOConfig(steps=5, lr=1e-3),
    "rmu": RMUConfig(layer=1, steps=5, lr=1e-3),
    "sae-clamp": SAEClampConfig(layer=0, d_sae=128, k=8, sae_steps=20, n_latents=4),
}


def build_tiny_organism(out: Path, model_dir: Path) -> Path:
    """Build the tiny organism into `out` (one thread) and return the folder."""
    from interplab.pipelines.unlearning import build_organism_run

    cfg = OrganismConfig(str(model_dir), TINY_PEOPLE, TINY_FINETUNE)
    return build_organism_run(cfg, out, device="cpu", threads=1, show_progress=False).folder
