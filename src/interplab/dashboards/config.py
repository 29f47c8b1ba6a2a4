"""The settings of a dashboards build (one dataclass; every field says what it changes)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from interplab.common import InterplabError


@dataclass
class DashboardConfig:
    """How feature dashboards are built. A resumed build must use the same values for every field
    except `write_batch` and `code_cache_mb` (fields marked (content) change what is written)."""

    top_k: int = 20
    """(content) Top-activating contexts kept per latent."""
    n_buckets: int = 5
    """(content) Quantile intervals between 0 and each latent's max activation."""
    samples_per_bucket: int = 5
    """(content) Contexts drawn (reservoir sampling) per (latent, interval)."""
    n_bins: int = 32
    """(content) Histogram bins over (0, max] of each latent's positive activations."""
    window: int | None = 16
    """(content) Tokens kept either side of a context's peak; None keeps the whole context row."""
    n_logits: int = 10
    """(content) Promoted and suppressed tokens listed per latent (models with an unembedding)."""
    n_neighbours: int = 10
    """(content) Nearest latents by decoder cosine listed per latent."""
    max_tokens: int | None = None
    """(content) Scan at most this many token positions (whole context rows) of the store; None = all."""
    seed: int = 0
    """(content) Seed of the quantile sampling."""
    batch_tokens: int = 4096
    """Token positions encoded at once (rounded to whole context rows). Part of the resume check:
    matmul blocking can move activations by an ulp between batch sizes, and ties would then break
    differently."""
    write_batch: int = 256
    """Latents per database transaction (and per resume step)."""
    code_cache_mb: int = 1024
    """Memory for keeping pass 1's sparse codes (TopK SAEs: k values and latents per token) so pass 2
    reads them instead of the store and the encoder; larger scans encode twice. Results are the same."""

    def check(self) -> None:
        """Raise a one-line error for settings that cannot work."""
        positive = ("top_k", "n_buckets", "samples_per_bucket", "n_bins", "batch_tokens", "write_batch")
        if self.code_cache_mb < 0:
            raise InterplabError(f"dashboards code_cache_mb must be >= 0, got {self.code_cache_mb}")
        for name in positive:
            if getattr(self, name) < 1:
                raise InterplabError(f"dashboards {name} must be at least 1, got {getattr(self, name)}")
        for name in ("n_logits", "n_neighbours"):
            if getattr(self, name) < 0:
                raise InterplabError(f"dashboards {name} must be >= 0, got {getattr(self, name)}")
        if self.window is not None and self.window < 0:
            raise InterplabError(f"dashboards window must be >= 0 (or None for whole rows), got {self.window}")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise InterplabError(f"--max-tokens must be at least 1, got {self.max_tokens}")

    def content_dict(self) -> dict[str, Any]:
        """The fields that change the database content (what a resume must match)."""
        skip = {"write_batch", "code_cache_mb"}
        return {k: v for k, v in asdict(self).items() if k not in skip}
