"""The run-folder protocol: one config.json per run, resumable, finished runs marked.

1. `open_run(out, config, resume, overwrite)` decides what to do with `out`:
   - no folder (or an empty one): start fresh and write config.json (atomically);
   - the same config.json, unfinished (a killed or failed run): continue it, whether or not the user
     said --resume, so rerunning the identical command after a crash just works;
   - the same config.json, finished (done.json present): nothing to do, the caller reuses the result;
   - a different config.json: refuse (one line naming --out and --overwrite), keeping the old run;
   - --overwrite: clear a folder that holds a run (never one without config.json: that may be a user's
     folder of other files).
2. `RunFolder.mark_done(summary)` writes done.json last, so a folder that has it is whole.
A damaged config.json or done.json is reported in one line naming the fix, never a traceback.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from interplab.common import InterplabError, get_logger
from interplab.files import json_safe, read_json_object, write_json_atomic

log = get_logger(__name__)

RUN_CONFIG = "config.json"
DONE_FILE = "done.json"


class RunState(Enum):
    FRESH = "fresh"
    CONTINUE = "continue"
    FINISHED = "finished"


@dataclass
class RunFolder:
    """A run folder and what `open_run` decided about it."""

    path: Path
    state: RunState

    @property
    def finished(self) -> bool:
        return self.state is RunState.FINISHED

    def mark_done(self, summary: dict[str, Any] | None = None) -> None:
        """Record that the run finished (written last)."""
        write_json_atomic(self.path / DONE_FILE, {"finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
                                                  "summary": json_safe(summary or {})})

    def done_summary(self) -> dict[str, Any]:
        """The summary recorded by `mark_done`."""
        return dict(read_json_object(self.path / DONE_FILE, what="run completion record").get("summary") or {})


def _clear(out: Path) -> None:
    if not (out / RUN_CONFIG).exists():
        raise InterplabError(f"{out} holds files but no {RUN_CONFIG}; --overwrite only clears run folders, "
                             "choose an empty --out")
    shutil.rmtree(out)


def open_run(out: str | Path, config: dict[str, Any], resume: bool = False, overwrite: bool = False) -> RunFolder:
    """Create, continue or reuse the run folder `out` for `config` (see the module docstring)."""
    out = Path(out)
    config = json_safe(config)
    if out.exists() and not out.is_dir():
        raise InterplabError(f"--out {out} is a file; choose a folder")
    if overwrite and out.exists() and any(out.iterdir()):
        _clear(out)
    cfg_path = out / RUN_CONFIG
    if cfg_path.exists():
        old = read_json_object(cfg_path, what="run configuration")
        if old != config:
            hint = "resume with the same options (see its config.json)" if resume else "pass --overwrite to replace it"
            raise InterplabError(f"{out} holds a run with different settings; {hint}, or choose another --out")
        if (out / DONE_FILE).exists():
            read_json_object(out / DONE_FILE, what="run completion record")  # damaged -> one-line error
            return RunFolder(out, RunState.FINISHED)
        if not resume:
            log.info("continuing the unfinished run in %s (same settings)", out)
        return RunFolder(out, RunState.CONTINUE)
    if resume:
        raise InterplabError(f"{out} has no {RUN_CONFIG}, so there is nothing to resume; drop --resume to start it")
    if out.exists() and any(out.iterdir()):
        raise InterplabError(f"{out} holds files but no {RUN_CONFIG}; choose an empty --out")
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(cfg_path, config)
    return RunFolder(out, RunState.FRESH)
