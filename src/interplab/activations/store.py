"""On-disk activation store: fixed-size safetensors shards plus a manifest written last.

Folder layout (one folder per model x hook x dataset):
    shard_00000.safetensors   tokens [n, ctx] int32, acts [n, ctx, d] (stored dtype), mask [n, ctx] bool
    shard_00001.safetensors   ...
    progress.json             while a run is under way: the header and the shards verified so far
    manifest.json             once complete: the same plus totals; written last, by temp file + os.replace

Every position is stored (the shard `mask` marks real tokens, False on padding); the header's exclusion
rule (exclusion.py: attention sinks, special tokens) says which real tokens training, evaluation and
dashboards leave out. `load_shard` applies it (`Shard.keep`), so all readers honour it from here.

Writing:
  1. `StoreWriter.start(folder, header, ...)` refuses a complete store (unless overwrite), a partial one
     (unless resume), or a header that differs from the partial run's (other model, d, data, ...).
  2. On resume it re-hashes every shard listed in progress.json; good ones are kept, a missing or
     corrupt one is simply recomputed (shards are a pure function of the header, so the result is the same).
  3. `write_shard(i, ...)` checks shapes and finiteness *before* touching the disk, writes to a temp file,
     renames it into place, then records its sha256 in progress.json (also by atomic rename).
  4. `finish()` writes manifest.json and removes progress.json. A killed run therefore never leaves a shard
     that looks whole, nor a manifest that claims shards it does not have.

Reading: `ActivationStore.open(folder)` validates the manifest; every shard read is checked against its sha256.
Stores of format 1 (written before exclusion rules) have no rule: every real token is used, as before.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import Tensor

from interplab.activations.exclusion import ExclusionRule
from interplab.common import InterplabError, get_dtype, get_logger
from interplab.files import write_bytes_atomic

log = get_logger(__name__)

MANIFEST = "manifest.json"
PROGRESS = "progress.json"
FORMAT_VERSION = 2
"""2: the header holds an exclusion rule and shards count their excluded tokens."""


def storage_dtype(name: str) -> torch.dtype:
    """The torch dtype for a stored-activation dtype name; anything but a float type is a user error."""
    try:
        return get_dtype(name)
    except ValueError as exc:
        raise InterplabError(f"{exc} (activation storage dtype, --dtype)") from None


def shard_name(index: int) -> str:
    return f"shard_{index:05d}.safetensors"


@dataclass(frozen=True)
class StoreHeader:
    """What a store holds and how it was made; a resumed run must match it exactly."""

    model: str
    """Model name or path the activations come from."""
    hook: str
    """Hook point name, e.g. `blocks.3.resid_post`."""
    d: int
    """Activation width."""
    dtype: str
    """Stored activation dtype name: float32, bfloat16 or float16."""
    context_size: int
    """Tokens per sequence (row)."""
    n_seq: int
    """Sequences in the finished store."""
    seqs_per_shard: int
    """Sequences per shard (the last shard may hold fewer)."""
    tokens_sha256: str
    """Hash of the packed token ids and mask: detects a resume on different data or tokenizer."""
    dataset: str = ""
    """Human description of the data (file, dataset name, or 'demo corpus')."""
    tokenizer: str = ""
    """Tokenizer name or path."""
    is_causal: bool = True
    """Whether windows are packed token streams (causal LM) or one padded document per row (encoder)."""
    batch_size: int = 0
    """Forward batch size (sequences); kept equal on resume so results are bit-identical."""
    exclusion: ExclusionRule = field(default_factory=ExclusionRule)
    """Real tokens that training, evaluation and dashboards leave out (none for format-1 stores)."""

    @property
    def n_shards(self) -> int:
        return -(-self.n_seq // self.seqs_per_shard)

    def shard_range(self, index: int) -> tuple[int, int]:
        """[start, stop) sequence indices covered by shard `index`."""
        start = index * self.seqs_per_shard
        return start, min(start + self.seqs_per_shard, self.n_seq)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "exclusion": self.exclusion.to_json()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StoreHeader:
        """The header in a manifest or progress file (their other keys are ignored); raises KeyError,
        TypeError or ValueError on a malformed one, for the caller to name the file."""
        fields = {k: data[k] for k in cls.__dataclass_fields__ if k in data and k != "exclusion"}
        return cls(**fields, exclusion=ExclusionRule.from_json(data.get("exclusion") or {}))


@dataclass
class ShardInfo:
    """One shard's entry in the manifest."""

    file: str
    n_seq: int
    n_tokens: int
    """Real (mask=True) tokens in the shard."""
    sha256: str
    n_excluded: int = 0
    """Of the real tokens, those the header's exclusion rule leaves out."""

    @property
    def n_kept(self) -> int:
        return self.n_tokens - self.n_excluded


@dataclass
class Manifest:
    """manifest.json: the header, the shards, and totals."""

    header: StoreHeader
    shards: list[ShardInfo]
    n_tokens: int
    """Real (mask=True) tokens in the store, excluded ones included."""
    interplab_version: str = ""
    format_version: int = FORMAT_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_excluded(self) -> int:
        return sum(s.n_excluded for s in self.shards)

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "interplab_version": self.interplab_version,
            **self.header.to_json(),
            "n_tokens": self.n_tokens,
            "n_excluded": self.n_excluded,
            "n_positions": self.header.n_seq * self.header.context_size,
            "shards": [asdict(s) for s in self.shards],
            "extra": self.extra,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], where: Path) -> Manifest:
        try:
            header = StoreHeader.from_json(data)
            shards = [ShardInfo(**s) for s in data["shards"]]
            return cls(
                header,
                shards,
                int(data["n_tokens"]),
                data.get("interplab_version", ""),
                int(data.get("format_version", FORMAT_VERSION)),
                dict(data.get("extra", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InterplabError(
                f"{where} is not a valid interplab store file ({exc}); recreate the store"
            ) from None


class Shard(NamedTuple):
    """One shard's contents."""

    tokens: Tensor
    """[n_seq, ctx] int64 token ids."""
    acts: Tensor
    """[n_seq, ctx, d] activations in the stored dtype."""
    mask: Tensor
    """[n_seq, ctx] bool, True on real tokens (False on padding)."""
    keep: Tensor
    """[n_seq, ctx] bool, True on the real tokens the store's exclusion rule keeps: the ones to use."""


def _atomic_write_json(path: Path, data: dict[str, Any]) -> None:
    write_bytes_atomic(path, json.dumps(data, indent=2).encode(), fsync=True)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InterplabError(f"{path} is corrupt ({exc}); delete the folder and rerun the cache") from None


def read_shard_file(path: Path, expected_sha256: str | None) -> Shard:
    """Read one shard, checking its checksum first (a mismatch names the shard and the fix).

    `keep` is the mask as stored: `ActivationStore.load_shard` applies the store's exclusion rule."""
    if not path.exists():
        raise InterplabError(
            f"shard {path} is missing; rerun the cache command with --resume to recompute it"
        )
    data = path.read_bytes()
    if expected_sha256 is not None and hashlib.sha256(data).hexdigest() != expected_sha256:
        raise InterplabError(
            f"shard {path} is corrupt (checksum mismatch); delete it and rerun with --resume"
        )
    try:
        tensors = st_load(data)
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types for bad headers
        raise InterplabError(
            f"shard {path} is unreadable ({exc}); delete it and rerun with --resume"
        ) from None
    missing = {"tokens", "acts", "mask"} - set(tensors)
    if missing:
        raise InterplabError(f"shard {path} lacks {sorted(missing)}; it is not an interplab shard, delete it")
    return Shard(tensors["tokens"].to(torch.int64), tensors["acts"], tensors["mask"], tensors["mask"])


def _version() -> str:
    from interplab import __version__

    return __version__


class ActivationStore:
    """A finished store: read shards, batches of token activations, token ids."""

    def __init__(self, folder: Path, manifest: Manifest):
        self.folder = folder
        self.manifest = manifest

    @classmethod
    def open(cls, folder: str | Path) -> ActivationStore:
        """Open a complete store; an interrupted or foreign folder gives a one-line error naming the fix."""
        folder = Path(folder)
        if not (folder / MANIFEST).exists():
            if (folder / PROGRESS).exists():
                raise InterplabError(
                    f"{folder} is an unfinished store; rerun the cache command with --resume"
                )
            raise InterplabError(f"{folder} has no {MANIFEST}; create the store with `interplab cache`")
        manifest = Manifest.from_json(_read_json(folder / MANIFEST), folder / MANIFEST)
        h = manifest.header
        if len(manifest.shards) != h.n_shards or sum(s.n_seq for s in manifest.shards) != h.n_seq:
            raise InterplabError(
                f"{folder / MANIFEST} lists the wrong shards; delete the folder and recreate it"
            )
        storage_dtype(h.dtype)  # raises on an unknown dtype name
        if manifest.format_version < 2 and h.is_causal:
            log.warning("%s was cached before interplab left attention sinks out: training, evaluation and "
                        "dashboards use every position, sinks included; recache it (--overwrite) to exclude "
                        "them", folder)
        return cls(folder, manifest)

    @property
    def d(self) -> int:
        return self.manifest.header.d

    @property
    def exclusion(self) -> ExclusionRule:
        """The real tokens this store leaves out (see exclusion.py)."""
        return self.manifest.header.exclusion

    @property
    def n_tokens(self) -> int:
        """Tokens to use: real ones the exclusion rule keeps (what training, evals and dashboards see)."""
        return self.manifest.n_tokens - self.manifest.n_excluded

    @property
    def n_excluded(self) -> int:
        """Real tokens the exclusion rule leaves out."""
        return self.manifest.n_excluded

    @property
    def n_shards(self) -> int:
        return len(self.manifest.shards)

    def load_shard(self, index: int, verify: bool = True) -> Shard:
        """Shard `index`, its `keep` mask computed by the store's exclusion rule."""
        info = self.manifest.shards[index]
        shard = read_shard_file(self.folder / info.file, info.sha256 if verify else None)
        h = self.manifest.header
        if shard.acts.shape != (info.n_seq, h.context_size, h.d):
            raise InterplabError(
                f"shard {self.folder / info.file} has shape {tuple(shard.acts.shape)}, expected "
                f"{(info.n_seq, h.context_size, h.d)}; delete it and rerun with --resume"
            )
        if h.exclusion.is_empty:
            return shard
        keep = h.exclusion.keep_mask(shard.tokens, shard.mask, shard.acts)
        if int(shard.mask.sum() - keep.sum()) != info.n_excluded:
            # only a norm within rounding of the rule's limit can do this (another CPU's float sums)
            log.warning("shard %s: the exclusion rule leaves out %d tokens, the manifest says %d",
                        self.folder / info.file, int(shard.mask.sum() - keep.sum()), info.n_excluded)
        return shard._replace(keep=keep)

    def iter_shards(self, verify: bool = True) -> Iterator[Shard]:
        """(tokens, acts, mask) per shard, in order; each is checksum-verified unless verify=False."""
        for index in range(self.n_shards):
            yield self.load_shard(index, verify)

    def token_ids(self) -> Tensor:
        """[n_seq, ctx] int64 token ids of the whole store."""
        return torch.cat([s.tokens for s in self.iter_shards()])

    def masks(self) -> Tensor:
        """[n_seq, ctx] bool mask of real tokens."""
        return torch.cat([s.mask for s in self.iter_shards()])

    def keep_masks(self) -> Tensor:
        """[n_seq, ctx] bool mask of the tokens to use (real and not excluded)."""
        return torch.cat([s.keep for s in self.iter_shards()])

    def valid_activations(self, max_tokens: int | None = None) -> Tensor:
        """[n_tokens, d] activations of the tokens to use, in store order (loads them all: small stores only)."""
        parts, total = [], 0
        for shard in self.iter_shards():
            parts.append(shard.acts[shard.keep])
            total += len(parts[-1])
            if max_tokens is not None and total >= max_tokens:
                break
        acts_ND = torch.cat(parts)
        return acts_ND[:max_tokens] if max_tokens is not None else acts_ND

    def batches(
        self, batch_size: int, shuffle: bool = True, seed: int = 0, drop_last: bool = True
    ) -> Iterator[Tensor]:
        """One epoch of [B, d] batches of the kept tokens' activations (shuffled by a bounded buffer)."""
        from interplab.activations.buffer import ActivationBuffer, BufferConfig

        cfg = BufferConfig(batch_size=batch_size, shuffle=shuffle, seed=seed, drop_last=drop_last, epochs=1)
        return iter(ActivationBuffer(self, cfg))

    def __repr__(self) -> str:
        h = self.manifest.header
        return (
            f"ActivationStore({self.folder}, {h.model} {h.hook}, d={h.d}, tokens={self.n_tokens}, {h.dtype})"
        )


class StoreWriter:
    """Writes a store shard by shard; see the module docstring for the protocol."""

    def __init__(self, folder: Path, header: StoreHeader, done: dict[int, ShardInfo]):
        self.folder = folder
        self.header = header
        self.done = done
        self._lock = threading.Lock()  # write_shard may run in several threads; progress.json is shared

    @classmethod
    def start(
        cls, folder: str | Path, header: StoreHeader, overwrite: bool = False, resume: bool = False
    ) -> StoreWriter:
        """Prepare `folder` for writing `header`'s store, keeping verified shards of an earlier run on resume."""
        folder = Path(folder)
        if folder.exists() and not folder.is_dir():
            raise InterplabError(f"{folder} is a file; pass a folder path as --out")
        folder.mkdir(parents=True, exist_ok=True)
        previous = cls._previous_run(folder)
        if previous is not None and overwrite:
            cls._clear(folder)
            previous = None
        if previous is None:
            if any(folder.glob("shard_*.safetensors")):
                raise InterplabError(
                    f"{folder} holds shards but no manifest; pass --overwrite or pick another --out"
                )
            _atomic_write_json(folder / PROGRESS, {**header.to_json(), "shards": {}})
            return cls(folder, header, {})
        old_header, old_shards, _ = previous
        cls.preflight(folder, overwrite, resume)
        cls._check_same(folder, old_header, header)
        done = {i: s for i, s in old_shards.items() if cls._verified(folder, s)}
        # From here on the folder is "in progress" again until finish(): a crash never leaves a stale manifest.
        _atomic_write_json(
            folder / PROGRESS, {**header.to_json(), "shards": {str(i): asdict(s) for i, s in done.items()}}
        )
        (folder / MANIFEST).unlink(missing_ok=True)
        log.info("resuming %s: %d of %d shards already done", folder, len(done), header.n_shards)
        return cls(folder, header, done)

    @classmethod
    def preflight(cls, folder: str | Path, overwrite: bool = False, resume: bool = False) -> None:
        """Raise the error `start` would raise for the folder's state, before any expensive work."""
        folder = Path(folder)
        if not folder.is_dir() or overwrite:
            return
        previous = cls._previous_run(folder)
        if previous is None or resume:
            return
        if previous[2]:
            raise InterplabError(
                f"{folder} already holds a complete store; pass --overwrite or pick another --out"
            )
        raise InterplabError(
            f"{folder} holds an interrupted run; pass --resume to continue it or --overwrite"
        )

    @staticmethod
    def _previous_run(folder: Path) -> tuple[StoreHeader, dict[int, ShardInfo], bool] | None:
        if (folder / MANIFEST).exists():
            manifest = Manifest.from_json(_read_json(folder / MANIFEST), folder / MANIFEST)
            return manifest.header, dict(enumerate(manifest.shards)), True
        if (folder / PROGRESS).exists():
            data = _read_json(folder / PROGRESS)
            try:
                header = StoreHeader.from_json(data)
                shards = {int(i): ShardInfo(**s) for i, s in data["shards"].items()}
            except (KeyError, TypeError, ValueError) as exc:
                raise InterplabError(
                    f"{folder / PROGRESS} is corrupt ({exc}); pass --overwrite to start over"
                ) from None
            return header, shards, False
        return None

    @staticmethod
    def _clear(folder: Path) -> None:
        """Remove only files this module writes (never anything else the user put in the folder)."""
        for path in [*folder.glob("shard_*.safetensors"), *folder.glob("shard_*.safetensors.tmp")]:
            path.unlink()
        for name in (MANIFEST, PROGRESS):
            (folder / name).unlink(missing_ok=True)

    @staticmethod
    def _check_same(folder: Path, old: StoreHeader, new: StoreHeader) -> None:
        if old.d != new.d:
            raise InterplabError(
                f"{folder} holds activations with d={old.d} but this run gives d={new.d}; "
                "use another --out or pass --overwrite"
            )
        diffs = [k for k in StoreHeader.__dataclass_fields__ if getattr(old, k) != getattr(new, k)]
        if diffs:
            details = ", ".join(f"{k}: {getattr(old, k)!r} -> {getattr(new, k)!r}" for k in diffs[:3])
            raise InterplabError(
                f"cannot resume {folder}: the run differs from the stored one ({details}); "
                "repeat the original command or pass --overwrite"
            )

    @staticmethod
    def _verified(folder: Path, info: ShardInfo) -> bool:
        path = folder / info.file
        if path.exists() and hashlib.sha256(path.read_bytes()).hexdigest() == info.sha256:
            return True
        log.warning("shard %s is missing or corrupt; it will be recomputed", path)
        return False

    def pending_shards(self) -> list[int]:
        """Shard indices still to compute, in order."""
        return [i for i in range(self.header.n_shards) if i not in self.done]

    def write_shard(self, index: int, tokens: Tensor, acts: Tensor, mask: Tensor) -> ShardInfo:
        """Validate and write shard `index`: tokens/mask [n, ctx], acts [n, ctx, d]."""
        h = self.header
        start, stop = h.shard_range(index)
        expected = (stop - start, h.context_size)
        if acts.ndim != 3 or acts.shape[-1] != h.d:
            raise InterplabError(
                f"activations for {shard_name(index)} have shape {tuple(acts.shape)} but the store has d={h.d}; "
                "check --hook or write to another --out"
            )
        if (
            tuple(tokens.shape) != expected
            or tuple(mask.shape) != expected
            or tuple(acts.shape[:2]) != expected
        ):
            raise InterplabError(
                f"{shard_name(index)} must hold {expected[0]} sequences of {expected[1]} tokens"
            )
        finite_S = torch.isfinite(acts).flatten(1).all(dim=1)
        if not bool(finite_S.all()):
            bad = start + int((~finite_S).nonzero()[0])
            raise InterplabError(
                f"NaN/Inf activations in sequence {bad} ({shard_name(index)}); nothing was written for it. "
                "Load the model in float32 (--dtype float32) or check the model"
            )
        payload = {
            "tokens": tokens.to(torch.int32).contiguous(),
            "acts": acts.to(storage_dtype(h.dtype)).contiguous(),
            "mask": mask.to(torch.bool).contiguous(),
        }
        data = st_save(payload)
        # counted on the stored tensors, exactly as load_shard will recompute it
        n_kept = int(h.exclusion.keep_mask(payload["tokens"], payload["mask"], payload["acts"]).sum())
        n_real = int(payload["mask"].sum())
        info = ShardInfo(shard_name(index), stop - start, n_real, hashlib.sha256(data).hexdigest(), n_real - n_kept)
        write_bytes_atomic(self.folder / info.file, data, fsync=True)
        with self._lock:
            self.done[index] = info
            progress = {**h.to_json(), "shards": {str(i): asdict(s) for i, s in sorted(self.done.items())}}
            _atomic_write_json(self.folder / PROGRESS, progress)
        return info

    def finish(self, extra: dict[str, Any] | None = None) -> ActivationStore:
        """Write manifest.json (atomically, last) and return the opened store."""
        missing = self.pending_shards()
        if missing:
            raise InterplabError(f"cannot finish {self.folder}: shards {missing[:5]} were not written")
        shards = [self.done[i] for i in range(self.header.n_shards)]
        manifest = Manifest(
            self.header, shards, sum(s.n_tokens for s in shards), _version(), extra=extra or {}
        )
        _atomic_write_json(self.folder / MANIFEST, manifest.to_json())
        (self.folder / PROGRESS).unlink(missing_ok=True)
        return ActivationStore.open(self.folder)
