"""Several SAEs or transcoders trained as one module from one stream (e.g. one per layer).

`fit` trains a group like a single SAE: the stream yields stacked batches, x [B, M, d_in] (and
targets [B, M, d_out] for transcoders), member m reads slice [:, m]. Per step:

1. Each member runs its own `training_forward` on its slice, with its slice of the trainer's
   dead-latent mask and firing frequencies (the trainer tracks the members' latents concatenated).
2. Losses add up (each member's gradient is its own loss's: members share no parameter); fire
   counts concatenate; FVU is Σ squared error / Σ target variance over members, the same ratio the
   trainer logs for one SAE; L0 is the members' mean.

Members are saved one folder each (`save_group`), so every member loads alone with `load_sae`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from interplab.common import InterplabError
from interplab.files import read_json_object, write_json_atomic
from interplab.saes.base import SAE, SAEConfig, TrainOutput, TrainState
from interplab.saes.registry import make_sae

GROUP_INDEX = "group.json"


@dataclass
class SAEGroupConfig:
    """The members' configs and names (JSON-safe through `to_dict`)."""

    names: list[str]
    """One name per member, also its folder name on disk (e.g. "blocks.3.mlp_in")."""
    members: list[SAEConfig] = field(default_factory=list)
    """Each member's own config."""

    architecture = "group"

    @property
    def d_sae(self) -> int:
        """Latents of all members together (the trainer's dead-latent tracker spans them)."""
        return sum(m.d_sae for m in self.members)

    def to_dict(self) -> dict[str, Any]:
        return {"architecture": "group", "names": list(self.names), "members": [m.to_dict() for m in self.members]}

    @staticmethod
    def from_dict(data: Any, source: str = "SAE group config") -> SAEGroupConfig:
        if not isinstance(data, dict) or data.get("architecture") != "group":
            raise InterplabError(f"{source} is not an SAE group config")
        members = [SAEConfig.from_dict(m, source=f"{source} member {i}") for i, m in enumerate(data["members"])]
        return SAEGroupConfig(names=[str(n) for n in data["names"]], members=members)


class SAEGroup(nn.Module):
    """Members trained side by side; see the module docstring."""

    def __init__(self, cfg: SAEGroupConfig):
        super().__init__()
        if len(cfg.names) != len(cfg.members) or not cfg.members:
            raise InterplabError("an SAE group needs one name per member and at least one member")
        self.cfg = cfg
        self.members = nn.ModuleList([make_sae(c) for c in cfg.members])

    @classmethod
    def of(cls, names: list[str], configs: list[SAEConfig]) -> SAEGroup:
        return cls(SAEGroupConfig(names=list(names), members=list(configs)))

    def subgroup(self, index: slice, names: list[str]) -> SAEGroup:
        """Members `index` (the same modules, not copies) as a group of their own, named `names`."""
        members = list(self.members)[index]
        if len(members) != len(names):
            raise InterplabError(f"a subgroup of {len(members)} members needs as many names, got {len(names)}")
        group = SAEGroup.__new__(SAEGroup)
        nn.Module.__init__(group)
        group.cfg = SAEGroupConfig(names=list(names), members=[m.cfg for m in members])  # type: ignore[misc]
        group.members = nn.ModuleList(members)
        return group

    def saes(self) -> list[SAE]:
        """The members, typed."""
        return list(self.members)  # type: ignore[arg-type]

    def member(self, name: str) -> SAE:
        return self.members[self.cfg.names.index(name)]  # type: ignore[return-value]

    def items(self) -> list[tuple[str, SAE]]:
        return list(zip(self.cfg.names, self.members, strict=True))  # type: ignore[arg-type]

    @property
    def normalize_decoder(self) -> bool:
        return any(m.normalize_decoder for m in self.saes())

    def remove_gradient_parallel_to_decoder_(self) -> None:
        for m in self.saes():
            if m.normalize_decoder:
                m.remove_gradient_parallel_to_decoder_()

    def set_decoder_norm_to_unit_(self) -> None:
        for m in self.saes():
            if m.normalize_decoder:
                m.set_decoder_norm_to_unit_()

    def _slices(self) -> list[slice]:
        out, start = [], 0
        for m in self.saes():
            out.append(slice(start, start + m.cfg.d_sae))
            start += m.cfg.d_sae
        return out

    def training_forward(self, x_BMD: Tensor, state: TrainState | None = None,
                         target_BMD: Tensor | None = None) -> TrainOutput:
        state = state or TrainState()
        if x_BMD.ndim != 3 or x_BMD.shape[1] != len(self.members):
            raise InterplabError(f"an SAE group of {len(self.members)} members needs batches [B, "
                                 f"{len(self.members)}, d]; got {tuple(x_BMD.shape)}")
        outs, variances = [], []
        for m, (member, sl) in enumerate(zip(self.saes(), self._slices(), strict=True)):
            sub = TrainState(sparsity_scale=state.sparsity_scale,
                             dead_mask_F=None if state.dead_mask_F is None else state.dead_mask_F[sl],
                             freq_F=None if state.freq_F is None else state.freq_F[sl])
            if target_BMD is None:
                out = member.training_forward(x_BMD[:, m], sub)
            else:
                out = member.training_forward(x_BMD[:, m], sub, target_BMD[:, m])  # type: ignore[call-arg,operator]
            outs.append(out)
            variances.append(out.mse_loss.detach() / out.fvu.clamp_min(1e-30))
        mse = torch.stack([o.mse_loss for o in outs]).sum()
        with torch.no_grad():
            fvu = mse.detach() / torch.stack(variances).sum().clamp_min(1e-30)
        return TrainOutput(
            loss=torch.stack([o.loss for o in outs]).sum(), mse_loss=mse,
            sparsity_loss=torch.stack([o.sparsity_loss for o in outs]).sum(),
            aux_loss=torch.stack([o.aux_loss for o in outs]).sum(),
            x_hat_BD=torch.stack([o.x_hat_BD for o in outs], 1), latents_BF=None, top_values_BK=None,
            top_indices_BK=None, fire_counts_F=torch.cat([o.fire_counts_F for o in outs]),
            l0=torch.stack([o.l0 for o in outs]).mean(), fvu=fvu)


def save_group(group: SAEGroup, folder: str | Path, metadata: dict[str, dict[str, Any]] | None = None,
               overwrite: bool = False) -> Path:
    """Each member into `folder/<name>/` (its own SAE folder), then `folder/group.json` (last)."""
    from interplab.saes.io import save_sae

    folder = Path(folder)
    for name, member in group.items():
        save_sae(member, folder / name, metadata=(metadata or {}).get(name), overwrite=overwrite)
    write_json_atomic(folder / GROUP_INDEX, {"names": group.cfg.names})
    return folder


def load_group(folder: str | Path, device: Any = None) -> dict[str, SAE]:
    """The members of a folder written by `save_group`, by name, in order."""
    from interplab.saes.io import load_sae

    folder = Path(folder)
    index = read_json_object(folder / GROUP_INDEX, what="an SAE group index")
    names = index.get("names")
    if not isinstance(names, list) or not names:
        raise InterplabError(f"{folder / GROUP_INDEX} lists no members")
    return {str(n): load_sae(folder / str(n), device=device) for n in names}
