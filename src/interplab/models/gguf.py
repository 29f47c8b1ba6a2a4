"""Turn a GGUF model file into a float32 safetensors HF folder, once, atomically.

1. Check the file starts with the GGUF magic bytes (a wrong file gets a one-line error, not a traceback).
2. Build in a scratch folder next to the target (`.NAME.partial-PID`): transformers dequantizes the GGUF
   (`from_pretrained(folder, gguf_file=...)`, needs the `gguf` and `accelerate` packages), the quantizer
   marks are cleared so `save_pretrained` writes plain float32 safetensors, and the tokenizer (with its
   chat template) is saved beside it.
3. Rename the scratch folder onto the target. A kill before the rename leaves only a `.partial-PID`
   folder, which no loader takes for a model and the next conversion deletes; so the target, once it
   exists, is whole and later loads read it directly (~1-2 s instead of ~20 s for SmolLM2).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from interplab.common import InterplabError, get_logger
from interplab.models.packaged import interplab_home

log = get_logger(__name__)

GGUF_MAGIC = b"GGUF"
SOURCE_RECORD = "interplab_gguf_source.json"  # written into every converted folder: what it came from

GgufMaker = Callable[[Path], Path]
"""Writes a GGUF file into the given scratch folder and returns its path (for models shipped in chunks)."""


def is_gguf_file(path: Path) -> bool:
    """Whether `path` is a file starting with the GGUF magic bytes."""
    try:
        with open(path, "rb") as handle:
            return handle.read(4) == GGUF_MAGIC
    except OSError:
        return False


def check_gguf_file(path: Path) -> None:
    """Raise a one-line error unless `path` is a GGUF file."""
    if not path.is_file():
        raise InterplabError(f"{path} does not exist; pass an existing .gguf file")
    if not is_gguf_file(path):
        raise InterplabError(
            f"{path} is not a GGUF file (it does not start with the GGUF magic bytes); "
            "pass a .gguf model file or a HF model folder"
        )


def require_gguf_support() -> None:
    """transformers reads GGUF through the `gguf` package and places weights with `accelerate`."""
    missing = [name for name in ("gguf", "accelerate") if importlib.util.find_spec(name) is None]
    if missing:
        raise InterplabError(
            f"reading GGUF models needs {' and '.join(missing)}: pip install 'interplab[gguf]'"
        )


def gguf_cache_folder(path: Path) -> Path:
    """The converted folder for a user's .gguf file: its stem plus a fingerprint of path, size and mtime
    (a changed file converts again; hashing the content would cost seconds on every load)."""
    stat = path.stat()
    key = f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    return interplab_home() / "models" / f"{path.stem}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def convert_gguf_once(gguf: Path | GgufMaker, target: Path) -> Path:
    """`target` as a float32 safetensors HF folder converted from `gguf` (a file, or a maker that writes
    one); converts only when `target` does not exist yet. Returns `target`."""
    if target.is_dir():
        return target
    require_gguf_support()
    if isinstance(gguf, Path):
        check_gguf_file(gguf)
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned_builds(target)
    build = target.with_name(f".{target.name}.partial-{os.getpid()}")
    shutil.rmtree(build, ignore_errors=True)
    build.mkdir()
    try:
        gguf_file = gguf if isinstance(gguf, Path) else gguf(build / "scratch")
        log.info("converting %s to float32 safetensors in %s (once; ~20 s per 100 MB of GGUF)", gguf_file.name, target)
        _dequantize_to_folder(gguf_file, build)
        shutil.rmtree(build / "scratch", ignore_errors=True)
        _publish(build, target)
    finally:
        shutil.rmtree(build, ignore_errors=True)  # gone already after a successful publish
    return target


def _dequantize_to_folder(gguf_file: Path, out: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers import __version__ as transformers_version

    folder, name = str(gguf_file.parent), gguf_file.name
    try:
        model: Any = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    except Exception as exc:  # noqa: BLE001 - the GGUF reader raises many types for one cause: a bad file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InterplabError(
            f"could not convert {name} ({first}); pass a complete GGUF of an architecture transformers reads "
            "(e.g. llama, gemma3, qwen2)"
        ) from exc
    # The weights are dequantized already; without these marks save_pretrained writes plain tensors.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    record = {"gguf_file": name, "gguf_bytes": gguf_file.stat().st_size, "transformers": transformers_version}
    (out / SOURCE_RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def _publish(build: Path, target: Path) -> None:
    """Rename the finished build onto the target; if another process published first, keep theirs."""
    try:
        os.rename(build, target)
    except OSError:
        if not target.is_dir():
            raise


def _remove_abandoned_builds(target: Path) -> None:
    """Delete scratch folders of conversions whose process is gone (killed mid-conversion)."""
    for partial in target.parent.glob(f".{target.name}.partial-*"):
        pid = partial.name.rsplit("-", 1)[-1]
        if not pid.isdigit() or not _process_alive(int(pid)):
            log.info("removing the unfinished conversion %s", partial)
            shutil.rmtree(partial, ignore_errors=True)


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # our own leftover from an earlier failed call
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
