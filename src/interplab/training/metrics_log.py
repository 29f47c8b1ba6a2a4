"""Metrics as JSON lines (one object per logged step), safe across a kill and resume."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from interplab.files import json_safe


class JsonlMetrics:
    """Appends metric dicts to `path`; an `on_step` callback for `fit` when called with (step, metrics).

    A resumed run logs again from the step its checkpoint was saved at, which may be earlier than the
    file's last line (steps logged after that checkpoint, or a damaged newest checkpoint skipped).
    Writing step s therefore first drops every line at or after s, so the file always reads as one
    uninterrupted run, whichever checkpoint the trainer resumed from.
    """

    def __init__(self, path: str | Path, resume: bool = False):
        """Open for appending (`resume`) or start an empty file."""
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume and self.path.exists():
            lines = self.read(self.path)  # rewritten whole: a line torn by the kill must not precede new ones
            self.path.write_text("".join(json.dumps(r) + "\n" for r in lines))
            self._last = max((int(ln.get("step", 0)) for ln in lines), default=-1)
        else:
            self.path.write_text("")
            self._last = -1

    def __call__(self, step: int, metrics: dict[str, float]) -> None:
        if not metrics:
            return
        if step <= self._last:
            kept = [ln for ln in self.read(self.path) if int(ln.get("step", 0)) < step]
            self.path.write_text("".join(json.dumps(r) + "\n" for r in kept))
        with self.path.open("a") as f:
            f.write(json.dumps({k: json_safe(v) for k, v in {"step": step, **metrics}.items()}) + "\n")
        self._last = step

    @staticmethod
    def read(path: str | Path) -> list[dict[str, Any]]:
        """All complete lines (a line cut short by a kill is skipped)."""
        out = []
        for line in Path(path).read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out
