"""`interplab serve`: binds 127.0.0.1 by default, prints the URL, maps --sae to the DB's SAE, clear errors."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from interplab.cli import app
from interplab.commands.serve import match_sae_folder
from interplab.common import InterplabError
from interplab.dashboards.db import SaeRecord


@pytest.fixture
def uvicorn_calls(monkeypatch) -> list[dict]:
    calls: list[dict] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append({"app": app, **kw}))
    return calls


def test_serve_binds_loopback_by_default_and_prints_the_url(web_data, uvicorn_calls) -> None:
    result = CliRunner().invoke(app, ["serve", "--db", str(web_data.db_path), "--sae", str(web_data.sae_folder),
                                      "--model", str(web_data.model_dir), "--port", "8123",
                                      "--reports", str(web_data.reports_dir)])
    assert result.exit_code == 0, result.output
    assert uvicorn_calls[0]["host"] == "127.0.0.1" and uvicorn_calls[0]["port"] == 8123
    assert "http://127.0.0.1:8123" in result.output
    live = uvicorn_calls[0]["app"].state.web.live
    assert live.sae_paths == {1: web_data.sae_folder.resolve()} and live.model_override == str(web_data.model_dir)


def test_serve_refuses_a_missing_database(tmp_path: Path, uvicorn_calls) -> None:
    result = CliRunner().invoke(app, ["serve", "--db", str(tmp_path / "none.db")])
    assert isinstance(result.exception, InterplabError) and "interplab dashboards" in str(result.exception)
    assert not uvicorn_calls and not (tmp_path / "none.db").exists()


def _rec(i: int, path: str) -> SaeRecord:
    return SaeRecord(name=f"s{i}", path=path, model="m", hook="h", d_in=1, d_sae=1, arch="topk", id=i)


def test_sae_folder_maps_to_the_sae_built_from_it(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    assert match_sae_folder([_rec(1, str(a)), _rec(2, str(b))], b) == {2: b.resolve()}
    assert match_sae_folder([_rec(1, "/elsewhere")], b) == {1: b.resolve()}  # the only SAE
    with pytest.raises(InterplabError, match="matches no SAE"):
        match_sae_folder([_rec(1, str(a)), _rec(2, "/x")], b)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_serve_on_a_file_that_is_not_sqlite_is_a_one_line_error_and_leaves_it(tmp_path: Path, uvicorn_calls) -> None:
    notes = tmp_path / "notes.db"
    notes.write_text("remember to buy milk\n" * 50)
    before = _digest(notes)
    result = CliRunner().invoke(app, ["serve", "--db", str(notes)])
    msg = str(result.exception)
    assert isinstance(result.exception, InterplabError) and "not a SQLite database" in msg and "\n" not in msg
    assert "interplab dashboards" in msg and not uvicorn_calls and _digest(notes) == before


def test_serve_on_a_sqlite_file_without_dashboards_adds_nothing_to_it(tmp_path: Path, uvicorn_calls) -> None:
    other = tmp_path / "app.sqlite"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE users (name TEXT)")
    before = _digest(other)
    result = CliRunner().invoke(app, ["serve", "--db", str(other)])
    assert isinstance(result.exception, InterplabError) and "holds no dashboards" in str(result.exception)
    assert not uvicorn_calls and _digest(other) == before
    with sqlite3.connect(other) as conn:
        assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")] == ["users"]


def test_serve_on_a_database_with_a_damaged_header_is_a_one_line_error(web_data, tmp_path: Path,
                                                                       uvicorn_calls) -> None:
    damaged = tmp_path / "damaged.db"
    data = bytearray(web_data.db_path.read_bytes())
    data[16:100] = b"\xff" * 84  # page size, versions, counters: SQLite no longer reads it as a database
    damaged.write_bytes(bytes(data))
    before = _digest(damaged)
    result = CliRunner().invoke(app, ["serve", "--db", str(damaged)])
    msg = str(result.exception)
    assert isinstance(result.exception, InterplabError) and "damaged" in msg and "left as it is" in msg
    assert "\n" not in msg and not uvicorn_calls and _digest(damaged) == before


def test_serve_with_a_missing_driver_masks_the_password(uvicorn_calls) -> None:
    result = CliRunner().invoke(app, ["serve", "--db", "postgresql+nosuchdriver://me:hunter2@db.example/dash"])
    msg = str(result.exception)
    assert isinstance(result.exception, InterplabError) and "hunter2" not in msg + result.output
    assert "me:***@db.example" in msg and not uvicorn_calls


def test_sae_folder_matches_a_relative_path_of_an_older_database(tmp_path: Path) -> None:
    db_file = tmp_path / "runs" / "dash.db"
    folder = tmp_path / "runs" / "sae"
    assert match_sae_folder([_rec(1, "/x"), _rec(2, "sae")], folder, db_file) == {2: folder.resolve()}


def test_serve_answers_only_loopback_names_unless_told_otherwise(web_data, uvicorn_calls) -> None:
    base = ["serve", "--db", str(web_data.db_path)]
    assert CliRunner().invoke(app, base).exit_code == 0
    assert CliRunner().invoke(app, [*base, "--host", "0.0.0.0", "--allow-host", "dash.lan", "--max-body", "4096"]
                              ).exit_code == 0
    assert CliRunner().invoke(app, [*base, "--host", "192.168.1.5"]).exit_code == 0
    local, lan, bound = (TestClient(c["app"], base_url=u) for c, u in zip(
        uvicorn_calls, ["http://dash.lan", "http://dash.lan", "http://192.168.1.5:8000"], strict=True))
    assert local.get("/api/saes").status_code == 400  # a loopback server does not answer dash.lan
    assert lan.get("/api/saes").status_code == 200 and bound.get("/api/saes").status_code == 200
    assert lan.post("/api/live", json={"sae_id": 1, "text": "x" * 5000}).status_code == 413
    zero = CliRunner().invoke(app, [*base, "--max-body", "0"])
    assert isinstance(zero.exception, InterplabError) and "positive" in str(zero.exception)


def test_the_printed_error_line_keeps_the_fix_and_hides_the_password() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[3] / "src"),
                                                        os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "interplab.cli", "serve", "--db",
                           "postgresql+nosuchdriver://me:hunter2@db.example/dash"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "hunter2" not in done.stderr and "me:***@db.example" in done.stderr
    assert "pip install 'psycopg[binary]'" in done.stderr  # brackets are text, not rich markup
    assert len(done.stderr.strip().splitlines()) == 1
