"""`interplab` as the doc blocks see it in tests/integration/test_doc_blocks_run.py.

Runs `python -m interplab.cli ARGS` with the block's doc-test args appended where the command has the
option (DOC_TEST_ARGS, a JSON list). Commands that would serve forever are checked instead:
`serve` / `explain-server` start on a free port, must answer an HTTP GET, then are stopped;
`analyze` / `demo` get --no-serve. With DOC_TEST_SERVERS=as-written servers run as written (the block
waits for them and stops them).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from doc_blocks import applicable_args, option_names, resolve  # noqa: E402

SERVE_TIMEOUT_S = float(os.environ.get("DOC_TEST_SERVE_TIMEOUT", "600"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def check_server(argv: list[str], url_path: str) -> int:
    """Start the server, wait for a 200 on url_path, stop it. 0 when it answered."""
    port = free_port()
    argv = [*argv, "--port", str(port)]
    proc = subprocess.Popen(argv)
    deadline = time.monotonic() + SERVE_TIMEOUT_S
    url = f"http://127.0.0.1:{port}{url_path}"
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                print(f"doc-test: server exited with {proc.returncode} before answering {url}", file=sys.stderr)
                return proc.returncode or 1
            try:
                with urllib.request.urlopen(url, timeout=10) as resp:
                    status = resp.status
                    resp.read()
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                time.sleep(0.5)
                continue
            print(f"doc-test: GET {url} -> {status}", file=sys.stderr)
            return 0 if status == 200 else 1
        print(f"doc-test: no answer from {url} in {SERVE_TIMEOUT_S:.0f} s", file=sys.stderr)
        return 1
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> int:
    args = sys.argv[1:]
    extra = json.loads(os.environ.get("DOC_TEST_ARGS", "[]"))
    try:
        path, leaf, _ = resolve(args)
    except LookupError:
        path, leaf = [], None
    if leaf is not None and not hasattr(leaf, "commands"):
        args = [*args, *applicable_args(extra, leaf)]
        if "--no-serve" in option_names(leaf) and "--no-serve" not in args:
            args.append("--no-serve")
    argv = [sys.executable, "-m", "interplab.cli", *args]
    print(f"doc-test: interplab {' '.join(args)}", file=sys.stderr, flush=True)
    if os.environ.get("DOC_TEST_SERVERS") == "as-written":
        pass
    elif path == ["serve"]:
        return check_server(argv, "/")
    elif path == ["explain-server"]:
        return check_server(argv, "/v1/models")
    from interplab.cli import main as cli_main  # already imported by resolve(): run it in this process

    sys.argv = ["interplab", *args]
    try:
        cli_main()
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
