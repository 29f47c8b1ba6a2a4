"""Every shell block of README.md and docs/*.md runs as written (slow: minutes per doc).

Each doc runs in its own empty folder, its blocks in order (a `defer` block last), so later blocks use
what earlier ones wrote. A block runs under `bash -e -o pipefail` with `interplab` on PATH being
tests/doc_shim.py: the worktree's CLI with the block's `<!-- doc-test: ... -->` args appended (small
sizes), servers started on a free port, checked by an HTTP GET and stopped. Blocks marked
`<!-- doc-test: skip: REASON -->` are counted and printed, not run.

    PYTHONPATH=src python -m pytest -m slow -s tests/integration/test_doc_blocks_run.py -k toy-lab
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from doc_blocks import REPO, Block, doc_files, extract_blocks

pytestmark = pytest.mark.slow

BLOCK_TIMEOUT_S = float(os.environ.get("DOC_TEST_BLOCK_TIMEOUT", "2400"))
DOCS = [d for d in doc_files() if extract_blocks(d)]


def ordered(blocks: list[Block]) -> list[Block]:
    return [b for b in blocks if not b.directives.defer] + [b for b in blocks if b.directives.defer]


def shim_dir(tmp: Path) -> Path:
    """`interplab` -> tests/doc_shim.py, `python`/`python3` -> this interpreter."""
    folder = tmp / ".doc-test-bin"
    folder.mkdir()
    scripts = {
        "interplab": f'#!/bin/sh\nexec "{sys.executable}" "{REPO / "tests" / "doc_shim.py"}" "$@"\n',
        "python": f'#!/bin/sh\nexec "{sys.executable}" "$@"\n',
        "python3": f'#!/bin/sh\nexec "{sys.executable}" "$@"\n',
    }
    for name, text in scripts.items():
        (folder / name).write_text(text)
        (folder / name).chmod(0o755)
    return folder


def run_block(block: Block, cwd: Path, bin_dir: Path) -> tuple[int, str, float]:
    env = dict(os.environ)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["DOC_TEST_ARGS"] = json.dumps(block.directives.args)
    env["DOC_TEST_SERVERS"] = "as-written" if block.directives.servers_as_written else "check"
    script = ("set -e -o pipefail\n"
              "trap 'jobs -p | xargs -r kill 2>/dev/null || true' EXIT\n" + block.script())
    start = time.monotonic()
    # its own session: on a timeout the whole group goes (commands and servers, not only bash)
    proc = subprocess.Popen(["bash", "-c", script], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=BLOCK_TIMEOUT_S)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        rest, _ = proc.communicate()
        code, output = 124, f"{rest or ''}\ntimed out after {BLOCK_TIMEOUT_S:.0f} s"
    return code, output, time.monotonic() - start


@pytest.mark.parametrize("doc", DOCS, ids=[d.name for d in DOCS])
def test_doc_blocks_run_as_written(doc: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bin_dir = shim_dir(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    lines = []
    failure = None
    for block in ordered(extract_blocks(doc)):
        if block.directives.skip:
            lines.append(f"SKIP {block.where}: {block.directives.skip}")
            continue
        code, output, seconds = run_block(block, work, bin_dir)
        lines.append(f"{'ok  ' if code == 0 else 'FAIL'} {block.where} ({seconds:.0f} s)")
        if code != 0:
            failure = f"{block.where} exited {code}:\n{block.script()}\n--- output (tail) ---\n{output[-4000:]}"
            break
    with capsys.disabled():
        print(f"\n{doc.name}:\n  " + "\n  ".join(lines))
    if failure:
        pytest.fail(failure)
