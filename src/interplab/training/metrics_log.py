"""Metrics as JSON lines (one object per logged step), safe across a kill and resume."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from interplab.files import json_safe


class JsonlMetrics:
    """Appends metric dicts to `path`; an `on_step` callback for `fit` when called with (step, metrics)."""

    def __init__(self, path: str | Path, resume_step: int | None = None):
        """Open for appending. On resume, lines past `resume_step` (logged after the checkpoint the
        run restarts from) are dropped, so the file reads as one uninterrupted run."""
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is not None and self.path.exists():
            kept = [ln for ln in self.read(self.path) if int(ln.get("step", 0)) <= resume_step]
            self.path.write_text("".join(json.dumps(r) + "\n" for r in kept))
        elif resume_step is None:
            self.path.write_text("")

    def __call__(self, step: int, metrics: dict[str, float]) -> None:
        if not metrics:
            return
        with self.path.open("a") as f:
            f.write(json.dumps({k: json_safe(v) for k, v in {"step": step, **metrics}.items()}) + "\n")

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
