"""Lab: toy models of superposition (percent format: open with Jupytext, or build the notebook with
`python scripts/lab_notebooks.py toy_models`). The paper's four figures as one command: `interplab toy`."""

# %% [markdown]
# # Lab: toy models of superposition
#
# Elhage et al. 2022, [Toy Models of Superposition](https://transformer-circuits.pub/2022/toy_model/).
# n features, each 0 with probability S (the sparsity) and otherwise uniform on [0, 1], pass through m < n
# hidden dimensions and are rebuilt: h = W x, x' = ReLU(Wᵀh + b). Feature i has importance Iᵢ and the loss
# is Σᵢ Iᵢ (xᵢ − x'ᵢ)². Column Wᵢ is feature i's direction. See docs/toy-lab.md for what each figure shows;
# here we train the first setting ourselves and measure it with `interplab.toy`.
#
# `INTERPLAB_LAB_SIZE=small` trains for fewer steps (what CI runs).

# %%
import os

import torch

from interplab.common import free_cpu_threads
from interplab.toy import ToyConfig, dims_per_feature, feature_norms, fit, superposition

torch.set_num_threads(free_cpu_threads())  # the cores other jobs leave free, as interplab's commands do
SMALL = os.environ.get("INTERPLAB_LAB_SIZE", "full") == "small"
steps, eval_samples, restarts = (400, 4096, 1) if SMALL else (3000, 32768, 3)  # restarts: the best of 3 fits
densities = [1.0, 0.3, 0.1, 0.03, 0.01]  # 1 - S, one model per density
importance = [0.9**i for i in range(5)]

# %% [markdown]
# ## 1. n = 5 features, m = 2 dimensions, ReLU and linear
#
# One model per density, trained together as a batch of instances.

# %%
relu = fit(ToyConfig(n_features=5, n_hidden=2, steps=steps, eval_samples=eval_samples, restarts=restarts),
           densities, importance)
linear = fit(ToyConfig(n_features=5, n_hidden=2, activation="linear", steps=steps, eval_samples=eval_samples,
                      restarts=restarts),
             densities, importance)
for name, result in (("relu", relu), ("linear", linear)):
    print(name)
    for density, norms, loss in zip(densities, feature_norms(result.W_IMN), result.loss_I, strict=True):
        print(f"  1-S={density:<5} ‖W_i‖ = {[round(float(v), 2) for v in norms]}  loss {float(loss):.4f}")

# %% [markdown]
# Dense features: only the two most important features get a direction. Sparse ones: the ReLU model
# represents all five, as a pentagon; the linear model still keeps two (it is PCA).
#
# **Exercise 1.** For every model, compute each feature's superposition Σ_{j≠i} (Ŵᵢ·Wⱼ)², where
# Ŵᵢ = Wᵢ / max(‖Wᵢ‖, 10⁻⁶) (so even an unused feature's tiny Wᵢ has a direction), as a tensor `mine` of
# shape [models, features] from `relu.W_IMN` ([models, m, n]). The check compares it with
# `interplab.toy.superposition`.

# %% tags=["exercise:superposition"]
mine = None  # your code here

# %%
assert mine is not None and mine.shape == (len(densities), 5)
assert torch.allclose(mine, superposition(relu.W_IMN), atol=1e-4)
print("superposition per feature (rows: 1-S):")
print(mine.round(decimals=2))

# %% [markdown]
# ## 2. Dimensions per feature
#
# D* = m / ‖W‖²_F: 1 when each learned feature has its own dimension, ½ for antipodal pairs, 2/5 for a
# pentagon of unit-norm features (a little less here: sparse features' norms grow above 1).

# %%
for density, d_star in zip(densities, dims_per_feature(relu.W_IMN), strict=True):
    print(f"1-S={density:<5} D* = {float(d_star):.2f}")

# %% [markdown]
# ## Questions
#
# - Why can't the linear model use superposition, however sparse the features are?
# - Between which densities does the third feature appear? Add densities to find out.
# - `interplab toy --preset all --out runs/toy` draws the paper's four figures (about 2 CPU-minutes).
