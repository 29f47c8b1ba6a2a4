"""Lab: steering vectors and auto-interpretability (percent format: open with Jupytext, or build the
notebook with `python scripts/lab_notebooks.py steering_autointerp`). As commands: `interplab steer` and
`interplab explain` (docs/steering-autointerp.md)."""

# %% [markdown]
# # Lab: steering vectors and auto-interpretability
#
# **Steering.** A steering vector is a direction at one hook (here the residual stream after a middle
# block) added, times a coefficient, to the activation while the model runs. The simplest one is the
# *mean difference* of activations on contrast pairs (positive minus negative text).
#
# **Auto-interpretability.** An SAE splits the same residual stream into sparse latents. To say what a
# latent means, we show an explainer LLM its top-activating windows, then *score* the explanation: can a
# judge, given only the explanation, tell held-out windows where the latent fires from ones where it does
# not (detection, balanced accuracy, 0.5 = chance)?
#
# Full size: SmolLM2-135M (offline package) on the packaged Wikipedia sample, with SmolLM2 itself as a
# (weak) explainer; `interplab explain --endpoint ...` uses any OpenAI-compatible server instead.
# `INTERPLAB_LAB_SIZE=small` (what CI runs): a tiny random GPT-2, so the text is noise but the code is the same.

# %%
import os
from pathlib import Path

import torch

from interplab.autointerp import (
    ExampleConfig,
    ExplainConfig,
    LocalHFClient,
    ScoreConfig,
    collect_examples,
    detection_score,
    explain_latent,
    split_held_out,
)
from interplab.common import free_cpu_threads
from interplab.data.text import load_texts
from interplab.models import load_model, run_to_capture
from interplab.saes import make_sae, sae_config
from interplab.steering import (
    ContrastPair,
    GenerationSettings,
    cosine_comparison,
    from_contrast_pairs,
    generate_steered,
)
from interplab.training import TrainConfig, fit

torch.set_num_threads(free_cpu_threads())  # the cores other jobs leave free, as interplab's commands do
SMALL = os.environ.get("INTERPLAB_LAB_SIZE", "full") == "small"
OUT = Path("runs/labs/steering_autointerp")
if SMALL:
    from interplab.models.tiny import build_tiny_model

    model_name, texts = str(build_tiny_model("gpt2", OUT / "tiny-gpt2")), load_texts("demo")
    sae_steps, max_windows = 150, 256
else:
    model_name, texts = "smollm2-135m", load_texts("wiki-en")[:400]
    sae_steps, max_windows = 1500, 4096
lm = load_model(model_name, device="cpu")
hook = f"blocks.{lm.n_layers // 2}.resid_post"
print(model_name, hook)

# %% [markdown]
# ## 1. A steering vector from contrast pairs

# %%
pairs = [ContrastPair(positive=p, negative=n) for p, n in [
    ("I love this, it is wonderful", "I hate this, it is awful"),
    ("What a happy day", "What a sad day"),
    ("She was delighted with the gift", "She was disgusted by the gift"),
    ("The food was delicious", "The food was disgusting"),
    ("We had a great time", "We had a terrible time"),
    ("He smiled with joy", "He frowned in anger"),
]]
vectors = {"all": from_contrast_pairs(lm, pairs, hook), "first half": from_contrast_pairs(lm, pairs[:3], hook),
           "second half": from_contrast_pairs(lm, pairs[3:], hook)}
names, cosine = cosine_comparison(vectors)
print(names)
print(cosine.round(decimals=2))

# %% [markdown]
# **Exercise 1.** Compute the cosine similarity of the two half vectors yourself from their `vector_D`
# tensors, as a float `half_cosine`. If it is high, the direction is a property of the concept, not of the
# particular pairs.

# %% tags=["exercise:half_cosine"]
half_cosine = None  # your code here

# %%
assert isinstance(half_cosine, float)
assert abs(half_cosine - float(cosine[names.index("first half"), names.index("second half")])) < 1e-4
print(f"cosine between the halves: {half_cosine:.3f}")

# %% [markdown]
# Generation with and without the vector (greedy decoding, so only the vector differs):

# %%
settings = GenerationSettings(max_new_tokens=12 if SMALL else 24)
prompts = ["I think that the movie", "My week has been"]
scale = float(torch.stack(list(run_to_capture(lm.model, lm.tokenize(prompts[0]), hook).values()))[0].norm(dim=-1).mean())
coef = 0.5 * scale / float(vectors["all"].vector_D.norm())  # half the typical residual norm
for steer_coef in (0.0, coef, -coef):
    print(f"coef {steer_coef:+.1f}:", generate_steered(lm, prompts, vectors["all"], steer_coef, settings=settings))

# %% [markdown]
# ## 2. An SAE on the same hook
#
# Activations of every token of the corpus at `hook`, then a TopK SAE (`interplab.saes`, trained with
# `interplab.training.fit`). `interplab train-sae` does the same from an activation store, at scale.

# %%
acts = []
for start in range(0, min(len(texts), 200), 8):
    batch = lm.tokenize(texts[start:start + 8], max_length=64)
    x_BSD = run_to_capture(lm.model, batch, hook)[hook]
    acts.append(x_BSD[batch["attention_mask"].bool()].float())
x_ND = torch.cat(acts)
sae = make_sae(sae_config("topk", d_in=x_ND.shape[1], d_sae=8 * x_ND.shape[1], k=8, metadata={"hook_name": hook}))
generator = torch.Generator().manual_seed(0)
fit(sae, (x_ND[torch.randint(0, len(x_ND), (256,), generator=generator)] for _ in iter(int, 1)),
    TrainConfig(total_steps=sae_steps, batch_size=256, lr=1e-3, device="cpu", log_every=50))
print(f"{len(x_ND)} token activations, SAE with {sae.cfg.d_sae} latents")

# %% [markdown]
# ## 3. Explain a latent and score the explanation

# %%
examples = collect_examples(lm, sae, hook, texts, top_n=3, cfg=ExampleConfig(max_windows=max_windows))
latent, latent_examples = next(iter(examples.items()))
shown, held_out = split_held_out(latent_examples)
print(f"latent {latent}: top windows")
for ex in shown.top[:5]:
    print("  ", repr(ex.text()[:80]), f"max {ex.max_act:.2f}")
explainer = LocalHFClient(lm)
explanation = explain_latent(explainer, shown, ExplainConfig(max_tokens=24 if SMALL else 64))
print("the model's own explanation:", explanation.text)

# %% [markdown]
# A strong baseline explainer needs no LLM: name the token the latent fires on most often.

# %%
counts: dict[str, int] = {}
for ex in shown.top + shown.quantile:
    for token, act in zip(ex.tokens, ex.acts, strict=True):
        if act > 0 and token.strip():
            counts[token.strip()] = counts.get(token.strip(), 0) + 1
top_token = max(counts, key=counts.__getitem__)
baseline = f'the token "{top_token}"'
print("baseline explanation:", baseline)

# %% [markdown]
# **Exercise 2.** A judge is any object with a method `complete(messages, max_tokens=None) -> str` (the
# `ExplainerClient` protocol). Write `KeywordJudge`: it reads the explanation's quoted word and each
# `Example i: ...` line from the last message's `content`, and answers with a list like `[1, 0, 1]`
# (1 = the example contains the word). `detection_score` must read every reply (no parse failures).

# %% tags=["exercise:judge"]
class KeywordJudge:
    def complete(self, messages, max_tokens=None) -> str:
        raise NotImplementedError("your code here")


# %%
result = detection_score(KeywordJudge(), baseline, held_out, ScoreConfig(max_examples=10))
assert result.n > 0 and result.parse_failures == 0, result
print(f"keyword judge on the baseline explanation: balanced accuracy {result.balanced_accuracy:.2f} "
      f"(tpr {result.tpr:.2f}, tnr {result.tnr:.2f}, {result.n} windows)")
llm = detection_score(explainer, explanation.text, held_out, ScoreConfig(max_examples=4 if SMALL else 10))
print(f"the model as judge of its own explanation: {llm.balanced_accuracy:.2f} ({llm.parse_failures} unreadable)")

# %% [markdown]
# ## Questions
#
# - Sweep the coefficient (`interplab.steering.sweep`, or `interplab steer sweep`): where does the text
#   stop being fluent (perplexity) before the target behaviour saturates?
# - Why is the keyword baseline hard to beat on token-level latents, and where would an LLM explainer win?
# - Fuzzing (`interplab.autointerp.fuzzing_score`) marks tokens; what does it test that detection does not?
