"""`run_crosslingual_lab`: the cross-lingual lab on a multilingual causal LM (default Gemma-3-270m), one report.

1. Verse-aligned Bibles (data/bibles.py): `n_verses` verses in English, Spanish and French.
2. Shared latents: token activations at several layers, one TopK SAE per layer, the shared-latent fraction
   per layer (crosslingual/shared.py) as a table and a line plot.
3. Latent English: logit-lens probabilities of the target word and its English twin per layer, for
   French->Spanish and Spanish->French translation prompts (crosslingual/latent_english.py).
4. Steering transfer: English-pairs vector on Spanish/French prompts as a fraction of the in-language
   vector's effect; cosine matrix of the per-language vectors and of shuffled-label vectors.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

from interplab.common import cpu_threads, get_logger
from interplab.crosslingual import (
    CrossSteeringConfig,
    SharedLatentConfig,
    cross_steering,
    latent_english,
    latent_english_summary,
    shared_latent_table,
    verse_activations,
)
from interplab.data.bibles import DEFAULT_BIBLES, aligned_verses
from interplab.models import LoadedModel, load_model
from interplab.reports import ReportWriter

log = get_logger(__name__)


@dataclass
class CrosslingualConfig:
    """The model, the verses and the layers of the cross-lingual lab."""

    model: str = "gemma3-270m"
    """A multilingual causal LM (packaged name, hub id or folder)."""
    n_verses: int = 300
    """Verses, each in every language."""
    layers: list[int] = field(default_factory=lambda: [2, 5, 8, 11, 14, 17])
    """Blocks whose resid_post the shared-latent SAEs read."""
    seed: int = 0
    """Seed of the verse draw."""
    device: str | None = None
    """cpu, cuda, ... (None: CUDA when present)."""


LANGUAGES = ["en", "es", "fr"]


def _latent_english_part(writer: ReportWriter, lm: LoadedModel) -> list[dict[str, Any]]:
    summaries = []
    for source, target in (("fr", "es"), ("es", "fr")):
        result = latent_english(lm, source, target)
        summaries.append(latent_english_summary(result))
        name = f"latent_english_{source}_{target}"
        x = list(range(len(result.layers)))
        writer.line_plot(name, x, {f"P(target: {target})": result.p_target_L.tolist(),
                                   "P(English)": result.p_english_L.tolist()},
                         f"Logit lens on {source}->{target} translation ({result.n_prompts} words)",
                         "layer (0 = embeddings)", "mean probability",
                         caption="Reading each layer's guess at the translated word: if the English line rises before "
                                 "the target language's, the model passes through English on the way.")
        writer.table(name, [{"layer": label, "p_target": float(pt), "p_english": float(pe), "english_wins": float(w)}
                            for label, pt, pe, w in zip(result.layers, result.p_target_L, result.p_english_L,
                                                        result.english_wins_L, strict=True)],
                     f"Logit-lens probabilities per layer, {source}->{target}")
    writer.table("latent_english", summaries, "Latent English: where P(English) peaks")
    return summaries


def _steering_part(writer: ReportWriter, lm: LoadedModel, cfg: CrossSteeringConfig) -> dict[str, Any]:
    result = cross_steering(lm, LANGUAGES, cfg)
    writer.table("steering_transfer", result["rows"],
                 f"Sentiment steering at blocks.{cfg.layer}.resid_post: English vector vs in-language vector")
    writer.heatmap("vector_cosines", result["cosines"], result["names"], result["names"],
                   "Cosine of per-language sentiment vectors", "vector", "vector", -1, 1,
                   caption="How alike the sentiment directions built in each language are: 1 the same, 0 unrelated; "
                           "compare with the shuffled-label grid, which shows what chance looks like.")
    writer.heatmap("shuffled_vector_cosines", result["shuffled_cosines"], result["names"], result["names"],
                   f"Cosine of shuffled-label vectors (mean of {cfg.n_shuffles})", "vector", "vector", -1, 1,
                   caption="The same vectors built from randomly relabelled examples: a control, so values here are "
                           "what similarity looks like with no real concept behind it.")
    return result


def run_crosslingual_lab(out: str | Path, cfg: CrosslingualConfig | None = None,
                         shared: SharedLatentConfig | None = None, steering: CrossSteeringConfig | None = None,
                         overwrite: bool = False) -> Path:
    """Run the three measurements and write the report; return its index.json."""
    cfg, shared, steering = cfg or CrosslingualConfig(), shared or SharedLatentConfig(), steering or CrossSteeringConfig()
    writer = ReportWriter(out, f"Cross-lingual lab: {cfg.model}", "crosslingual", overwrite=overwrite)
    writer.write_config({"run": asdict(cfg), "shared": asdict(shared), "steering": asdict(steering),
                         "bibles": DEFAULT_BIBLES})
    load0, cpu = os.getloadavg()[0], {"start": time.process_time()}
    with cpu_threads(cfg.device):
        lm = load_model(cfg.model, device=cfg.device)
        cpu["load_model"] = time.process_time()
        english = _latent_english_part(writer, lm)
        cpu["latent_english"] = time.process_time()
        steer = _steering_part(writer, lm, steering)
        cpu["steering"] = time.process_time()
        verses = aligned_verses(DEFAULT_BIBLES, cfg.n_verses, cfg.seed)
        acts = verse_activations(lm, verses, LANGUAGES, cfg.layers)
        cpu["verse_activations"] = time.process_time()
        rows = shared_latent_table(acts, shared, cfg.model)
        cpu["shared_latents"] = time.process_time()
    writer.table("shared_latents", rows, "SAE latents shared across en/es/fr by layer (verse-aligned Bibles)")
    writer.line_plot("shared_latents", cfg.layers, {"shared": [r["shared_fraction"] for r in rows],
                                                     "language-specific": [r["specific_fraction"] for r in rows]},
                     "Share of alive SAE latents shared across languages, by layer", "layer", "fraction of alive latents",
                     caption="Of the SAE latents that fire at all, the share that fire on the same verses in every "
                             "language (shared) or in one language only, per layer.")
    parts = list(cpu)
    # CPU seconds per part beside the load average: on a shared machine wall time says little
    cost = {f"{b}_cpu_s": round(cpu[b] - cpu[a], 1) for a, b in pairwise(parts)}
    cost |= {"load_avg_start": round(load0, 2), "load_avg_end": round(os.getloadavg()[0], 2)}
    transfer = {r["language"]: r for r in steer["rows"]}
    summary = {
        "model": cfg.model, "n_verses": cfg.n_verses, "n_tokens": int(acts.verse_N.numel()),
        **{f"shared_fraction_layer_{r['layer']}": r["shared_fraction"] for r in rows},
        **{f"latent_english_{s['direction']}": s["english_over_target_at_peak"] for s in english},
        **{f"transfer_fraction_{lang}": transfer[lang]["transfer_fraction"] for lang in ("es", "fr")},
        **{f"shuffled_fraction_{lang}": transfer[lang]["shuffled_fraction_of_real"] for lang in LANGUAGES},
        "mean_vector_cosine": steer["mean_cosine"], "mean_shuffled_vector_cosine": steer["mean_shuffled_cosine"],
        "shuffled_cosine_fraction": abs(steer["mean_shuffled_cosine"]) / abs(steer["mean_cosine"])
        if steer["mean_cosine"] else float("nan"),
        **cost,
    }
    return writer.finish(summary)
