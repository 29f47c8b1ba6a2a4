"""Lab: features across languages (percent format: open with Jupytext, or build the notebook with
`python scripts/lab_notebooks.py crosslingual`). The whole lab as one command: `interplab crosslingual`."""

# %% [markdown]
# # Lab: do a multilingual model's features cross languages?
#
# Three measurements on Gemma-3-270m (offline package, see docs/models-and-data.md):
#
# 1. **Latent English** (Wendler et al. 2024, "Do Llamas work in English?"): on French→Spanish translation
#    prompts, the logit lens's probability of the Spanish answer and of its English twin, layer by layer.
# 2. **Steering transfer**: a sentiment vector built from English contrast pairs, added to Spanish and
#    French prompts, as a fraction of the effect of a vector built in that language; shuffled-label
#    vectors as the control.
# 3. **Shared latents**: one SAE per layer on verse-aligned Bibles (English, Spanish, French, read offline
#    with `pysword`), and the share of latents that fire on the same verses in every language.
#
# `INTERPLAB_LAB_SIZE=small` (what CI runs) uses a tiny random GPT-2 and 24 verses: same code, no meaning.

# %%
import os
from pathlib import Path

import torch

from interplab.common import free_cpu_threads
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
from interplab.models import load_model

torch.set_num_threads(free_cpu_threads())  # the cores other jobs leave free, as interplab's commands do
SMALL = os.environ.get("INTERPLAB_LAB_SIZE", "full") == "small"
OUT = Path("runs/labs/crosslingual")
if SMALL:
    from interplab.models.tiny import build_tiny_model

    model_name = str(build_tiny_model("gpt2", OUT / "tiny-gpt2"))
    n_verses, layers = 24, [0, 1]
    steering_cfg = CrossSteeringConfig(layer=1, n_shuffles=2)
    shared_cfg = SharedLatentConfig(d_sae=64, k=4, steps=50, batch_size=128)
else:
    model_name, n_verses, layers = "gemma3-270m", 300, [2, 5, 8, 11, 14, 17]
    steering_cfg, shared_cfg = CrossSteeringConfig(), SharedLatentConfig()
lm = load_model(model_name, device="cpu")
print(model_name, "layers:", lm.n_layers)

# %% [markdown]
# ## 1. Latent English

# %%
result = latent_english(lm, "fr", "es")
for label, p_target, p_english in zip(result.layers, result.p_target_L, result.p_english_L, strict=True):
    print(f"{label:>6}  P(Spanish answer) {float(p_target):.3f}   P(English twin) {float(p_english):.3f}")
print(latent_english_summary(result))

# %% [markdown]
# **Exercise 1.** Set `peak` to the row index (0 = `embed`) where P(English) − P(Spanish) is largest.
# In Wendler et al.'s models English wins in the middle layers and the target language only at the end.

# %% tags=["exercise:peak"]
peak = None  # your code here

# %%
gap = result.p_english_L - result.p_target_L
assert isinstance(peak, int) and float(gap[peak]) == float(gap.max())
print(f"English leads most at row {peak} ({result.layers[peak]}), by {float(gap[peak]):.3f}")

# %% [markdown]
# ## 2. Does an English steering vector steer Spanish and French?

# %%
steer = cross_steering(lm, ["en", "es", "fr"], steering_cfg)
for row in steer["rows"]:
    print({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()})
print("cosine of the per-language vectors:", steer["names"])
print(steer["cosines"].round(decimals=2))
print(f"mean cosine {steer['mean_cosine']:.3f}; shuffled labels {steer['mean_shuffled_cosine']:.3f}")

# %% [markdown]
# ## 3. Shared latents on verse-aligned Bibles

# %%
verses = aligned_verses(DEFAULT_BIBLES, n_verses, 0)
print(verses[0].texts)
acts = verse_activations(lm, verses, ["en", "es", "fr"], layers)
for row in shared_latent_table(acts, shared_cfg, model_name):
    print({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()})

# %% [markdown]
# ## Questions
#
# - Where, by layer, is the share of shared latents highest? Does it line up with where English leads?
# - The shuffled-label control keeps the words and scrambles which side is positive. Why is it a better
#   control than a random direction of the same norm?
# - `interplab crosslingual --out runs/crosslingual` writes all three as a report with figures.
