"""Ground-truth recovery benchmark at the issue's full size (Sharkey et al. 2022 recipe).

512 unit features in 256 dimensions, geometrically decaying firing probabilities (optionally
correlated); TopK and ReLU SAEs with dictionaries of 1x and 2x the true count are trained by
`interplab.training.fit`, then scored by MMCS against the true directions on held-out data.

    python bench/ground_truth.py                    # full size, prints the table
    python bench/ground_truth.py --n-features 64 --d 32 --steps 500   # small instance, a smoke run

Prints one row per run: arch, d_sae, MMCS, share of features with cosine >= 0.9, FVU, L0, dead
fraction, distinct (true features that are some latent's best match), seconds. The target is
MMCS >= 0.95 for both architectures at d_sae >= n_features.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass

import torch

from interplab.common import get_device
from interplab.data.synthetic import ToyFeatureConfig, ToyFeatureSource
from interplab.evals import evaluate_sae, per_feature_recovery
from interplab.evals.ground_truth import cosine_matrix
from interplab.saes import make_sae, sae_config
from interplab.training import TrainConfig, fit


@dataclass
class Run:
    """One SAE to train."""

    arch: str
    """Architecture name."""
    d_sae: int
    """Dictionary size."""
    lr: float
    """Peak learning rate."""
    k: int = 0
    """TopK: latents kept per sample."""
    l1_coeff: float = 0.0
    """ReLU: L1 coefficient."""


def runs_for(n_features: int, mean_active: float, ratios: list[int], l1_coeff: float, lr: float) -> list[Run]:
    k = int(round(mean_active)) + 1  # a little above the mean number of active features
    topk = [Run("topk", r * n_features, lr, k=k) for r in ratios]
    relu = [Run("relu", r * n_features, lr, l1_coeff=l1_coeff) for r in ratios]
    return topk + relu


def bench_one(run: Run, toy: ToyFeatureConfig, steps: int, device: torch.device,
              init_encoder_scale: float | None = None) -> dict[str, float | str]:
    source = ToyFeatureSource(toy)
    knobs = {"k": run.k or 32} if run.arch == "topk" else {"l1_coeff": run.l1_coeff}
    if init_encoder_scale is not None:
        knobs["init_encoder_scale"] = init_encoder_scale
    sae = make_sae(sae_config(run.arch, d_in=toy.d, d_sae=run.d_sae, seed=toy.seed, **knobs))
    cfg = TrainConfig(total_steps=steps, batch_size=toy.batch_size, lr=run.lr, lr_warmup_steps=steps // 50,
                      dead_after_tokens=100 * toy.batch_size,
                      sparsity_warmup_steps=steps // 20 if run.arch == "relu" else 0, device=str(device),
                      log_every=max(1, steps // 10))
    t0 = time.perf_counter()
    fit(sae, source, cfg)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    held_out = (source.batch(10**9 + i).to(device) for i in range(16))
    ev = evaluate_sae(sae, held_out)
    rec = per_feature_recovery(source.features_FD, sae.W_dec.detach().cpu())
    # true features that are some latent's best match: fewer than d_sae when latents share one
    distinct = cosine_matrix(source.features_FD, sae.W_dec.detach().cpu()).argmax(0).unique().numel()
    return {"arch": run.arch, "d_sae": run.d_sae, "mmcs": rec.mmcs, "recovered@0.9": rec.frac_recovered,
            "fvu": ev.reconstruction.fvu, "l0": ev.sparsity.l0, "dead": ev.sparsity.dead_fraction,
            "distinct": distinct, "seconds": seconds}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-features", type=int, default=512)
    p.add_argument("--d", type=int, default=256)
    p.add_argument("--mean-active", type=float, default=5.0)
    p.add_argument("--correlation", type=float, default=0.0)
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument("--device", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ratios", default="1,2", help="dictionary sizes as multiples of n_features")
    p.add_argument("--l1-coeff", type=float, default=0.1, help="ReLU L1 coefficient")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--only", default=None, help="run only this architecture (topk or relu)")
    p.add_argument("--init-encoder-scale", type=float, default=None,
                   help="SAEConfig.init_encoder_scale (default: each architecture's own)")
    p.add_argument("--json", default=None, help="also write the rows to this JSON file")
    a = p.parse_args()
    device = get_device(a.device)
    toy = ToyFeatureConfig(n_features=a.n_features, d=a.d, mean_active=a.mean_active, correlation=a.correlation,
                           batch_size=a.batch_size, seed=a.seed)
    print(f"ground truth: {a.n_features} features in {a.d} dims, mean active {a.mean_active}, "
          f"correlation {a.correlation}, {a.steps} steps x {a.batch_size} on {device}")
    print(f"{'arch':<6}{'d_sae':>7}{'MMCS':>8}{'rec@0.9':>9}{'FVU':>8}{'L0':>7}{'dead':>7}{'distinct':>9}{'time s':>9}")
    rows = []
    ratios = [int(r) for r in a.ratios.split(",")]
    for run in runs_for(a.n_features, a.mean_active, ratios, a.l1_coeff, a.lr):
        if a.only and run.arch != a.only:
            continue
        r = bench_one(run, toy, a.steps, device, a.init_encoder_scale)
        rows.append(r)
        print(f"{r['arch']:<6}{r['d_sae']:>7}{r['mmcs']:>8.4f}{r['recovered@0.9']:>9.3f}{r['fvu']:>8.4f}"
              f"{r['l0']:>7.2f}{r['dead']:>7.3f}{r['distinct']:>9}{r['seconds']:>9.1f}", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
