"""Named stages of a long job, each recorded in `stages.json` when it finishes.

`StageBook(folder).run(name, fn)` runs `fn` unless the book says `name` finished, in which case it
returns the recorded summary without running anything. A stage that was running when the job was
killed (or raised) is simply run again: each stage's own work is resumable (activation stores resume
shard by shard, SAE runs from their checkpoints, dashboards from their last batch), so a rerun of the
whole job skips what is done and continues what is not. The book is rewritten atomically after every
change, so a kill never leaves it torn.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from interplab.common import InterplabError, get_logger
from interplab.files import json_safe, read_json_object, write_json_atomic

log = get_logger(__name__)

BOOK = "stages.json"


@dataclass
class StageRecord:
    """What the book knows about one stage."""

    status: str
    """"running" or "done"."""
    seconds: float = 0.0
    """Wall time of the run that finished it (0 while running)."""
    summary: dict[str, Any] = field(default_factory=dict)
    """Headline numbers the stage returned."""


class StageBook:
    """The `stages.json` of a job folder."""

    def __init__(self, folder: str | Path, announce: Callable[[str, bool], None] | None = None):
        """`announce(name, skipped)` is called before each stage, so the caller can print a heading."""
        self.path = Path(folder) / BOOK
        self.announce = announce
        self.records: dict[str, StageRecord] = {}
        if self.path.exists():
            raw = read_json_object(self.path, what="stage record of a job")
            try:
                self.records = {name: StageRecord(**rec) for name, rec in raw.get("stages", {}).items()}
            except TypeError:
                raise InterplabError(f"{self.path} is damaged; delete it (finished stages then rerun, "
                                     "resuming from their own files)") from None

    def done(self, name: str) -> bool:
        rec = self.records.get(name)
        return rec is not None and rec.status == "done"

    def _write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.path, {"stages": {n: json_safe(vars(r)) for n, r in self.records.items()}})

    def run(self, name: str, fn: Callable[..., dict[str, Any] | None], *args: Any) -> dict[str, Any]:
        """Run stage `name` as `fn(*args)`, or return its recorded summary if it finished."""
        if self.announce is not None:
            self.announce(name, self.done(name))
        if self.done(name):
            return self.records[name].summary
        self.records[name] = StageRecord("running")
        self._write()
        t0 = time.perf_counter()
        summary = fn(*args) or {}
        self.records[name] = StageRecord("done", round(time.perf_counter() - t0, 2), dict(summary))
        self._write()
        log.debug("stage %s done in %.1fs", name, self.records[name].seconds)
        return self.records[name].summary
