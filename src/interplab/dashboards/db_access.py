"""Where a dashboards database and its SAEs are: database URLs (and how they are shown), the checks made
before a SQLite file is opened, and what the `path` column of an SAE row leads to.

- A URL is shown only through `masked_url` (the password replaced by ``***``), in every message and log.
- A SQLite file is checked without writing to it: a file that is not SQLite, a damaged one (a full
  ``quick_check`` before a build writes), or one without dashboards (when only reading) is refused with
  one line naming the fix, and left as it is.
- SAE paths, and model folders, are stored absolute (`stored_sae_path`, `stored_model`). Databases written
  before kept them as given; `sae_locations` and `model_location` read those relative to the database's
  folder too.
- Ids beyond `MAX_INTEGER` cannot be in a database (`storable`): the readers answer "none" for them.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from interplab.common import InterplabError

MAX_INTEGER = 2**63 - 1  # SQLite's INTEGER (and the driver's bind) is signed 64-bit
NEURONS = "neurons:"  # prefix of the `path` of neuron dashboards (no SAE)
SQLITE_MAGIC = b"SQLite format 3\x00"  # the first 16 bytes of every SQLite database file
# scheme://user:password@ -> scheme://user:***@; the password runs to the last "@" before a space, so an
# unescaped "@" in it is hidden too (at worst a query's "@" hides more than the password)
_PASSWORD = re.compile(r"\b([a-zA-Z][\w+.-]*://[^:/@\s]*):\S*@")
OPEN_FIX = ("pass a SQLite file path in an existing folder or a SQLAlchemy URL whose driver is installed "
            "(PostgreSQL: pip install 'psycopg[binary]')")


def database_url(url_or_path: str | Path) -> str:
    """A SQLAlchemy URL: strings with '://' pass through, anything else is a SQLite file path."""
    text = str(url_or_path)
    if "://" in text:
        return text
    return f"sqlite:///{Path(text).expanduser().resolve()}"


def masked_url(text: str | Path) -> str:
    """A database URL, or any text holding one, as it may be printed or logged: passwords become ***."""
    return _PASSWORD.sub(r"\1:***@", str(text))


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (None for other engines and in-memory SQLite)."""
    if not url.startswith("sqlite:///") or url in ("sqlite:///", "sqlite:///:memory:"):
        return None
    return Path(url[len("sqlite:///"):].split("?", 1)[0])


def stored_sae_path(path: str) -> str:
    """An SAE path as the `path` column keeps it: absolute (the store folder of "neurons:" rows too)."""
    if path.startswith(NEURONS):
        return NEURONS + str(Path(path[len(NEURONS):]).expanduser().resolve())
    return str(Path(path).expanduser().resolve())


def stored_model(model: str) -> str:
    """A model as the `model` column keeps it: a local folder absolute (like SAE paths), a hub id as it is."""
    path = Path(model).expanduser()
    return str(path.resolve()) if path.is_dir() else model


def model_location(stored: str, db_file: Path | None) -> str:
    """The model a `model` value names: itself, unless an older database stored a relative folder that is
    not here but beside the database."""
    path = Path(stored).expanduser()
    if path.is_absolute() or db_file is None or path.is_dir() or not (db_file.parent / path).is_dir():
        return stored
    return str(db_file.parent / path)


def sae_locations(stored: str, db_file: Path | None) -> list[Path]:
    """Where the SAE of a `path` value may be, most likely first: the path itself when absolute; for a
    relative one (databases written before paths were stored absolute), the path from the database's
    folder, then from the current folder."""
    path = Path(stored).expanduser()
    if path.is_absolute():
        return [path]
    tried = [db_file.parent / path] if db_file is not None else []
    return list(dict.fromkeys([*tried, Path.cwd() / path]))


def first_line(exc: BaseException) -> str:
    return masked_url((str(exc).strip().splitlines() or [type(exc).__name__])[0])


def check_sqlite_file(path: Path, *, writing: bool) -> None:
    """Refuse a file that is not a SQLite database, or is damaged, before anything writes to it.

    writing: a build will write: run SQLite's full `quick_check` (reads the whole file once). Reading: only
    the schema is read, and the file must hold dashboards (a `saes` table).
    """
    with path.open("rb") as handle:
        head = handle.read(len(SQLITE_MAGIC))
    if head != SQLITE_MAGIC:
        raise InterplabError(f"{path} is not a SQLite database (it was left as it is): pass the .db file written "
                             "by `interplab dashboards`, or a new file name to build one")
    try:
        # mode=rw never creates a file; a read-write connection (unlike a read-only one) removes the -wal and
        # -shm files it made when it closes last
        conn = sqlite3.connect(f"{path.as_uri()}?mode=rw", uri=True)
        try:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            problems = [str(r[0]) for r in conn.execute("PRAGMA quick_check(3)")] if writing else ["ok"]
        finally:
            conn.close()
    except sqlite3.OperationalError as exc:  # locked, unreadable: nothing says the file is damaged
        raise InterplabError(f"cannot read the SQLite database {path} ({exc}): check that it is readable and "
                             "that no other program holds it locked") from None
    except sqlite3.DatabaseError as exc:  # "file is not a database", "database disk image is malformed"
        tables, problems = set(), [str(exc)]
    if problems != ["ok"]:
        raise InterplabError(f"the SQLite database {path} is damaged ({'; '.join(problems)[:200]}); it was left as "
                             "it is: restore it from a copy, or build into a new file with another --db")
    if not writing and "saes" not in tables:
        raise InterplabError(f"{path} holds no dashboards (no saes table): pass the database written by "
                             "`interplab dashboards`")


def storable(*values: int | None) -> bool:
    """Whether every value fits the database's integers: a larger id is in no row (and SQLite's driver
    raises OverflowError when asked for one)."""
    return all(v is None or -MAX_INTEGER - 1 <= v <= MAX_INTEGER for v in values)

