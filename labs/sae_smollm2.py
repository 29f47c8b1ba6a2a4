"""Lab: a sparse autoencoder on SmolLM2's residual stream (percent format: open with Jupytext, or build the
notebook with `python scripts/lab_notebooks.py sae_smollm2`). As commands: `interplab cache`,
`interplab train-sae`, `interplab eval-sae`."""

# %% [markdown]
# # Lab: training and judging an SAE on a real language model
#
# A sparse autoencoder rewrites a residual-stream vector x (d numbers) as a sparse combination of many more
# learned directions: x̂ = W_dec · z + b_dec with z = TopK(W_enc · x + b_enc). Three numbers judge it:
#
# - **FVU**, the fraction of variance unexplained: ‖x − x̂‖² / ‖x − mean(x)‖² over the data (0 is perfect);
# - **L0**, latents active per token (k for a TopK SAE) and the share of latents that never fire (*dead*);
# - **CE loss recovered**: splice x̂ in place of x and see how much of the model's next-token loss survives.
#
# Full size: SmolLM2-135M (offline package) on 200k tokens of the packaged Wikipedia sample, a few CPU
# minutes. `INTERPLAB_LAB_SIZE=small` (what CI runs): a tiny random GPT-2 on the demo corpus.

# %%
import os
from pathlib import Path

import torch

from interplab.activations import CacheConfig
from interplab.common import free_cpu_threads
from interplab.evals import fvu
from interplab.pipelines.cache import TextSource, cache_run
from interplab.pipelines.train import StoreData, evaluate_sae_run, train_sae_run
from interplab.saes import sae_config
from interplab.training import TrainConfig

torch.set_num_threads(free_cpu_threads())  # the cores other jobs leave free, as interplab's commands do
SMALL = os.environ.get("INTERPLAB_LAB_SIZE", "full") == "small"
OUT = Path("runs/labs/sae_smollm2")
if SMALL:
    from interplab.models.tiny import build_tiny_model

    model_name, hook, data = str(build_tiny_model("gpt2", OUT / "tiny-gpt2")), "blocks.1.resid_post", None
    cache_cfg = CacheConfig(context_size=32, max_tokens=4_000, overwrite=True)
    expansion, k, train_cfg = 4, 8, TrainConfig(total_steps=100, batch_size=256, lr=1e-3, device="cpu")
else:
    model_name, hook, data = "smollm2-135m", "blocks.15.resid_post", "wiki-en"
    cache_cfg = CacheConfig(context_size=128, max_tokens=200_000, overwrite=True)
    expansion, k, train_cfg = 8, 32, TrainConfig(total_steps=2_000, batch_size=1024, device="cpu")

# %% [markdown]
# ## 1. Cache activations
#
# The store holds the activations at `hook` for every real token, in checksummed safetensors shards.

# %%
store = cache_run(model_name, hook, OUT / "store", TextSource(data), cache_cfg, device="cpu", show_progress=False)
x_BD = next(store.batches(512, shuffle=True, seed=0))
d = x_BD.shape[1]
print(f"{store.folder}: {x_BD.shape[0]} activations in the first batch, d = {d}")

# %% [markdown]
# ## 2. Train a TopK SAE
#
# `train_sae_run` owns a run folder: rerunning the same call resumes an interrupted run, and a finished
# one is reused. It evaluates the SAE on the store and plots L0 against FVU.

# %%
run = train_sae_run(OUT / "sae-run", StoreData(store.folder), sae_config("topk", d_in=d, d_sae=expansion * d, k=k),
                    train_cfg, overwrite=True, show_progress=False)
print({key: run.evaluation[key] for key in ("fvu", "l0", "dead_fraction") if key in run.evaluation})

# %% [markdown]
# **Exercise 1.** Compute the FVU of `run.sae` on the batch `x_BD` yourself, as a float `my_fvu`:
# reconstruct with `run.sae.decode(run.sae.encode(x_BD))`, then divide the summed squared error by the
# summed squared deviation of `x_BD` from its mean over the batch.

# %% tags=["exercise:fvu"]
my_fvu = None  # your code here

# %%
with torch.no_grad():
    reference = fvu(x_BD, run.sae.decode(run.sae.encode(x_BD)))
assert isinstance(my_fvu, float) and abs(my_fvu - reference) < 1e-3, (my_fvu, reference)
print(f"FVU on the batch: {my_fvu:.3f}")

# %% [markdown]
# ## 3. CE loss recovered
#
# The model runs with the SAE's reconstruction spliced in at `hook` (and with the activation zeroed, for
# the baseline); 100 % means the reconstruction loses nothing the model uses.

# %%
metrics, path = evaluate_sae_run(OUT / "sae-run" / "sae", model=model_name, n_texts=8 if SMALL else 32,
                                 max_length=32 if SMALL else 128, device="cpu")
print({key: value for key, value in metrics.items() if not isinstance(value, (list, dict))})

# %% [markdown]
# ## Questions
#
# - Double `k`: how do FVU and CE recovered move? Which of the two matters for interpretability?
# - Dead latents waste capacity. What in the training config (`interplab train-sae --help`) fights them?
# - Next: `interplab analyze` builds dashboards of every latent from the same run, served by `interplab serve`.
