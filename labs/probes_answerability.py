"""Lab: probing for answerability (percent format: open with Jupytext, or build the notebook with
`python scripts/lab_notebooks.py probes_answerability`). The whole study as one command: `interplab probe`."""

# %% [markdown]
# # Lab: does the model know when a question cannot be answered?
#
# Heindrich, Torr, Barez and Thost (2025, arXiv:2502.19964) found a direction in LLMs' residual streams
# that separates answerable from unanswerable questions, and asked how well it transfers across datasets.
# Two synthetic sets ship with interplab: **equations** ("x = 3, y = 4. What is x + z?": z was never
# defined) and **celebrity** (a short biography, then a question about a fact it does or does not give).
#
# We read the residual stream at the last token of "Context: ... Question: ... Answer:" at several layers,
# fit logistic probes per layer, then train on one dataset and test on the other.
#
# Full size: SmolLM2-135M (offline package). `INTERPLAB_LAB_SIZE=small` (what CI runs): a tiny random GPT-2.

# %%
import os
from pathlib import Path

import torch

from interplab.common import free_cpu_threads
from interplab.data.qa_formats import qa_prompt
from interplab.data.synthetic.answerability import make_celebrity, make_equations
from interplab.models import load_model
from interplab.probes import (
    SplitData,
    evaluate,
    extract_features,
    generalization_matrix,
    hook_name,
    stratified_split,
    train_linear_probe,
)

torch.set_num_threads(free_cpu_threads())  # the cores other jobs leave free, as interplab's commands do
SMALL = os.environ.get("INTERPLAB_LAB_SIZE", "full") == "small"
OUT = Path("runs/labs/probes")
if SMALL:
    from interplab.models.tiny import build_tiny_model

    model_name, n, layers = str(build_tiny_model("gpt2", OUT / "tiny-gpt2")), 60, [0, 1]
else:
    model_name, n, layers = "smollm2-135m", 200, [3, 9, 15, 21, 27]
lm = load_model(model_name, device="cpu")
datasets = {"equations": make_equations(n, seed=0), "celebrity": make_celebrity(n, seed=0)}
print(qa_prompt(datasets["equations"][0]), "->", datasets["equations"][0].answerable)

# %% [markdown]
# ## 1. A probe per layer

# %%
hooks = [hook_name(layer) for layer in layers]
data: dict[str, dict[str, SplitData]] = {hook: {} for hook in hooks}
for name, examples in datasets.items():
    y_N = torch.tensor([e.answerable for e in examples]).long()
    train_idx, test_idx = stratified_split(y_N, 0.3, seed=0)
    features = extract_features(lm, [qa_prompt(e) for e in examples], hooks)
    for hook in hooks:
        data[hook][name] = SplitData(features[hook], y_N, train_idx, test_idx)
for hook in hooks:
    scores = {name: evaluate(train_linear_probe(*split.train), *split.test) for name, split in data[hook].items()}
    print(hook, {name: f"acc {m.accuracy:.2f}, AUROC {m.auroc:.2f}" for name, m in scores.items()})

# %% [markdown]
# ## 2. Does a direction found on one dataset work on the other?
#
# **Exercise 1.** Write `mean_difference_fit(X_ND, y_N)`, a *contrast* probe: the direction is the mean of
# the answerable rows minus the mean of the unanswerable ones, and it returns a scorer: a function from
# features [n, d] to scores [n] that are positive for "answerable", with the threshold halfway between
# the two class means along the direction. `generalization_matrix` then trains it on each dataset and tests
# it on every dataset.

# %% tags=["exercise:contrast"]
def mean_difference_fit(X_ND, y_N):
    raise NotImplementedError("your code here")


# %%
X_ND, y_N = data[hooks[-1]]["equations"].train
score = mean_difference_fit(X_ND, y_N)(X_ND)
positive, negative = float(score[y_N == 1].mean()), float(score[y_N == 0].mean())
assert score.shape == y_N.shape and positive > negative
assert abs(positive + negative) < 1e-3 * (positive - negative), "the threshold is not halfway between the means"
for hook in hooks:
    result = generalization_matrix(data[hook], mean_difference_fit)
    print(hook, "rows: trained on, columns: tested on", result.names)
    print(result.accuracy.round(decimals=2))

# %% [markdown]
# ## Questions
#
# - At which layer does the probe first separate the classes? Is it the same for both datasets?
# - Why can a contrast direction transfer better than a logistic probe trained on the same rows?
# - `interplab probe --model smollm2-135m --layers 3,9,15,21,27 --out runs/probe` runs the full study,
#   with an SAE (`--sae`) for latent rankings and k-sparse probes, as a report with figures.
