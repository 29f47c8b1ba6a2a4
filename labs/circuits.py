"""Lab: transcoders, an attribution graph and an intervention check (percent format: open with Jupytext, or
build the notebook with `python scripts/lab_notebooks.py circuits`). As commands: `interplab train-transcoders`
and `interplab graph`."""

# %% [markdown]
# # Lab: tracing a circuit with transcoders and an attribution graph
#
# An SAE says which features a layer holds; a **transcoder** (Dunefsky et al. 2024) says what an MLP
# *computes*: it is a sparse layer trained to map the MLP's input to its output, so features in one layer
# connect *linearly* to features in the next. With one transcoder per layer we can build an
# **attribution graph** (Ameisen et al. 2025, "Circuit tracing"):
#
# 1. run the prompt once and freeze every attention pattern and norm scale; with the MLPs replaced by
#    transcoders plus an *error node* each (real MLP output − transcoder output), the model is then linear in
#    its sources (the *local replacement model*);
# 2. nodes are token embeddings, active transcoder features (layer × position), error nodes and the target
#    logit; an edge is a source's **direct effect** on a target through the frozen model;
# 3. because the replacement model is affine, every target's incoming edges plus a constant sum to its value
#    exactly (**completeness**);
# 4. an edge is a claim about the model: ablate the feature in the *real* model and see how far the logit moves.
#
# At full size the lab trains 30 skip-transcoders on SmolLM2-135M (about 15 CPU minutes, docs/circuits.md).
# With `INTERPLAB_LAB_SIZE=small` (what CI runs) it is a tiny random-weight 2-layer Llama and a few training
# steps: the code is identical, the features mean nothing.

# %%
import os
from pathlib import Path

import torch

from interplab.activations.stream import StreamConfig
from interplab.circuits import GraphConfig, attribute, check_interventions, frozen_change, graph_prediction
from interplab.common import free_cpu_threads
from interplab.data.text import load_texts
from interplab.models import load_model
from interplab.models.interventions import replace_activation  # noqa: F401 (exercise 2)
from interplab.pipelines.graph import graph_run
from interplab.pipelines.transcoders import train_transcoders_run
from interplab.saes import sae_config
from interplab.training import TrainConfig

torch.set_num_threads(free_cpu_threads())  # the cores other jobs leave free, as interplab's commands do
SMALL = os.environ.get("INTERPLAB_LAB_SIZE", "full") == "small"
OUT = Path("runs/labs/circuits")
prompt = "The capital of France is"
if SMALL:
    from interplab.models.tiny import build_tiny_model

    model_name, texts = str(build_tiny_model("llama", OUT / "tiny-llama", n_layers=2)), load_texts("demo")
    lm = load_model(model_name, device="cpu")
    tc_cfg = sae_config("topk_skip_transcoder", d_in=lm.d_model, d_sae=128, k=8)
    train_cfg = TrainConfig(total_steps=20, lr=1e-3, log_every=5)
    stream_cfg = StreamConfig(batch_size=128, context_size=32, window_seqs=8)
    graph_cfg, n_eval = GraphConfig(max_feature_nodes=32, batch_size=8), 4
else:
    model_name, texts = "smollm2-135m", load_texts("wiki-en")
    lm = load_model(model_name, device="cpu")
    tc_cfg = sae_config("topk_skip_transcoder", d_in=lm.d_model, d_sae=1152, k=16)
    train_cfg = TrainConfig(total_steps=100, lr=1e-3, log_every=10)
    stream_cfg = StreamConfig(batch_size=256, context_size=64)
    graph_cfg, n_eval = GraphConfig(max_feature_nodes=64), 4
print(model_name, "layers:", lm.n_layers, "d_model:", lm.d_model)

# %% [markdown]
# ## 1. One transcoder per layer
#
# `train_transcoders_run` streams forward passes (nothing is cached), takes every layer's MLP input and
# output from the same pass and trains all layers' transcoders together, in a resumable run folder. Its
# evaluation gives each layer's FVU and the CE loss recovered when every MLP is replaced by its transcoder.

# %%
run = train_transcoders_run(OUT / "transcoders", lm, texts[:-n_eval], texts[-n_eval:], tc_cfg, train_cfg, stream_cfg,
                            show_progress=False)
print({k: run.evaluation[k] for k in ("fvu_mean", "ce_recovered") if k in run.evaluation})
transcoders = [run.transcoders[layer].to(dtype=next(lm.model.parameters()).dtype) for layer in range(lm.n_layers)]

# %% [markdown]
# ## 2. The attribution graph
#
# `graph_run` writes the pruned graph as a report (`interplab serve --reports runs/labs/circuits` draws it on
# `/graphs/graph`); `attribute` returns the whole unpruned graph as tensors, which we read below.
# `g.rows[0]` is the target logit's row: the direct effect of every source, in the column order
# features (`g.n_features`), error nodes (`g.n_layers × g.n_positions`, layer-major), token embeddings
# (`g.n_positions`).

# %%
graph_run(OUT / "graph", lm, OUT / "transcoders" / "transcoders", prompt, graph_cfg, check=3, overwrite=True)
g = attribute(lm.model, lm.tokenizer, transcoders, prompt, graph_cfg)
target = lm.tokenizer.decode(g.logit_tokens[:1])
print(f"tokens {g.tokens}; target {target!r}; {g.n_features} active features, {len(g.row_features)} visited")
print("completeness error per row (max):", float(g.completeness_error().max()))

# %% [markdown]
# **Exercise 1 (completeness).** Split the target logit's row into what the transcoder features, the error
# nodes and the token embeddings contribute: set `from_features`, `from_errors` and `from_tokens` (floats,
# sums over `g.rows[0]`'s columns) and `logit`, the target's logit at the prompt's last position computed by
# running the *real* model (`lm.model(input_ids=...)`) on `g.input_ids`. Completeness says that
# `from_features + from_errors + from_tokens + g.row_bias[0]` equals that logit.

# %% tags=["exercise:completeness"]
from_features = from_errors = from_tokens = logit = None  # your code here

# %%
n_err = g.n_layers * g.n_positions
assert g.rows.shape[1] == g.n_features + n_err + g.n_positions
assert abs(from_features + from_errors + from_tokens - float(g.rows[0].double().sum())) < 1e-4
assert abs(from_tokens - float(g.rows[0, g.n_features + n_err:].double().sum())) < 1e-4
assert abs(from_features + from_errors + from_tokens + float(g.row_bias[0]) - logit) < 1e-3 * max(1.0, abs(logit))
print(f"logit {logit:.4f} = features {from_features:.4f} + errors {from_errors:.4f} + tokens {from_tokens:.4f} "
      f"+ bias {float(g.row_bias[0]):.4f}")

# %% [markdown]
# ## 3. Does an edge hold in the real model?
#
# Take the feature with the largest direct effect on the logit. The graph says that switching it off
# (scaling its activation `a` to 0) moves the logit by minus its edge, and in the local replacement model
# (`frozen_change`: attention, norms and every other feature frozen) that holds exactly.

# %%
col = int(g.rows[0, : g.n_features].abs().argmax())
layer, pos, feature, act = int(g.feat_layer[col]), int(g.feat_pos[col]), int(g.feat_idx[col]), float(g.feat_act[col])
direct, through_graph = graph_prediction(g, col, 0.0)
print(f"feature {feature} of layer {layer} at position {pos} ({g.tokens[pos]!r}), activation {act:.3f}")
print(f"edge {float(g.rows[0, col]):.4f}; graph: direct {direct:.4f}, through the visited features {through_graph:.4f}")
print(f"in the local replacement model: {frozen_change(lm.model, transcoders, g, col, 0.0):.4f}")

# %% [markdown]
# **Exercise 2 (an ablation by hand).** Now in the real model: the feature writes `act * W_dec[feature]` into
# layer `layer`'s MLP output at position `pos` (`transcoders[layer].W_dec` is `[d_sae, d_model]`). Remove that
# write with `replace_activation(lm.model, f"blocks.{layer}.mlp_out", edit)` (a context manager; `edit`
# receives the activation `[batch, positions, d_model]` and returns the new one) and set `measured` to the
# change of the target logit (`g.logit_tokens[0]`) at the last position, ablated minus clean. Attention and
# norms are *not* frozen here.

# %% tags=["exercise:ablation"]
measured = None  # your code here

# %%
row = check_interventions(lm.model, transcoders, g, columns=[col])[0]
assert abs(measured - row["delta_real"]) < 1e-4 * max(1.0, abs(row["delta_real"])), (measured, row["delta_real"])
print(f"real model {measured:.4f} vs graph {through_graph:.4f} (frozen attention and norms: "
      f"{row['delta_frozen_attn']:.4f}); relative error {row['rel_error']:.0%}")

# %% [markdown]
# Δ_real − Δ_frozen_attn is what moving attention patterns and norm scales add; Δ_frozen_attn − Δ_graph is
# the MLPs' nonlinearity (other features switching on or off, error nodes changing). The report's
# `interventions` table has the same columns for the top features.
#
# ## Questions
#
# - How large are the error nodes' contributions compared with the features'? What would better-trained
#   transcoders change?
# - On SmolLM2 (docs/circuits.md) the graph's predictions are 13–63 % off, and the whole gap comes from the
#   final norm's scale. Why does a norm break linearity, and why does freezing it make the graph exact?
# - The full-size commands: `interplab train-transcoders --model smollm2-135m --data wiki-en --out
#   runs/smollm2-tc --d-sae 1152 --k 16 --steps 100 --batch-size 256 --context-size 64`, then
#   `interplab graph --model smollm2-135m --transcoders runs/smollm2-tc/transcoders --prompt "The capital of
#   France is" --out reports/graph-paris --check 5`.
