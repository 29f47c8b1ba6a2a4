"""A small training run used by the kill/resume and torchrun tests (run as a script or imported).

    python _run_training.py OUT --steps 40 --ckpt-every 10 [--resume] [--sleep 0.05] [--arch topk]

Writes OUT/final.safetensors (the SAE's state dict) from rank 0 when training finishes.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

from interplab.data.synthetic import ToyFeatureConfig, ToyFeatureSource
from interplab.saes import SAE, make_sae, sae_config
from interplab.training import TrainConfig, distributed, fit

D_IN, D_SAE, BATCH = 16, 48, 64


def train(out: Path, steps: int, ckpt_every: int = 0, resume: bool = False, sleep: float = 0.0,
          arch: str = "topk") -> SAE:
    source = ToyFeatureSource(ToyFeatureConfig(n_features=32, d=D_IN, mean_active=3, batch_size=BATCH, seed=3))
    # dead_after_tokens small enough that AuxK switches on during these few steps
    knobs = {"topk": {"k": 4}, "batchtopk": {"k": 4}, "relu": {"l1_coeff": 0.3}}.get(arch, {})
    sae = make_sae(sae_config(arch, d_in=D_IN, d_sae=D_SAE, **knobs))
    cfg = TrainConfig(total_steps=steps, batch_size=BATCH, lr=3e-3, lr_warmup_steps=5, lr_decay="cosine",
                      dead_after_tokens=5 * BATCH,
                      sparsity_warmup_steps=10, checkpoint_every=ckpt_every,
                      checkpoint_dir=str(out / "ckpt") if ckpt_every else None, resume=resume, log_every=5)

    def slow_down(step: int, metrics: dict[str, float]) -> None:
        time.sleep(sleep)  # gives the test time to kill the run between checkpoints

    fit(sae, source, cfg, on_step=slow_down if sleep else None)
    if distributed.current().is_main:
        out.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in sae.state_dict().items()}, str(out / "final.safetensors"))
    return sae


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("out", type=Path)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--ckpt-every", type=int, default=0)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--sleep", type=float, default=0.0)
    p.add_argument("--arch", default="topk")
    a = p.parse_args()
    torch.set_num_threads(1)
    distributed.init_from_env(backend="gloo")
    try:
        train(a.out, a.steps, a.ckpt_every, a.resume, a.sleep, a.arch)
    finally:
        distributed.shutdown()


if __name__ == "__main__":
    main()
