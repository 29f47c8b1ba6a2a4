"""Live inference for the web UI: text -> tokens -> activations at the SAE's hook -> top latents per token.

1. The model and SAE of an SAE row are loaded on first use and kept (one pair per SAE id). The SAE folder
   is the one `interplab serve --sae` gave for it, else where the `path` column leads (an absolute path;
   a relative one of an older database from the database's folder, then from the current folder); the
   model is serve's `--model`, else the `model` column (likewise).
2. Concurrent requests for one SAE run as one batch (web/batching.py: whatever queued while the previous
   batch ran, up to `max_batch` texts). Each text is tokenized alone (truncated to `max_tokens`), the
   batch is padded on the right (real tokens see only real tokens before them, so their activations are
   those of the text run alone), the forward pass runs only as far as the hook (`run_to_capture`), and
   `SAE.encode` gives the latents of every real token, at most `ENCODE_ROWS` tokens at a time (`_encode_top`).
3. Per token, the `top_n` largest latents with value > 0 are returned.

One lock serialises loading and inference: hooks are registered on the shared model per call. The steering
playground (web/steer.py) takes the same lock and the same loaded models, so a model is loaded once.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from interplab.common import InterplabError, get_logger
from interplab.dashboards import SaeRecord, model_location, sae_locations
from interplab.web.batching import BatchRunner

if TYPE_CHECKING:  # torch and transformers load on the first live request, not when the server starts
    import torch

    from interplab.models.loading import LoadedModel
    from interplab.saes.base import SAE

log = get_logger(__name__)


@dataclass
class LiveResult:
    tokens: list[str]
    top_idx: list[list[int]]  # [seq][<= top_n], largest first, only latents > 0
    top_val: list[list[float]]


@dataclass
class _LiveJob:
    rec: SaeRecord
    text: str
    top_n: int


class LiveInference:
    """Lazily loaded (model, SAE) pairs and the per-token top latents of a text."""

    def __init__(self, sae_paths: Mapping[int, str | Path] | None = None, model: str | None = None,
                 device: str | None = None, max_tokens: int = 256, db_file: Path | None = None,
                 max_batch: int = 16) -> None:
        """db_file: the SQLite file of the database (relative SAE paths of older databases start there).
        max_batch: most texts run in one forward pass (1: every request alone)."""
        self.sae_paths = {int(k): Path(v) for k, v in (sae_paths or {}).items()}
        self.db_file = db_file
        self.model_override = model
        self.device = device
        self.max_tokens = max_tokens
        self._models: dict[str, LoadedModel] = {}
        self._saes: dict[int, SAE] = {}
        self._causal: dict[str, bool | None] = {}  # model name -> causal LM? (from its config), cached
        self.lock = threading.Lock()
        self.batcher: BatchRunner[_LiveJob, LiveResult] = BatchRunner(self._run_batch, max_batch)

    def model_name(self, rec: SaeRecord) -> str:
        """serve's --model, else the `model` column (a relative folder of an older database found beside it)."""
        return self.model_override or model_location(rec.model, self.db_file)

    def sae_locations(self, rec: SaeRecord) -> list[Path]:
        """Where the SAE of this row is looked for: serve's --sae folder, else where the `path` column leads."""
        if (rec.id or 0) in self.sae_paths:
            return [self.sae_paths[rec.id or 0]]
        return sae_locations(rec.path, self.db_file)

    def sae_path(self, rec: SaeRecord) -> Path:
        """The first of `sae_locations` that exists, else the first."""
        tried = self.sae_locations(rec)
        return next((p for p in tried if p.exists()), tried[0])

    def load(self, rec: SaeRecord) -> tuple[LoadedModel, SAE]:
        """The (model, SAE) of an SAE row, loaded on first use; call it holding `self.lock`."""
        from interplab.saes.io import load_sae

        sae_id = rec.id or 0
        if sae_id not in self._saes:
            if rec.path.startswith("neurons:") and sae_id not in self.sae_paths:
                raise InterplabError(f"{rec.name!r} holds dashboards of model neurons, not of an SAE: "
                                     "live inference needs an SAE")
            path = self.sae_path(rec)
            if not path.exists():
                raise InterplabError(f"live inference needs the weights of SAE {rec.name!r}, but there is no "
                                     f"SAE at {self._tried(rec)}; start the server with "
                                     "`interplab serve --db ... --sae <the SAE folder>`")
            self._saes[sae_id] = load_sae(path, device=self.device)
        return self.model(self.model_name(rec)), self._saes[sae_id]

    def _tried(self, rec: SaeRecord) -> str:
        """The paths tried for the SAE, and the stored path when it is relative (an older database)."""
        where = " nor at ".join(str(p) for p in self.sae_locations(rec))
        if (rec.id or 0) in self.sae_paths or Path(rec.path).expanduser().is_absolute():
            return where
        return f"{where} (the database stores the relative path {rec.path!r})"

    def model(self, name: str) -> LoadedModel:
        """The model `name` (hub id or folder), loaded on first use; call it holding `self.lock`."""
        from interplab.models.loading import load_model

        if name not in self._models:
            self._models[name] = load_model(name, device=self.device)
        return self._models[name]

    def known_causal(self, name: str) -> bool | None:
        """Whether `name` is a causal LM, if already known (loaded, or its config read); never loads."""
        if name in self._models:
            return self._models[name].is_causal
        return self._causal.get(name)

    def is_causal(self, name: str) -> bool | None:
        """Whether `name` is a causal LM, from its config.json on this machine (no download, no weights);
        None when the config cannot be read here (the model then loads on the first request)."""
        known = self.known_causal(name)
        if known is not None or name in self._causal:
            return known
        from transformers import AutoConfig

        from interplab.models.loading import is_causal_config, resolve_source

        try:
            config = AutoConfig.from_pretrained(resolve_source(name), local_files_only=True)
            self._causal[name] = is_causal_config(config)
        except (OSError, ValueError, InterplabError):
            self._causal[name] = None
        return self._causal[name]

    def run(self, rec: SaeRecord, text: str, top_n: int = 5) -> LiveResult:
        """Tokens of `text` and, per token, the top_n firing latents of this SAE (batched with concurrent
        requests for the same SAE)."""
        return self.batcher.submit(rec.id or 0, _LiveJob(rec, text, top_n))

    def _run_batch(self, _key: Hashable, jobs: Sequence[_LiveJob]) -> list[LiveResult]:
        """One padded forward pass for the texts of `jobs` (all of one SAE row)."""

        from interplab.models.interventions import run_to_capture

        rec = jobs[0].rec
        with self.lock:
            lm, sae = self.load(rec)
            ids = [lm.tokenizer(j.text, truncation=True, max_length=self.max_tokens) for j in jobs]
            batch = _pad_right(ids, lm.device)
            acts_BSD = run_to_capture(lm.model, batch, rec.hook)[rec.hook]
            if acts_BSD.shape[-1] != sae.cfg.d_in:
                raise InterplabError(f"{rec.hook} of {self.model_name(rec)} has d={acts_BSD.shape[-1]} but "
                                     f"SAE {rec.name!r} reads d_in={sae.cfg.d_in}")
            real_BS = batch["attention_mask"].bool()
            top_n = min(max(j.top_n for j in jobs), sae.cfg.d_sae)
            values_NK, idx_NK = _encode_top(sae, acts_BSD[real_BS], top_n)
            lengths = real_BS.sum(1).tolist()
            tokens = [token_texts(lm, j.text, list(e["input_ids"]), self.max_tokens)
                      for j, e in zip(jobs, ids, strict=True)]
        return [_top_latents(t, v, i, j.top_n) for t, v, i, j in
                zip(tokens, values_NK.split(lengths), idx_NK.split(lengths), jobs, strict=True)]


M_ARENA_MAX = -8  # glibc's mallopt parameter number (malloc.h)


def bound_malloc_arenas(arenas: int = 2) -> bool:
    """Let glibc's malloc use at most `arenas` arenas in this process (as MALLOC_ARENA_MAX does); call it
    before the server's threads start. Returns whether it applied (glibc only).

    Why: live-inference batches run on whichever of the server's pool threads takes them, and glibc gives
    threads their own arenas (up to 8 per core), each keeping the blocks of freed batch tensors. With batches
    of varying size the server's memory grew round after round of load (bench/README.md, "Under load");
    with 2 arenas it levels off. Running every batch on one dedicated thread also kept it flat, but cost
    several times the CPU per text (torch's intra-op threads on that thread), so the batches stay where
    they run."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        return bool(libc is not None and hasattr(libc, "mallopt") and libc.mallopt(M_ARENA_MAX, arenas) == 1)
    except OSError:
        return False


def _pad_right(encodings: list, device: torch.device) -> dict[str, torch.Tensor]:
    """Tokenizer outputs of single texts as one batch, padded at the end (id 0, mask 0): a causal LM's real
    tokens never attend to padding after them, an encoder's are masked from it. One text is not padded."""
    import torch

    lengths = [len(e["input_ids"]) for e in encodings]
    width = max(lengths)
    out = {"attention_mask": torch.tensor([[1] * n + [0] * (width - n) for n in lengths], device=device)}
    for key in ("input_ids", "token_type_ids"):
        if key in encodings[0]:
            rows = [list(e[key]) + [0] * (width - n) for e, n in zip(encodings, lengths, strict=True)]
            out[key] = torch.tensor(rows, dtype=torch.long, device=device)
    return out


def token_texts(lm: LoadedModel, text: str, ids: list[int], max_tokens: int) -> list[str]:
    """Each token as the piece of `text` it covers, the whitespace before it included, so the pieces join
    back into the text (WordPiece's "cat" after "the" shows as " cat"). Special tokens, and tokenizers
    without offsets, fall back to decoding the single id."""
    try:
        enc = lm.tokenizer(text, truncation=True, max_length=max_tokens, return_offsets_mapping=True)
    except NotImplementedError:  # slow (Python) tokenizers have no offsets
        return [str(lm.tokenizer.decode([i])) for i in ids]
    if list(enc["input_ids"]) != ids:
        return [str(lm.tokenizer.decode([i])) for i in ids]
    pieces, prev_end = [], 0
    for i, (start, end) in zip(ids, enc["offset_mapping"], strict=True):
        if end > max(start, prev_end):
            pieces.append(text[prev_end:end])
            prev_end = end
        else:  # special token, or a second piece of one character (byte-level BPE of an emoji)
            pieces.append(str(lm.tokenizer.decode([i])))
    return pieces


ENCODE_ROWS = 1024  # tokens encoded at a time: bounds the dense [rows, d_sae] block (64 MiB at d_sae 16k)


def _encode_top(sae: SAE, acts_ND: torch.Tensor, top_n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(values [N, top_n], latents [N, top_n]), largest first, of the SAE's latents of each row.

    Encoded ENCODE_ROWS rows at a time (encoding is per row, so the numbers are those of one pass): 16
    texts of 256 tokens would otherwise make a dense [4096, d_sae] block (256 MiB at d_sae 16k). Smaller
    blocks cost CPU (small matmuls), so a typical batch is one block."""
    import torch

    values, idx = [], []
    with torch.no_grad():
        for rows_ND in acts_ND.split(ENCODE_ROWS):
            latents_NF = sae.encode(rows_ND.to(device=sae.device, dtype=sae.dtype))
            v, i = latents_NF.float().topk(top_n, dim=-1)
            values.append(v)
            idx.append(i)
    if not values:
        return torch.zeros(0, top_n), torch.zeros(0, top_n, dtype=torch.long)
    return torch.cat(values), torch.cat(idx)


def _top_latents(tokens: list[str], values_SK: torch.Tensor, idx_SK: torch.Tensor, top_n: int) -> LiveResult:
    """Per token, its first `top_n` latents (of those given, largest first) whose value is > 0."""
    values_SK, idx_SK = values_SK[:, :top_n], idx_SK[:, :top_n]
    top_idx: list[list[int]] = []
    top_val: list[list[float]] = []
    for vals, idxs in zip(values_SK.tolist(), idx_SK.tolist(), strict=True):
        keep = [j for j, v in enumerate(vals) if v > 0]
        top_idx.append([idxs[j] for j in keep])
        top_val.append([vals[j] for j in keep])
    return LiveResult(tokens=tokens, top_idx=top_idx, top_val=top_val)
