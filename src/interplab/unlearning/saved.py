"""The unlearnt-model folder (`interplab unlearn --out`): what a method changed, relative to its organism.

    unlearning.json      method, config, seed, the organism folder and its config's sha256, the changed
                         tensor names, the network edits and the output filter (written last)
    weights.safetensors  only the tensors that differ from the organism's (RMU: 3 MLPs; SAE clamping
                         and the output filter: none)
    sae/                 the SAE of an SAE-latent clamp (SAELens layout, interplab.saes)

Loading re-reads the organism, applies the changed tensors and rebuilds the edits, and refuses an
organism whose config.json is not the one the model was made from.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from interplab.common import InterplabError
from interplab.files import read_json_object, sha256_file, write_json_atomic
from interplab.models import LoadedModel
from interplab.saes import load_sae, save_sae
from interplab.unlearning.methods.output_block import AnswerTokenBlock
from interplab.unlearning.methods.sae_clamp import LatentClamp
from interplab.unlearning.organism import KnowledgeOrganism
from interplab.unlearning.served import NetworkEdit, ServedModel

META = "unlearning.json"
WEIGHTS = "weights.safetensors"


def changed_tensors(model: torch.nn.Module, original: dict[str, Tensor]) -> dict[str, Tensor]:
    """The state-dict entries that differ from `original` (each storage once: tied weights share one)."""
    out, seen = {}, set()
    for name, t in model.state_dict().items():
        if t.data_ptr() in seen:
            continue
        seen.add(t.data_ptr())
        if not torch.equal(t, original[name]):
            out[name] = t.detach().cpu().contiguous()
    return out


def save_unlearnt(folder: str | Path, served: ServedModel, organism: KnowledgeOrganism, original: dict[str, Tensor],
                  method: str, cfg: Any, seed: int) -> Path:
    """Write the unlearnt-model folder; unlearning.json last, so a folder that has it is whole."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    changed = changed_tensors(served.model, original)
    save_file(changed, str(folder / WEIGHTS))
    edits = []
    for edit in served.edits:
        if isinstance(edit, LatentClamp):
            save_sae(edit.sae, folder / "sae", overwrite=True)
        edits.append(edit.describe())
    write_json_atomic(folder / META, {
        "method": method, "config": dataclasses.asdict(cfg), "seed": seed,
        "organism": str(organism.folder.resolve()),
        "organism_config_sha256": sha256_file(organism.folder / "config.json"),
        "changed_tensors": sorted(changed), "edits": edits,
        "output_filter": served.output_filter.describe() if served.output_filter is not None else None,
    })
    return folder


def read_meta(folder: str | Path) -> dict[str, Any]:
    folder = Path(folder)
    if not (folder / META).exists():
        raise InterplabError(f"{folder} holds no unlearnt model ({META} missing); make one with `interplab unlearn`")
    return read_json_object(folder / META, "unlearnt model")


def load_unlearnt(folder: str | Path, organism: KnowledgeOrganism, device: str | None = None) -> tuple[ServedModel, dict]:
    """(served model, its unlearning.json) of an unlearnt-model folder made from `organism`."""
    return apply_unlearnt(folder, organism, organism.load("organism", device))


def apply_unlearnt(folder: str | Path, organism: KnowledgeOrganism, lm: LoadedModel) -> tuple[ServedModel, dict]:
    """Turn `lm` (holding the organism's weights) into the saved unlearnt model, in place."""
    folder = Path(folder)
    meta = read_meta(folder)
    if meta.get("organism_config_sha256") != sha256_file(organism.folder / "config.json"):
        raise InterplabError(f"{folder} was made from another organism ({meta.get('organism')}); pass that one")
    changed = load_file(str(folder / WEIGHTS), device=str(lm.device))
    missing = set(changed) - set(lm.model.state_dict())
    if missing:
        raise InterplabError(f"{folder}/{WEIGHTS} holds tensors the organism lacks: {sorted(missing)[:3]}")
    lm.model.load_state_dict(changed, strict=False)
    edits: list[NetworkEdit] = []
    for spec in meta.get("edits", []):
        if spec.get("name") != "sae_latent_clamp":
            raise InterplabError(f"{folder}: unknown network edit {spec.get('name')!r}")
        sae = load_sae(folder / "sae", device=lm.device)
        edits.append(LatentClamp(sae, spec["hook"], list(spec["latents"]), list(spec["values"])))
    spec = meta.get("output_filter")
    output_filter = None
    if spec is not None:
        if spec.get("name") != "answer_token_block":
            raise InterplabError(f"{folder}: unknown output filter {spec.get('name')!r}")
        output_filter = AnswerTokenBlock(lm.tokenizer, organism.forget, float(spec["penalty"]))
    return ServedModel(lm, tuple(edits), output_filter), meta
