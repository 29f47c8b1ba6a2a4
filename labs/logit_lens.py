"""Lab: the logit lens and the tuned lens (percent format: open with Jupytext, or build the notebook with
`python scripts/lab_notebooks.py logit_lens`). The tuned-lens part as one command: `interplab lens`."""

# %% [markdown]
# # Lab: reading a language model's residual stream with the logit lens and the tuned lens
#
# A decoder-only LM ends with a final norm and an unembedding that turn the last residual stream into
# next-token logits. The **logit lens** (nostalgebraist, 2020) applies that same decoder to *every* layer's
# residual stream: what would the model predict if it stopped here? The **tuned lens** (Belrose et al.,
# 2023) first passes each layer through a learned affine *translator*, trained so that the lens matches
# the model's final distribution (small KL); it reads early layers far better.
#
# At full size this lab uses SmolLM2-135M (packaged for offline use, see docs/models-and-data.md) and the
# packaged English Wikipedia sample. With `INTERPLAB_LAB_SIZE=small` (what CI runs) it builds a tiny
# random-weight GPT-2 instead: the code is identical, the numbers are meaningless.
#
# The web UI shows the same grid interactively: `interplab serve --model smollm2-135m`, then open `/lens`.

# %%
import os
from pathlib import Path

import torch

from interplab.common import free_cpu_threads
from interplab.data.text import load_texts
from interplab.lens import TunedLensConfig, compare_lenses, lens_grid, save_tuned_lens, train_tuned_lens
from interplab.models import load_model

torch.set_num_threads(free_cpu_threads())  # the cores other jobs leave free, as interplab's commands do
SMALL = os.environ.get("INTERPLAB_LAB_SIZE", "full") == "small"
OUT = Path("runs/labs/logit_lens")
if SMALL:
    from interplab.models.tiny import build_tiny_model

    model_name = str(build_tiny_model("gpt2", OUT / "tiny-gpt2"))
    texts = load_texts("demo")
    lens_cfg = TunedLensConfig(steps=20, batch_size=2, max_length=32, checkpoint_every=10)
else:
    model_name, texts = "smollm2-135m", load_texts("wiki-en")[:600]
    # ~3,600 training tokens, ~10 CPU-minutes with the KL pass: the tuned lens beat the logit lens in 28 of
    # 30 layers on held-out text (docs/labs/logit-lens.md); TunedLensConfig()'s 150 x 4 x 128 is 2-3 CPU-hours
    lens_cfg = TunedLensConfig(steps=30, batch_size=2, max_length=64, lr=3e-3, warmup_steps=3)
lm = load_model(model_name, device="cpu")
print(model_name, "layers:", lm.n_layers)

# %% [markdown]
# ## 1. The logit lens on one prompt
#
# Rows are layers (`embed`, then the output of block 0, 1, ...), columns are positions: the cell is the
# lens's most likely *next* token after that position. The last row is the model's own prediction.

# %%
prompt = "The Eiffel Tower is in the city of"
grid = lens_grid(lm, prompt, k=3)
print("tokens:", grid.tokens)
for layer, row in zip(grid.layers, grid.top_tokens, strict=True):
    print(f"{layer:>6}", " | ".join(f"{cell[0]!r:>10}" for cell in row))
print("model:", [cell[0] for cell in grid.final_tokens])

# %% [markdown]
# **Exercise 1.** At the prompt's last position, from which layer on does the lens's top token equal the
# model's own top token? Set `first` to that row index (0 = `embed`) using `grid.top_tokens` and
# `grid.final_tokens`. (It is the *first* row that agrees; later rows may disagree again.)

# %% tags=["exercise:first"]
first = None  # your code here

# %%
final = grid.final_tokens[-1][0]
assert grid.top_tokens[first][-1][0] == final
assert all(grid.top_tokens[i][-1][0] != final for i in range(first)), "an earlier row already agrees"
print(f"the answer {final!r} first appears at row {first} ({grid.layers[first]}) of {len(grid.layers)}")

# %% [markdown]
# ## 2. KL to the model's output, per layer
#
# How far is each layer's lens distribution from the final one? Mean KL(model || lens) in nats over held-out
# text. The logit lens is often poor in early layers: their residual stream is not yet in the basis the
# unembedding reads.

# %%
train_texts, heldout = texts[:-16], texts[-16:]
lens, result = train_tuned_lens(lm, train_texts, lens_cfg, folder=OUT / "tuned")
save_tuned_lens(lens, OUT / "tuned" / "lens")
print(f"trained {result.steps} steps, last loss {result.last_loss:.3f}")
kl = compare_lenses(lm, heldout, {"logit": None, "tuned": lens}, max_length=lens_cfg.max_length)
for i, layer in enumerate(grid.layers):
    print(f"{layer:>6}  logit {float(kl['logit'][i]):7.3f}   tuned {float(kl['tuned'][i]):7.3f}")

# %% [markdown]
# ## 3. The tuned lens on the same prompt

# %%
tuned_grid = lens_grid(lm, prompt, tuned=lens, k=3)
for layer, row in zip(tuned_grid.layers, tuned_grid.top_tokens, strict=True):
    print(f"{layer:>6}", " | ".join(f"{cell[0]!r:>10}" for cell in row))

# %% [markdown]
# ## Questions
#
# - In which layers does the tuned lens's KL fall below the logit lens's? Where does each drop below 5 nats?
# - The tuned lens of the last layer is the identity plus a small correction; why is its KL not exactly 0?
# - `interplab lens --model smollm2-135m --out runs/lens` writes the same comparison as a report with a
#   figure; `interplab serve --reports runs` then offers the trained lens on `/lens`.
