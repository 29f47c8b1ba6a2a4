"""Feature absorption on a synthetic hierarchy: Matryoshka vs BatchTopK, and the frequency-weighted
penalty vs plain L1 and TopK, at matched L0 (issue 16, items 2 and 4).

Data: `HierarchyConfig` below (16 parents × 4 children + 16 independent features, orthonormal in 128
dimensions; a child never fires without its parent; true L0 ≈ 3.8). Every SAE has 96 latents (the true
count) and is trained by `interplab.training.fit`; absorption is `evals.hierarchy_absorption` on held-out
batches (ground truth: 0 for the true dictionary, 1 for a fully absorbing one).

    python bench/absorption.py                          # 3 seeds, all methods (~15 min on one core)
    python bench/absorption.py --quick                  # 1 seed, 300 steps: a smoke run
    python bench/absorption.py --json out.json --plot bench/results/absorption.png

Methods: TopK, BatchTopK and Matryoshka BatchTopK at k = 4; ReLU with the plain decoder-norm L1 and
ReLU with the frequency-weighted L1 (`freq_weighted_sparsity`), each at a few L1 coefficients around
L0 = 4. "Matched" rows take, per seed, the coefficient whose L0 is nearest the k-sparse runs' L0.
Prints every run, then mean ± std over seeds per method; the plot shows absorption and FVU against L0.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from interplab.data.synthetic import HierarchyConfig, HierarchySource
from interplab.evals import hierarchy_absorption, sparsity_stats
from interplab.saes import make_sae, sae_config
from interplab.training import TrainConfig, fit

HELD_OUT = 10**6  # batch indices training never reaches
DENSE = 0.2  # parents fire on ~10% of samples, so SAEBench's 0.1 would call the true parent latents dense


@dataclass
class Method:
    """One SAE recipe; `coeffs` > 1 entries are swept and matched on L0."""

    name: str
    arch: str
    fields: dict[str, Any] = field(default_factory=dict)
    coeffs: list[float] = field(default_factory=lambda: [0.0])


def methods(k: int, l1_coeffs: list[float]) -> list[Method]:
    freq = {"freq_weighted_sparsity": True}
    return [
        Method("topk", "topk", {"k": k}),
        Method("batchtopk", "batchtopk", {"k": k}),
        Method("matryoshka", "matryoshka", {"k": k}),
        Method("relu-l1", "relu", {}, l1_coeffs),
        Method("relu-l1-freq", "relu", freq, l1_coeffs),
    ]


@torch.no_grad()
def _scores(sae, source: HierarchySource, n_eval: int) -> dict[str, float]:
    batches = [source.batch(HELD_OUT + 100 + i) for i in range(n_eval)]
    err = sum(float((sae(x).x_hat - x).pow(2).sum()) for x in batches)
    total = sum(float((x - x.mean(0)).pow(2).sum()) for x in batches)
    stats = sparsity_stats((sae.encode(x) for x in batches), dense_threshold=DENSE)
    absorption = hierarchy_absorption(sae, source, range(HELD_OUT, HELD_OUT + n_eval))
    return {"absorption": absorption.absorption, "miss_rate": absorption.miss_rate, "fvu": err / total,
            "l0": stats.l0, "dead": stats.dead_fraction, "dense": stats.dense_fraction,
            "parent_cos": float(absorption.parent_cos_P.mean())}


def run_one(m: Method, coeff: float, seed: int, hc: HierarchyConfig, d_sae: int, steps: int, n_eval: int) -> dict:
    source = HierarchySource(hc)
    knobs = dict(m.fields)
    if m.arch == "relu":
        knobs["l1_coeff"] = coeff
    sae = make_sae(sae_config(m.arch, d_in=hc.d, d_sae=d_sae, seed=seed, **knobs))
    t0 = time.perf_counter()
    fit(sae, iter(source), TrainConfig(total_steps=steps, lr=3e-3, log_every=100, b_dec_init="mean", seed=seed,
                                       threads=1, freq_window_tokens=200_000))
    return {"method": m.name, "coeff": coeff, "seed": seed, **_scores(sae, source, n_eval),
            "seconds": time.perf_counter() - t0}


def matched(rows: list[dict], target_l0: float) -> list[dict]:
    """Per (method, seed), the row whose L0 is nearest `target_l0`."""
    best: dict[tuple[str, int], dict] = {}
    for r in rows:
        key = (r["method"], r["seed"])
        if key not in best or abs(r["l0"] - target_l0) < abs(best[key]["l0"] - target_l0):
            best[key] = r
    return list(best.values())


def summary(rows: list[dict]) -> list[dict]:
    out = []
    for name in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == name]
        line: dict[str, Any] = {"method": name, "n": len(mine)}
        for key in ("absorption", "miss_rate", "fvu", "l0", "dead", "dense"):
            vals = [r[key] for r in mine]
            line[key] = (statistics.mean(vals), statistics.stdev(vals) if len(vals) > 1 else 0.0)
        out.append(line)
    return out


def print_tables(rows: list[dict], summ: list[dict]) -> None:
    print("| method | coeff | seed | absorption | miss | FVU | L0 | dead | dense | s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['method']} | {r['coeff']:g} | {r['seed']} | {r['absorption']:.3f} | {r['miss_rate']:.3f} | "
              f"{r['fvu']:.4f} | {r['l0']:.2f} | {r['dead']:.3f} | {r['dense']:.3f} | {r['seconds']:.0f} |")
    print("\nMatched L0, mean ± std over seeds:\n")
    print("| method | seeds | absorption | miss | FVU | L0 | dead | dense |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for s in summ:
        cells = " | ".join(f"{s[k][0]:.3f} ± {s[k][1]:.3f}" for k in ("absorption", "miss_rate", "fvu", "l0", "dead",
                                                                       "dense"))
        print(f"| {s['method']} | {s['n']} | {cells} |")
    ref = {s["method"]: s["absorption"][0] for s in summ}
    if ref.get("batchtopk"):
        print(f"\nMatryoshka / BatchTopK absorption: {ref['matryoshka'] / ref['batchtopk']:.3f}")
    if ref.get("relu-l1"):
        print(f"frequency-weighted / plain L1 absorption: {ref['relu-l1-freq'] / ref['relu-l1']:.3f}")


def plot(rows: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for name in dict.fromkeys(r["method"] for r in rows):
        mine = sorted((r for r in rows if r["method"] == name), key=lambda r: r["l0"])
        for ax, key in zip(axes, ("absorption", "fvu"), strict=True):
            ax.scatter([r["l0"] for r in mine], [r[key] for r in mine], label=name, s=22)
    axes[0].set(xlabel="L0", ylabel="absorption (ground truth)", title="Absorption vs L0 (each dot: a seed)")
    axes[1].set(xlabel="L0", ylabel="FVU", title="FVU vs L0", yscale="log")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--first-seed", type=int, default=0, help="seeds run are first-seed .. first-seed + seeds - 1")
    ap.add_argument("--rows", nargs="*", default=[], help="JSON-lines files of earlier runs: print their tables only")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--l1-coeffs", default="0.06,0.1,0.15", help="ReLU L1 coefficients swept (comma-separated)")
    ap.add_argument("--eval-batches", type=int, default=4)
    ap.add_argument("--quick", action="store_true", help="1 seed, 300 steps")
    ap.add_argument("--json", help="write every row here")
    ap.add_argument("--plot", help="write the absorption / FVU vs L0 plot here (PNG)")
    args = ap.parse_args()
    seeds, steps = (1, 300) if args.quick else (args.seeds, args.steps)
    torch.set_num_threads(1)
    rows = [json.loads(line) for path in args.rows for line in open(path) if line.startswith("{")]
    for seed in range(args.first_seed, args.first_seed + seeds) if not rows else []:
        hc = HierarchyConfig(n_parents=16, children_per_parent=4, n_independent=16, parent_prob=0.1, d=128,
                             magnitude_min=0.5, batch_size=1024, seed=seed)
        for m in methods(args.k, [float(c) for c in args.l1_coeffs.split(",")]):
            for coeff in m.coeffs:
                rows.append(run_one(m, coeff, seed, hc, hc.n_features, steps, args.eval_batches))
                print(json.dumps(rows[-1]), flush=True)
    target = statistics.mean(r["l0"] for r in rows if r["method"] in ("topk", "batchtopk", "matryoshka"))
    summ = summary(matched(rows, target))
    print_tables(rows, summ)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "matched_l0": target}, f, indent=1)
    if args.plot:
        plot(rows, args.plot)


if __name__ == "__main__":
    main()
