"""Bench: does asking transcoders for the MLP's slopes (its Jacobian) make interventions predictable?

    PYTHONPATH=src python bench/transcoders_jacobian.py --out runs/tc-jac --steps 200 --jacobian-coef 1
    PYTHONPATH=src python bench/circuits_interventions.py --model smollm2-135m \
        --transcoders runs/tc-jac/reconstruction/transcoders --max-layer 27      # then .../jacobian/...

An attribution graph holds each MLP's error node fixed and passes an edit on through the transcoder's
slopes (skip path + active features' encoder·decoder), so its prediction of an intervention is as good
as the transcoder's Jacobian J_g is a stand-in for the MLP's J_f. A reconstruction loss fits outputs,
not slopes (bench/README.md: longer training did not close the gap). This trains two sets of TopK
skip-transcoders, one per layer, on the same streamed batches of the model (the stream of
`interplab train-transcoders`, shared, so the comparison costs one pass of forward passes):

- `reconstruction`: the trainer's loss (squared error of the MLP output, AuxK), as train-transcoders;
- `jacobian`: the same plus `coef` × the Jacobian's FVU, ‖J_g v − J_f v‖² / ‖J_f v‖² over the batch,
  in units of the output's variance (coef 1 weighs a unit of Jacobian FVU like a unit of output FVU).
  v is the difference between a token's MLP input and another token's of the batch (the batch is
  shuffled), so the slopes are asked for along directions the data moves in; J_f v is one forward-mode
  pass through the real MLP (`torch.func.jvp`); J_g v uses the k active features, with the active set
  held (TopK's Jacobian almost everywhere).

Both sets are folded, saved and evaluated as train-transcoders does (`<out>/<arm>/transcoders`,
`eval.json`), and the table prints, per arm, output FVU and Jacobian FVU (mean over the last 20 steps'
batches, each measured before the step that trains on it), CE / KL recovered on held-out texts.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from interplab.activations.stream import ForwardStream, StreamConfig
from interplab.data.text import load_texts
from interplab.models import load_model
from interplab.models.hookpoints import resolve_hook
from interplab.pipelines.transcoders import layer_configs, layer_names, save_and_evaluate
from interplab.saes import SAEGroup, SAEGroupConfig, TopKSkipTranscoderConfig
from interplab.saes.base import TrainOutput, TrainState
from interplab.saes.init import init_b_dec_geometric_median_
from interplab.training import TrainConfig, fit
from timing import cpu_seconds

ARMS = ("reconstruction", "jacobian")


def transcoder_jvp(member: Any, x_BD: Tensor, v_BD: Tensor) -> Tensor:
    """J_g v of a TopK (skip-)transcoder at x: the active features' encoder·decoder (active set held) plus
    the skip path. Differentiable in the transcoder's weights."""
    with torch.no_grad():
        values, idx_BK = (x_BD @ member.W_enc + member.b_enc).topk(member.cfg.k, dim=-1)
        on_BK = (values > 0).to(x_BD.dtype)
    slope_BK = torch.einsum("bd,bkd->bk", v_BD, member.W_enc.T[idx_BK]) * on_BK
    out_BO = torch.einsum("bk,bko->bo", slope_BK, member.W_dec[idx_BK])
    skip = getattr(member, "W_skip", None)
    return out_BO if skip is None else out_BO + v_BD @ skip.T


def data_directions(x_BD: Tensor) -> Tensor:
    """v: each row's difference to the next row's input (the batch is shuffled across sequences)."""
    return x_BD.roll(1, 0) - x_BD


class JacobianGroup(SAEGroup):
    """Members [0, M) train on the reconstruction loss, members [M, 2M) add the Jacobian term. Targets are
    [B, 2M, 2·d]: the MLP output and J_f v (both in the stream's scaled units)."""

    def __init__(self, cfg: Any, n_layers: int, coef: float):
        super().__init__(cfg)
        self.n_layers, self.coef = n_layers, coef
        self.history: list[dict[str, float]] = []

    def training_forward(self, x_BMD: Tensor, state: TrainState | None = None,
                         target_BMD: Tensor | None = None) -> TrainOutput:
        assert target_BMD is not None
        d = x_BMD.shape[-1]
        out = super().training_forward(x_BMD, state, target_BMD[..., :d])
        members, M = list(self.saes()), self.n_layers
        extra, stats = out.loss.new_zeros(()), {}
        for arm, offset in zip(ARMS, (0, M), strict=True):
            num = den = 0.0
            for m in range(offset, offset + M):
                x_BD, y_BD, jf_BO = x_BMD[:, m], target_BMD[:, m, :d], target_BMD[:, m, d:]
                jg_BO = transcoder_jvp(members[m], x_BD, data_directions(x_BD))
                err = (jg_BO - jf_BO).pow(2).sum(-1).mean()
                size = jf_BO.pow(2).sum(-1).mean().clamp_min(1e-12)
                var = (y_BD - y_BD.mean(0)).pow(2).sum(-1).mean().detach()
                if arm == "jacobian" and self.coef:
                    extra = extra + self.coef * var * err / size
                num, den = num + float(err.detach()), den + float(size)
            stats[f"{arm}_jac_fvu"] = num / den
        self.history.append(stats)
        return out._replace(loss=out.loss + extra)


class JacobianStream:
    """The forward stream's (x, y) batches, each layer's J_f v added to the target, tiled for two arms."""

    def __init__(self, stream: ForwardStream, mlps: list[torch.nn.Module], layers: list[int]):
        self.stream, self.mlps, self.layers = stream, mlps, layers

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        scales = self.stream.scales
        for x_BMD, y_BMD in self.stream:  # type: ignore[misc]
            jf = []
            for m, (L, mlp) in enumerate(zip(self.layers, self.mlps, strict=True)):
                s_in, s_out = scales[f"blocks.{L}.mlp_in"], scales[f"blocks.{L}.mlp_out"]
                x_BD = x_BMD[:, m]
                with torch.no_grad():
                    _, jv = torch.func.jvp(mlp, (x_BD / s_in,), (data_directions(x_BD) / s_in,))
                jf.append(jv * s_out)  # J' v' = s_out · J (v' / s_in) in the stream's units
            target = torch.cat([y_BMD, torch.stack(jf, 1)], -1)
            yield x_BMD.repeat(1, 2, 1), target.repeat(1, 2, 1)

    def state_dict(self) -> dict[str, Any]:
        return self.stream.state_dict()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--d-sae", type=int, default=1152)
    parser.add_argument("--k", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--context-size", type=int, default=64)
    parser.add_argument("--jacobian-coef", type=float, default=1.0)
    parser.add_argument("--eval-texts", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    start, cpu0 = time.perf_counter(), cpu_seconds()

    lm = load_model(args.model)
    texts = load_texts("wiki-en")
    layers = list(range(lm.n_layers))
    stream_cfg = StreamConfig(batch_size=args.batch_size, context_size=args.context_size, seed=0)
    base = TopKSkipTranscoderConfig(d_in=lm.d_model, d_sae=args.d_sae, k=args.k)
    configs = layer_configs(base, lm, layers, args.model, stream_cfg)
    names = layer_names(layers)
    group = JacobianGroup(SAEGroupConfig(names=[f"{a}/{n}" for a in ARMS for n in names], members=configs + configs),
                          len(layers), args.jacobian_coef)
    stream = ForwardStream(lm, texts[:-args.eval_texts], names, [f"blocks.{L}.mlp_out" for L in layers], stream_cfg)
    mlps = [resolve_hook(lm.model, f"blocks.{L}.mlp_in").module for L in layers]
    batches = JacobianStream(stream, mlps, layers)
    _, t0 = next(iter(batches))
    with torch.no_grad():
        for m, member in enumerate(group.saes()):
            init_b_dec_geometric_median_(member, t0[:4096, m, :lm.d_model])
    train_cfg = TrainConfig(total_steps=args.steps, lr=2e-3, b_dec_init="none", seed=0, batch_size=args.batch_size)

    def on_step(step: int, metrics: dict[str, float]) -> None:
        if metrics:
            h = group.history[-1]
            print(f"step {step}: fvu (both arms) {metrics['fvu']:.3f}, Jacobian FVU reconstruction "
                  f"{h['reconstruction_jac_fvu']:.3f}, jacobian {h['jacobian_jac_fvu']:.3f} "
                  f"[{time.perf_counter() - start:.0f} s]", flush=True)

    fit(group, batches, train_cfg, on_step=on_step)
    group.cpu()
    M = len(layers)
    rows = []
    for j, arm in enumerate(ARMS):
        sub = group.subgroup(slice(j * M, (j + 1) * M), names)
        ev = save_and_evaluate(sub, args.out / arm, lm, layers, stream, texts[-args.eval_texts:])
        last = group.history[-20:]
        ev["jacobian_fvu_last20"] = sum(h[f"{arm}_jac_fvu"] for h in last) / len(last)
        (args.out / arm / "eval.json").write_text(json.dumps(ev, indent=1))
        rows.append((arm, ev))
    print(f"\n{args.steps} steps × {args.batch_size} tokens, d_sae {args.d_sae}, k {args.k}, coef "
          f"{args.jacobian_coef}: {time.perf_counter() - start:.0f} s wall, {cpu_seconds() - cpu0:.0f} CPU s\n")
    print("| arm | output FVU (held out) | Jacobian FVU (last 20 batches) | CE recovered | KL recovered |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for arm, ev in rows:
        print(f"| {arm} | {ev['fvu_mean']:.3f} | {ev['jacobian_fvu_last20']:.3f} | {ev['ce_recovered']:.3f} | "
              f"{ev['kl_recovered']:.3f} |")


if __name__ == "__main__":
    main()
