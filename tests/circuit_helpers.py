"""Random (perturbed) transcoders on every layer, for graph tests."""

from __future__ import annotations

import torch

from interplab.saes import make_sae, sae_config


def random_transcoders(n_layers: int, d: int, arch: str = "topk_skip_transcoder", d_sae: int = 96,
                       dtype=torch.float64) -> list:
    out = []
    for layer in range(n_layers):
        kw = {"k": 6} if arch.startswith("topk") else {"init_threshold": 0.02}
        tc = make_sae(sae_config(arch, d_in=d, d_sae=d_sae, seed=layer, **kw)).to(dtype)
        gen = torch.Generator().manual_seed(100 + layer)
        with torch.no_grad():
            for p in tc.parameters():
                p.add_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * 0.05)
        out.append(tc.eval())
    return out
