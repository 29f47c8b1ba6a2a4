"""Lab: a bracket-counting circuit in a tiny transformer (percent format: open with Jupytext, or build the
notebook with `python scripts/lab_notebooks.py dyck`). The same lab as one command: `interplab dyck`."""

# %% [markdown]
# # Lab: finding the circuit of a Dyck-language transformer
#
# A string of brackets is *balanced* (a Dyck word) when every prefix has at least as many `(` as `)`
# and the totals match. A tiny transformer (2 layers, 2 heads, d = 32) trained from scratch learns to
# tell balanced strings from one-edit negatives, and to report the nesting depth after each bracket.
# Because we know the algorithm it *could* use (count opens minus closes), we can check whether it does:
#
# 1. train it (about a minute of CPU at full size);
# 2. **probe** every residual stream for the depth;
# 3. **ablate** each attention head and see which ones the task needs;
# 4. check that the identified head behaves like a counter (uniform attention over the prefix);
# 5. train a small **SAE** on its residual stream and find latents that mean "depth = d".
#
# Everything below calls `interplab.dyck` and `interplab.data.synthetic.dyck`; `interplab dyck --out runs/dyck`
# runs the whole lab into a report folder that `interplab serve --reports runs` shows.
#
# Set `INTERPLAB_LAB_SIZE=small` before starting Jupyter for a 30-second version (what CI runs).

# %%
import os

import torch

from interplab.common import free_cpu_threads
from interplab.data.synthetic.dyck import DyckDataConfig, dyck_split
from interplab.dyck import (
    DyckModelConfig,
    DyckSAEConfig,
    DyckTrainConfig,
    accuracy,
    counting_evidence,
    depth_accuracy,
    depth_latents,
    depth_probe_accuracies,
    head_ablation_table,
    train_depth_sae,
    train_dyck_model,
)

torch.set_num_threads(free_cpu_threads())  # the cores other jobs leave free, as interplab's commands do
SMALL = os.environ.get("INTERPLAB_LAB_SIZE", "full") == "small"
data_cfg = DyckDataConfig(max_pairs=5, max_depth=4) if SMALL else DyckDataConfig()
n_train, n_test = (4_000, 500) if SMALL else (50_000, 4_000)
model_cfg = DyckModelConfig(seq_len=data_cfg.seq_len, max_depth=data_cfg.max_depth,
                            **({"d_model": 16, "d_mlp": 32} if SMALL else {}))
train_cfg = DyckTrainConfig(steps=300, batch_size=64) if SMALL else DyckTrainConfig()
sae_cfg = DyckSAEConfig(steps=400) if SMALL else DyckSAEConfig()
torch.manual_seed(0)

# %% [markdown]
# ## 1. Data
#
# Negatives are one edit away from a balanced string: either the counts differ (`count`), or the counts
# match but some prefix dips below zero (`order`). The second kind is what forces the model to track the
# running depth, not just the totals. Held-out strings never occur in training.

# %%
train_set, test_set = dyck_split(n_train, n_test, data_cfg)
for text, kind in list(zip(test_set.strings(), test_set.kind, strict=True))[:8]:
    print(f"{kind:9s} {text}")

# %% [markdown]
# **Exercise 1.** Write `depths(text)`: the depth after each bracket (`"(()"` → `[1, 2, 1]`).
# The next cell checks it against the depths the data set stores.

# %% tags=["exercise:depths"]
def depths(text: str) -> list[int]:
    raise NotImplementedError("your code here")


# %%
for row, text in enumerate(test_set.strings()[:50]):
    assert depths(text) == test_set.depth_BT[row, 1:1 + len(text)].tolist(), text
print("depths(): correct")

# %% [markdown]
# ## 2. Train the model

# %%
model = train_dyck_model(train_set, model_cfg, train_cfg)
acc, depth_acc = accuracy(model, test_set), depth_accuracy(model, test_set)
print(f"held-out: balanced/unbalanced accuracy {acc:.3f}, depth accuracy {depth_acc:.3f}")

# %% [markdown]
# ## 3. Where is the depth? Probes on every residual stream
#
# A softmax probe per stream (embeddings, after each block, after the final LayerNorm), trained on
# training strings and scored on held-out ones. The embeddings only know the current bracket, so their
# probe is near chance; the depth appears after the first attention layer.

# %%
probes = depth_probe_accuracies(model, train_set, test_set)
for i, a in enumerate(probes):
    print(f"stream {i}: depth probe accuracy {a:.3f}")

# %% [markdown]
# ## 4. Which heads does the task need? Ablations
#
# *Mean* ablation replaces a head's output by its mean over the data; *resample* ablation by its output on
# another string of the same length. The cost is the accuracy lost, in points.

# %%
tables = {how: head_ablation_table(model, test_set, how) for how in ("mean", "resample")}
for how, rows in tables.items():
    print(how, {r["head"]: round(r["cost_points"], 1) for r in rows})

# %% [markdown]
# **Exercise 2.** Set `identified` to the name (`"L0H1"`, ...) of the head the task depends on most under
# mean ablation, read from `tables`.

# %% tags=["exercise:identified"]
identified = None  # your code here

# %%
cost = {r["head"]: r["cost_points"] for r in tables["mean"]}
assert identified in cost and all(cost[identified] >= c for c in cost.values()), cost
print(f"identified head {identified}: {cost[identified]:.1f} points; the others: "
      f"{ {h: round(c, 1) for h, c in cost.items() if h != identified} }")

# %% [markdown]
# ## 5. Is it a counter?
#
# If a head attends uniformly to the prefix and writes a fixed vector per bracket type, its output is
# exactly a linear function of depth/(t+1) and 1/(t+1). `counting_evidence` measures both: the mean total
# variation distance from uniform attention (0 = uniform) and the R² of that linear fit.

# %%
layer, head = int(identified[1]), int(identified[3])
print(counting_evidence(model, test_set, layer, head))
example = test_set.tokens_BT[:1], test_set.mask_BT[:1]
pattern = model.attention_patterns(*example)[layer][0, head]
n = int(example[1].sum())
print("attention of the identified head on", test_set.strings()[0])
print((pattern[:n, :n] * 100).round().int())

# %% [markdown]
# ## 6. An SAE on the residual stream: latents that mean "depth = d"
#
# A TopK SAE (k = 2) on the final residual stream at bracket positions of balanced strings. For each depth
# we find the latent whose activation correlates best with "the depth here is d".

# %%
sae = train_depth_sae(model, train_set, sae_cfg)
for row in depth_latents(model, sae, test_set):
    print(row)

# %% [markdown]
# ## Questions
#
# - Train with `DyckTrainConfig(head_penalty=0.0)`: is the count still carried by one head? (The penalty
#   is a group lasso on each head's output norm; without it the count is shared by two heads.)
# - Why does uniform attention compute depth/(t+1) and not the depth itself? How can the MLP recover the
#   depth from it, and why does that get harder for long strings?
# - Which negatives (`order` or `count`) does the model get wrong most often? Use `test_set.kind`.
