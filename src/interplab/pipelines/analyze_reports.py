"""The report stages of `analyze`: toy model, probe study, steering sweep, explanations.

Each writes one report folder (listed by the web UI) and returns its headline numbers.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from interplab.data.contrast_sets import SENTIMENT
from interplab.models.loading import LoadedModel
from interplab.saes import load_sae

if TYPE_CHECKING:
    from interplab.pipelines.analyze import AnalyzeConfig, HookResult


def toy_report(out: Path, seed: int) -> dict[str, Any]:
    """The intro preset of Toy Models of Superposition (n=5 features in m=2 dimensions)."""
    from interplab.toy.runner import Overrides, run_presets

    run_presets(["intro"], out, Overrides(seed=seed), overwrite=True)
    return {"report": str(out)}


def probe_report(lm: LoadedModel, hr: HookResult, out: Path, cfg: AnalyzeConfig) -> dict[str, Any]:
    """Residual-stream vs SAE-feature probes on the built-in answerability data, at the first hook's layer."""
    from interplab.probes.study import ProbeStudyConfig, run_probe_study

    layer = int(hr.hook.split(".")[1])
    study = ProbeStudyConfig(layers=sorted({max(0, layer - 2), layer}), site=cfg.site,
                             datasets=["equations", "celebrity"], n_per_dataset=80, seed=cfg.seed,
                             probe_layer=layer)
    sae = load_sae(hr.run / "sae", device=lm.device)
    run_probe_study(lm, study, out, sae=sae, overwrite=True, sae_source=str(hr.run / "sae"))
    return {"report": str(out)}


def steering_report(lm: LoadedModel, hook: str, out: Path, vectors: Path, cfg: AnalyzeConfig) -> dict[str, Any]:
    """A sentiment vector from the built-in pairs at `hook`, swept over the default coefficients (in units of
    the hook's median activation norm), scored by a probe trained on the same pairs (P(positive) of the
    completions), with perplexity under the unsteered model."""
    from interplab.steering.apply import GenerationSettings
    from interplab.steering.sweep import ProbeTarget, SweepConfig, probe_from_pairs, sweep, write_sweep
    from interplab.steering.vectors import ContrastPair, from_contrast_pairs, save_vector

    pairs = [ContrastPair(p, n) for p, n in SENTIMENT.pairs]
    vec = from_contrast_pairs(lm, pairs, hook, metadata={"pairs": "built-in: sentiment"})
    save_vector(vec, vectors / "sentiment", overwrite=True)
    scfg = SweepConfig(generation=GenerationSettings(max_new_tokens=20))
    target = ProbeTarget(hook, probe=probe_from_pairs(lm, pairs, hook))
    rows, outputs = sweep(lm, vec, list(SENTIMENT.prompts), target, scfg)
    config = {"model": lm.name, "vector": "sentiment (built-in pairs)", "hook": hook, "coefs": scfg.coefs,
              "coef_units": "hook median activation norm", "hook_norm": vec.hook_norm, "target": target.name,
              "probe_pairs": "built-in: sentiment", "prompts": list(SENTIMENT.prompts)}
    write_sweep(out, rows, outputs, list(SENTIMENT.prompts), target.name, config, overwrite=True)
    return {f"coef {r.coef:g}": {"target": r.target, "perplexity": r.perplexity} for r in rows}


def explain_report(lm: LoadedModel, hr: HookResult, db: Path, out: Path, cfg: AnalyzeConfig) -> dict[str, Any]:
    """Latents of the first SAE sampled among those firing in enough cached windows, explained (by a causal
    model itself, and by token statistics), scored by the model's log-probabilities on held-out windows of the
    cache (detection, exact negatives), and shown on their feature pages."""
    from interplab.pipelines.explain import explain_analysed_sae

    run = explain_analysed_sae(lm, db, hr.run / "sae", out, cfg.explain_latents, seed=cfg.seed, store=hr.store,
                               max_examples=cfg.explain_examples)
    return {k: v for k, v in run.summary.items() if "mean" in k or "above baseline" in k}
