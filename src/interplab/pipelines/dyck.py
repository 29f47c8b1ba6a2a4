"""`run_dyck_lab`: the whole Dyck lab into one report folder (a notebook calls the same function).

1. Draw training and held-out bracket strings (data/synthetic/dyck.py; held-out strings never occur in
   training) and train the transformer from scratch, timing wall-clock and CPU seconds.
2. Score it: balanced accuracy and depth accuracy on held-out strings.
3. Depth probes on every residual stream; head ablations (mean and resample), the head whose mean ablation
   costs most is "the identified head"; how close that head is to a uniform-attention counter.
4. A TopK SAE on the final (normed) residual stream, and the latent best matched to each depth 0..4.
5. Report: tables and figures (interplab.reports), the model (safetensors + JSON) under model/, index.json last.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from interplab.common import free_cpu_threads, get_logger
from interplab.data.synthetic.dyck import DyckDataConfig, dyck_split
from interplab.dyck import (
    ABLATIONS,
    DyckModelConfig,
    DyckSAEConfig,
    DyckTrainConfig,
    DyckTransformer,
    accuracy,
    counting_evidence,
    depth_accuracy,
    depth_latents,
    depth_probe_accuracies,
    head_ablation_table,
    save_dyck_model,
    train_depth_sae,
    train_dyck_model,
)
from interplab.reports import ReportWriter

log = get_logger(__name__)

StepCallback = Callable[[int, int, dict[str, float]], None]


@dataclass
class DyckLabConfig:
    """Sizes of the Dyck lab's data."""

    n_train: int = 50_000
    """Training strings."""
    n_test: int = 4_000
    """Held-out strings (fewer when duplicates of training strings are dropped)."""
    seed: int = 0
    """Seed of the data."""


def _load() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def _ablation_figures(writer: ReportWriter, tables: dict[str, list[dict[str, Any]]], cfg: DyckModelConfig) -> None:
    for how, rows in tables.items():
        cost = torch.tensor([[r["cost_points"] for r in rows if r["layer"] == layer] for layer in range(cfg.n_layers)])
        writer.heatmap(f"ablation_{how}", cost, [f"layer {i}" for i in range(cfg.n_layers)],
                       [f"head {h}" for h in range(cfg.n_heads)], f"Accuracy lost (points), {how} ablation of one head",
                       "layer", "head",
                       caption="Accuracy points lost when one attention head is switched off: a single bright cell "
                               "means one head does the work; dark cells mean the model does not need that head.")


def _pattern_figure(writer: ReportWriter, model: DyckTransformer, layer: int, head: int) -> None:
    from interplab.data.synthetic.dyck import encode

    example = encode([("(()(()))()", "balanced")], DyckDataConfig(max_pairs=(model.cfg.seq_len - 2) // 2))
    n = int(example.mask_BT.sum())
    pattern = model.attention_patterns(example.tokens_BT, example.mask_BT)[layer][0, head, :n, :n]
    labels = [f"{i}:{t}" for i, t in enumerate(["<s>", *"(()(()))()", "</s>"])]  # unique: table columns
    writer.heatmap("identified_head_pattern", pattern.detach(), labels, labels,
                   f"Attention of L{layer}H{head} on (()(()))() (rows: query, columns: key)", "query", "key", 0, 1,
                   caption="Where the identified head looks: each row is a bracket reading the string, bright "
                           "columns are the earlier brackets it attends to.")


def run_dyck_lab(out: str | Path, lab: DyckLabConfig | None = None, data: DyckDataConfig | None = None,
                 model_cfg: DyckModelConfig | None = None, train: DyckTrainConfig | None = None,
                 sae: DyckSAEConfig | None = None, overwrite: bool = False,
                 on_step: StepCallback | None = None) -> Path:
    """Train and dissect the Dyck transformer; return the report's index.json."""
    lab, data, train, sae = lab or DyckLabConfig(), data or DyckDataConfig(), train or DyckTrainConfig(), sae or DyckSAEConfig()
    model_cfg = model_cfg or DyckModelConfig(seq_len=data.seq_len, max_depth=data.max_depth)
    writer = ReportWriter(out, "Dyck lab: a bracket-counting circuit", "dyck", overwrite=overwrite)
    writer.write_config({"lab": asdict(lab), "data": asdict(data), "model": asdict(model_cfg),
                         "train": asdict(train), "sae": asdict(sae)})
    train_set, test_set = dyck_split(lab.n_train, lab.n_test, data, lab.seed)
    threads = free_cpu_threads(train.threads)  # what train_dyck_model will use
    wall, cpu, load_before = time.perf_counter(), time.process_time(), _load()
    model = train_dyck_model(train_set, model_cfg, train, on_step)
    timing = {"train_wall_s": time.perf_counter() - wall, "train_cpu_s": time.process_time() - cpu,
              "load_avg_before": load_before, "load_avg_after": _load(), "threads": threads}
    writer.log_metric(**timing)
    save_dyck_model(model, writer.folder / "model")
    acc, depth_acc = accuracy(model, test_set), depth_accuracy(model, test_set)
    probes = depth_probe_accuracies(model, train_set, test_set)
    streams = ["embeddings", *(f"after block {i}" for i in range(model_cfg.n_layers - 1)), "after the last block",
               "final LayerNorm"]
    writer.table("depth_probes", [{"stream": s, "accuracy": a} for s, a in zip(streams, probes, strict=True)],
                 "Held-out accuracy of a depth probe per residual stream")
    writer.line_plot("depth_probes", list(range(len(probes))), {"depth probe": probes},
                     "Depth probe accuracy (0 = embeddings, i = after block i-1, last = final LayerNorm)",
                     "residual stream", "held-out accuracy",
                     caption="How well a simple probe reads the nesting depth from each point of the model, on "
                             "held-out strings: the layer where the line jumps is where depth gets computed.")
    tables = {how: head_ablation_table(model, test_set, how, lab.seed) for how in ABLATIONS}
    writer.table("head_ablations", [row for rows in tables.values() for row in rows],
                 "Held-out accuracy with one head ablated, and the points lost")
    _ablation_figures(writer, tables, model_cfg)
    top = max(tables["mean"], key=lambda r: r["cost_points"])
    layer, head = int(top["layer"]), int(top["index"])
    evidence = counting_evidence(model, test_set, layer, head)
    _pattern_figure(writer, model, layer, head)
    depth_sae = train_depth_sae(model, train_set, sae)
    latents = depth_latents(model, depth_sae, test_set)
    writer.table("depth_latents", latents, "SAE latent best correlated with each depth (held-out brackets)")
    summary = _summary(acc, depth_acc, probes, tables, top, evidence, latents, timing, len(test_set))
    for key, value in summary.items():
        log.info("%s: %s", key, value)
    return writer.finish(summary)


def _summary(acc: float, depth_acc: float, probes: list[float], tables: dict[str, list[dict[str, Any]]],
             top: dict[str, Any], evidence: dict[str, float], latents: list[dict[str, Any]],
             timing: dict[str, float], n_test: int) -> dict[str, Any]:
    others = {how: max((r["cost_points"] for r in rows if r["head"] != top["head"]), default=0.0)
              for how, rows in tables.items()}
    identified = {how: next(r["cost_points"] for r in rows if r["head"] == top["head"]) for how, rows in tables.items()}
    return {
        "heldout_accuracy": acc, "heldout_strings": n_test, "depth_accuracy": depth_acc,
        "best_depth_probe": max(probes), "identified_head": top["head"],
        **{f"identified_head_cost_{how}": v for how, v in identified.items()},
        **{f"largest_other_head_cost_{how}": v for how, v in others.items()},
        **{f"identified_head_{k}": v for k, v in evidence.items()},
        "min_depth_latent_correlation_0_4": min(r["correlation"] for r in latents),
        **{k: round(v, 2) if isinstance(v, float) else v for k, v in timing.items()},
    }
