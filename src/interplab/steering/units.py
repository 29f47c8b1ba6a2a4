"""Steering coefficients in units of the hook's median activation norm, so they mean the same everywhere.

A raw mean-difference vector's length depends on the model, the layer and the pairs: 6 love/hate pairs
give norm 49 at SmolLM2's blocks.15.resid_post, where a typical token's residual has norm ~175, while the
same coefficient on another hook or model is a different push altogether. So coefficient c adds

    c * hook_norm * vector / ‖vector‖

where hook_norm is the median activation norm at the hook over fixed reference text (every 6th document
of the demo corpus, up to 64 tokens each, attention sinks left out: they are ~100x larger and would make
the unit a property of position 0). c = 1 adds a vector as long as a typical activation there.
The norm is measured once, when a vector is built, and stored with it; vectors saved before carry none
and are measured on first use (`calibrate`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import torch

from interplab.common import InterplabError, get_logger
from interplab.models.interventions import run_to_capture
from interplab.models.loading import LoadedModel
from interplab.steering.vectors import SteeringVector

log = get_logger(__name__)

REFERENCE_STRIDE = 6
"""Every 6th demo-corpus document: ~70 documents spread over all its topics, ~1,000 tokens."""
REFERENCE_TOKENS = 64
"""Tokens per reference document (longer ones are cut)."""
DEFAULT_COEF = 0.25
"""Steers visibly and keeps the text fluent (SmolLM2-135M at layers 6 and 15: contrast vectors and SAE latents)."""
DEFAULT_SWEEP = (-1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0)
"""Brackets the change: fluent steering up to ~0.5, repetition ("and and and") from ~1 on."""


def reference_texts() -> list[str]:
    from interplab.data.corpus import load_demo_corpus

    return load_demo_corpus()[::REFERENCE_STRIDE]


@torch.no_grad()
def hook_median_norm(lm: LoadedModel, hook: str, texts: Sequence[str] | None = None, batch_size: int = 16) -> float:
    """Median activation norm at `hook` over `texts` (default: the reference texts), sinks left out."""
    from interplab.activations.cache import CacheConfig

    texts = list(texts) if texts is not None else reference_texts()
    if not texts:
        raise InterplabError("no texts to measure the hook's activation norm on; pass at least one")
    rule = CacheConfig().exclusion_rule(lm.tokenizer, lm.is_causal)  # what a default store leaves out
    norms = []
    for i in range(0, len(texts), batch_size):
        batch = lm.tokenize(texts[i : i + batch_size], max_length=REFERENCE_TOKENS)
        acts_BSD = run_to_capture(lm.model, batch, hook)[hook].float()
        real_BS = batch["attention_mask"].bool()
        keep_BS = rule.keep_mask(batch["input_ids"], real_BS, acts_BSD)
        norms.append(torch.linalg.vector_norm(acts_BSD[keep_BS if bool(keep_BS.any()) else real_BS], dim=-1))
    return float(torch.cat(norms).median())


def calibrate(vector: SteeringVector, lm: LoadedModel) -> SteeringVector:
    """`vector` with its hook norm, measured on `lm` if it has none (vectors saved before it was stored)."""
    if vector.hook_norm is not None:
        return vector
    norm = hook_median_norm(lm, vector.hook)
    log.info("measured the median activation norm at %s of %s: %.4g (coefficients are in units of it)",
             vector.hook, lm.name, norm)
    return replace(vector, hook_norm=norm)
