"""Fake dashboard rows (statistics + example contexts) for the web app's tests and bench/dashboards_pages.py.

Not measurements of any model: random words and activations shaped like what `interplab dashboards`
writes, so page latency and rendering can be checked on databases far larger than a test can build
from a real model. Deterministic for a given seed.
"""

from __future__ import annotations

import random

from interplab.dashboards.db import ExampleRecord, FeatureRecord

WORDS = ("the", " cat", " sat", " on", " mat", " dog", " ran", " to", " a", " house", " of", " and", " is",
         " in", " 1", " 2", " 42", ",", ".", " Paris", " France", " code", " return", " happy", " sad")


def _example(rng: random.Random, idx: int, kind: str, rank: int, peak: float, context: int,
             bucket: str | None) -> ExampleRecord:
    tokens = [rng.choice(WORDS) for _ in range(context)]
    acts = [0.0 if rng.random() < 0.7 else round(rng.uniform(0, peak * 0.6), 4) for _ in range(context)]
    at = rng.randrange(context)
    acts[at] = round(peak, 4)
    return ExampleRecord(idx=idx, kind=kind, rank=rank, max_act=acts[at], tokens=tokens, acts=acts,
                         token_ids=[WORDS.index(t) for t in tokens], position=rng.randrange(10**7), bucket=bucket)


def synthetic_latent(rng: random.Random, idx: int, n_top: int = 10, n_quantile: int = 10, context: int = 32,
                     n_bins: int = 30) -> tuple[FeatureRecord, list[ExampleRecord]]:
    """One latent's row and its examples: n_top top contexts, n_quantile samples over 5 buckets."""
    max_act = round(rng.uniform(1.0, 20.0), 4)
    edges = [max_act * i / n_bins for i in range(n_bins + 1)]
    counts = [int(1000 * 0.8 ** i * rng.uniform(0.5, 1.5)) for i in range(n_bins)]
    feat = FeatureRecord(
        idx=idx, frequency=rng.uniform(1e-5, 0.05), max_act=max_act, mean_act=max_act * rng.uniform(0.1, 0.4),
        hist_edges=edges, hist_counts=counts,
        logits_pos=sorted([(rng.choice(WORDS), round(rng.uniform(0.5, 3), 3)) for _ in range(10)], key=lambda x: -x[1]),
        logits_neg=sorted([(rng.choice(WORDS), round(-rng.uniform(0.5, 3), 3)) for _ in range(10)], key=lambda x: x[1]),
        neighbours=[(rng.randrange(10**5), round(rng.uniform(0.2, 0.9), 3)) for _ in range(10)])
    exs = [_example(rng, idx, "top", r, max_act * (1 - 0.03 * r), context, None) for r in range(n_top)]
    for r in range(n_quantile):
        b = r * 5 // max(n_quantile, 1)
        exs.append(_example(rng, idx, "quantile", r, max_act * (b + rng.random()) / 5, context,
                            f"{b / 5:.2f}-{(b + 1) / 5:.2f}"))
    return feat, exs


def synthetic_batch(start: int, count: int, seed: int = 0, **kwargs: int
                    ) -> tuple[list[FeatureRecord], list[ExampleRecord]]:
    """Rows of latents start .. start+count-1 (each latent's rows depend only on seed and its index)."""
    feats: list[FeatureRecord] = []
    exs: list[ExampleRecord] = []
    for idx in range(start, start + count):
        feat, examples = synthetic_latent(random.Random(seed * 1_000_003 + idx), idx, **kwargs)
        feats.append(feat)
        exs.extend(examples)
    return feats, exs
