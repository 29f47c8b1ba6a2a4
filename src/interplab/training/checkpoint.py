"""Training checkpoints without pickle: tensors in safetensors, everything else in JSON.

A checkpoint is a folder `step_00001234/` holding `tensors.safetensors` (SAE parameters and buffers,
optimizer moments, trainer counters, RNG states) and `state.json` (step, tokens, optimizer
hyper-parameters, data-stream position, python/numpy RNG states, and the sha256 of the tensors file).
It is written into a temporary folder and renamed into place, so a run killed mid-write leaves either
the old checkpoint set or the new one, never a half-written folder that looks whole. Loading checks
the sha256 and the keys of state.json; `latest_valid` skips a damaged checkpoint (with a warning) and
resumes from the one before it, since flipped bytes would otherwise be trained on silently.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import Tensor

from interplab.common import InterplabError, get_logger
from interplab.files import read_json_object, sha256_bytes

log = get_logger(__name__)

TENSORS_FILE = "tensors.safetensors"
STATE_FILE = "state.json"
SHA256_KEY = "tensors_sha256"
_PREFIX = "step_"


# ---- optimizer state ---------------------------------------------------------------------------


def optimizer_state_flat(opt: torch.optim.Optimizer) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """(tensors named 'opt.{param}.{key}', JSON-safe rest) of `opt.state_dict()`."""
    sd = opt.state_dict()
    tensors: dict[str, Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, pstate in sd["state"].items():
        for key, value in pstate.items():
            if isinstance(value, Tensor):
                tensors[f"opt.{pid}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(pid), {})[key] = value
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in sd["param_groups"]]
    return tensors, {"param_groups": groups, "scalars": scalars}


def load_optimizer_state_flat(opt: torch.optim.Optimizer, tensors: dict[str, Tensor], meta: dict[str, Any]) -> None:
    """Inverse of `optimizer_state_flat` (moments are moved to the parameters' device by torch)."""
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if not name.startswith("opt."):
            continue
        _, pid, key = name.split(".", 2)
        state.setdefault(int(pid), {})[key] = value
    for pid, extra in meta.get("scalars", {}).items():
        state.setdefault(int(pid), {}).update(extra)
    groups = [{k: (tuple(v) if k == "betas" else v) for k, v in g.items()} for g in meta["param_groups"]]
    opt.load_state_dict({"state": state, "param_groups": groups})


# ---- RNG state ---------------------------------------------------------------------------------


def rng_state() -> tuple[dict[str, Tensor], dict[str, Any]]:
    """(torch CPU/CUDA generator states as tensors, python and numpy states as JSON)."""
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    py_version, py_state, py_gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = cast(tuple, np.random.get_state(legacy=True))
    meta = {
        "python": [py_version, list(py_state), py_gauss],
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)],
    }
    return tensors, meta


def set_rng_state(tensors: dict[str, Tensor], meta: dict[str, Any]) -> None:
    """Restore what `rng_state` saved."""
    torch.set_rng_state(tensors["rng.torch"])
    cuda = [tensors[k] for k in sorted(k for k in tensors if k.startswith("rng.cuda."))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    version, state, gauss = meta["python"]
    random.setstate((version, tuple(state), gauss))
    kind, keys, pos, has_gauss, cached = meta["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))


# ---- folders -----------------------------------------------------------------------------------


class Checkpointer:
    """Saves every `every` steps into `folder/step_XXXXXXXX/`, keeping the newest `keep`."""

    def __init__(self, folder: str | Path, every: int, keep: int = 2):
        if every < 1 or keep < 1:
            raise InterplabError(f"checkpoint every/keep must be >= 1, got every={every}, keep={keep}")
        self.folder = Path(folder)
        self.every = every
        self.keep = keep

    def should_save(self, step: int) -> bool:
        """True after step number `step` (1-based count of finished steps) when a save is due."""
        return step > 0 and step % self.every == 0

    def checkpoints(self) -> list[Path]:
        """Complete checkpoint folders, oldest first."""
        if not self.folder.is_dir():
            return []
        found = [p for p in self.folder.glob(f"{_PREFIX}*") if p.is_dir() and (p / STATE_FILE).is_file()]
        return sorted(found, key=lambda p: p.name)

    def latest(self) -> Path | None:
        """The newest complete checkpoint, or None."""
        found = self.checkpoints()
        return found[-1] if found else None

    @staticmethod
    def step_of(path: Path) -> int:
        """The step a checkpoint folder was saved at (from its name)."""
        return int(path.name.removeprefix(_PREFIX))

    def save(self, step: int, tensors: dict[str, Tensor], meta: dict[str, Any]) -> Path:
        """Write atomically (temporary folder + rename), then prune old checkpoints."""
        self.folder.mkdir(parents=True, exist_ok=True)
        final = self.folder / f"{_PREFIX}{step:08d}"
        tmp = self.folder / f".tmp-{_PREFIX}{step:08d}"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        data = st_save({k: v.detach().cpu().contiguous() for k, v in tensors.items()})
        (tmp / TENSORS_FILE).write_bytes(data)
        (tmp / STATE_FILE).write_text(json.dumps({**meta, SHA256_KEY: sha256_bytes(data)}))
        if final.exists():  # same step saved again (e.g. after a resume): replace it
            shutil.rmtree(final)
        tmp.rename(final)
        for old in self.checkpoints()[: -self.keep]:
            shutil.rmtree(old, ignore_errors=True)
        return final

    @staticmethod
    def load(path: str | Path, required: tuple[str, ...] = ()) -> tuple[dict[str, Tensor], dict[str, Any]]:
        """(tensors, meta) of a checkpoint folder, after checking that state.json has the `required` keys
        and that the tensors file matches its sha256."""
        path = Path(path)
        meta = read_json_object(path / STATE_FILE, what="training checkpoint state")
        missing = [k for k in required if k not in meta]
        if missing:
            raise InterplabError(f"checkpoint {path} is damaged (state.json lacks {missing}); delete it to resume "
                                 "from an older one")
        try:
            data = (path / TENSORS_FILE).read_bytes()
            if meta.get(SHA256_KEY) not in (None, sha256_bytes(data)):
                raise InterplabError(f"checkpoint {path} is damaged ({TENSORS_FILE} does not match its sha256); "
                                     "delete it to resume from an older one")
            tensors = st_load(data)
        except (OSError, SafetensorError) as e:
            raise InterplabError(f"checkpoint {path} is unreadable ({e}); delete it to resume from an older one") from None
        return tensors, meta

    def latest_valid(self, required: tuple[str, ...] = ()) -> tuple[Path, dict[str, Tensor], dict[str, Any]] | None:
        """The newest checkpoint that loads and verifies (skipping damaged ones with a warning), or None."""
        for path in reversed(self.checkpoints()):
            try:
                tensors, meta = self.load(path, required)
            except InterplabError as e:
                log.warning("%s; trying the checkpoint before it", e)
                continue
            return path, tensors, meta
        return None
