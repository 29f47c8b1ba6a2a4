"""Solutions to labs/circuits.py (for instructors)."""

import torch

# %% tags=["exercise:completeness"]
row0 = g.rows[0].double()  # noqa: F821 (defined in the lab)
n_feat, n_err = g.n_features, g.n_layers * g.n_positions  # noqa: F821
from_features = float(row0[:n_feat].sum())
from_errors = float(row0[n_feat : n_feat + n_err].sum())
from_tokens = float(row0[n_feat + n_err :].sum())
ids = torch.tensor([g.input_ids])  # noqa: F821
with torch.no_grad():
    logit = float(lm.model(input_ids=ids, use_cache=False).logits[0, -1, g.logit_tokens[0]])  # noqa: F821

# %% tags=["exercise:ablation"]
ids = torch.tensor([g.input_ids])  # noqa: F821
write = act * transcoders[layer].W_dec[feature]  # noqa: F821


def edit(x: torch.Tensor) -> torch.Tensor:
    x = x.clone()
    x[:, pos] -= write.to(x.dtype)  # noqa: F821
    return x


with torch.no_grad():
    token = g.logit_tokens[0]  # noqa: F821
    clean = float(lm.model(input_ids=ids, use_cache=False).logits[0, -1, token])  # noqa: F821
    with replace_activation(lm.model, f"blocks.{layer}.mlp_out", edit):  # noqa: F821
        measured = float(lm.model(input_ids=ids, use_cache=False).logits[0, -1, token]) - clean  # noqa: F821
