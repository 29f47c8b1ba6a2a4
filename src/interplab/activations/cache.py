"""Cache a model's activations at one hook point into an `ActivationStore`, resumably and deterministically.

  1. Tokenize and pack the texts once (`tokenize_and_pack`): [n_seq, ctx] ids + mask.
  2. Open the store writer; on --resume it keeps the verified shards of an earlier run.
  3. For each pending shard, run the model on its sequences in batches, stopping the forward pass right
     after the hooked layer (`run_to_capture`), and write the shard (checked, then atomically renamed).
     Writing happens in background threads, so the next shard's forward pass overlaps the disk I/O.
Shard i always covers sequences [i*S, (i+1)*S) and batches never straddle shards, so a resumed run computes
exactly the same batches as an uninterrupted one and produces byte-identical shards.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor

from interplab.activations.store import ActivationStore, StoreHeader, StoreWriter, storage_dtype
from interplab.common import InterplabError, dtype_name, get_logger
from interplab.data.text import PackedTokens, tokenize_and_pack
from interplab.models.interventions import run_to_capture
from interplab.models.loading import LoadedModel

log = get_logger(__name__)

ProgressFn = Callable[[int, int], None]
"""progress(tokens_done, tokens_total), called after every forward batch."""


@dataclass
class CacheConfig:
    """How activations are cached."""

    context_size: int = 128
    """Tokens per sequence window."""
    batch_size: int = 32
    """Sequences per forward pass (keep it fixed across a resume: results are bit-identical only then)."""
    shard_tokens: int = 65_536
    """Token positions per shard (rounded down to whole sequences, at least one)."""
    dtype: str = "float32"
    """Stored activation dtype: float32, bfloat16 or float16."""
    max_tokens: int | None = None
    """Cache at most this many token positions (rounded up to whole sequences); None = all."""
    add_special: bool = True
    """Insert BOS/EOS between documents (causal) or wrap rows in [CLS] ... [SEP] (encoders)."""
    write_threads: int | None = None
    """Threads that check, hash (sha256) and write shards while the model runs on. None: 2 on CUDA (hashing
    runs at ~1-2 GB/s per thread, slower than a fast GPU makes activations), 1 on CPU (threads compete with
    torch for cores)."""
    overwrite: bool = False
    """Replace a complete or interrupted store already in the output folder."""
    resume: bool = False
    """Continue an interrupted run (or repair missing/corrupt shards of a complete one)."""

    def seqs_per_shard(self) -> int:
        return max(1, self.shard_tokens // self.context_size)


def _fingerprint(packed: PackedTokens) -> str:
    digest = hashlib.sha256(packed.input_ids.to(torch.int64).numpy().tobytes())
    digest.update(packed.attention_mask.numpy().tobytes())
    return digest.hexdigest()


def _packed_for(loaded: LoadedModel, texts: Sequence[str], cfg: CacheConfig) -> PackedTokens:
    max_seq = None if cfg.max_tokens is None else max(1, -(-cfg.max_tokens // cfg.context_size))
    return tokenize_and_pack(
        loaded.tokenizer, texts, cfg.context_size, loaded.is_causal, cfg.add_special, max_seq=max_seq
    )


def _forward_shard(
    loaded: LoadedModel,
    hook: str,
    ids_SC: Tensor,
    mask_SC: Tensor,
    cfg: CacheConfig,
    on_batch: Callable[[int], None],
) -> Tensor:
    """Activations [S, ctx, d] (stored dtype, CPU) of one shard's sequences, batch by batch."""
    store_dtype = storage_dtype(cfg.dtype)
    pinned = loaded.device.type == "cuda"
    out = torch.empty((*ids_SC.shape, loaded.d_model), dtype=store_dtype, pin_memory=pinned)
    for start in range(0, len(ids_SC), cfg.batch_size):
        stop = min(start + cfg.batch_size, len(ids_SC))
        batch = {
            "input_ids": ids_SC[start:stop].to(loaded.device, non_blocking=True),
            "attention_mask": mask_SC[start:stop].to(loaded.device, dtype=torch.long, non_blocking=True),
        }
        acts_BCD = run_to_capture(loaded.model, batch, hook)[hook]
        if acts_BCD.shape[-1] != loaded.d_model:
            raise InterplabError(
                f"hook {hook} gives width {acts_BCD.shape[-1]}, not the model's d={loaded.d_model}; pick a residual, "
                "attn_out or mlp_out hook"
            )
        out[start:stop].copy_(acts_BCD.to(store_dtype), non_blocking=pinned)
        on_batch(int(mask_SC[start:stop].sum()))
    if pinned:
        torch.cuda.synchronize(loaded.device)
    return out


def cache_activations(
    loaded: LoadedModel,
    texts: Sequence[str],
    hook: str,
    out_dir: str | Path,
    cfg: CacheConfig | None = None,
    progress: ProgressFn | None = None,
    dataset: str = "",
) -> ActivationStore:
    """Cache `hook` activations of `loaded` over `texts` into `out_dir`; return the finished store."""
    cfg = cfg or CacheConfig()
    write_threads = cfg.write_threads or (2 if loaded.device.type == "cuda" else 1)
    if write_threads < 1 or cfg.batch_size < 1:
        raise InterplabError("write_threads and batch_size must be at least 1")
    stored = storage_dtype(cfg.dtype)  # fail on a bad dtype name before any work
    packed = _packed_for(loaded, texts, cfg)
    header = StoreHeader(
        model=loaded.name,
        hook=hook,
        d=loaded.d_model,
        dtype=dtype_name(stored),
        context_size=cfg.context_size,
        n_seq=len(packed.input_ids),
        seqs_per_shard=cfg.seqs_per_shard(),
        tokens_sha256=_fingerprint(packed),
        dataset=dataset,
        tokenizer=getattr(loaded.tokenizer, "name_or_path", ""),
        is_causal=loaded.is_causal,
        batch_size=cfg.batch_size,
    )
    writer = StoreWriter.start(out_dir, header, overwrite=cfg.overwrite, resume=cfg.resume)
    total = int(packed.attention_mask.sum())
    done = sum(info.n_tokens for info in writer.done.values())

    def on_batch(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total)

    if progress is not None:
        progress(done, total)
    # Writer threads: checking, hashing and writing shard i overlaps the forward passes of the next shards.
    # At most `write_threads` shards wait in memory; .result() re-raises a write error (NaN, disk full) here.
    with ThreadPoolExecutor(max_workers=write_threads) as pool:
        in_flight: deque[Future] = deque()
        for index in writer.pending_shards():
            start, stop = header.shard_range(index)
            ids_SC, mask_SC = packed.input_ids[start:stop], packed.attention_mask[start:stop]
            acts_SCD = _forward_shard(loaded, hook, ids_SC, mask_SC, cfg, on_batch)
            while len(in_flight) >= write_threads:
                in_flight.popleft().result()
            in_flight.append(pool.submit(writer.write_shard, index, ids_SC, acts_SCD, mask_SC))
        for future in in_flight:
            future.result()
    store = writer.finish(extra={"cache_config": asdict(cfg)})
    log.info("cached %d tokens of %s into %s (%d shards)", store.n_tokens, hook, out_dir, store.n_shards)
    return store
