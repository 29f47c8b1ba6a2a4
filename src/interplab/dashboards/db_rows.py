"""Rows of the dashboards database as the builder writes them, encoded fast (the same bytes as before).

A build of 16k latents writes ~300k example rows of ~33 tokens each; per row, encoding its three lists
as JSON and SQLAlchemy's per-row parameter handling used to cost more than the scans. So:

1. Lists of numbers are encoded with `repr`: for finite floats and ints Python writes exactly the
   text `json.dumps` writes (both use the shortest repr; ", " between items). A list holding NaN or
   infinity (repr "nan", "inf": the only outputs with an "n") goes through `json.dumps` as before.
2. Rows are tuples in column order, inserted with one `executemany` straight to the driver on SQLite
   (qmark parameters), through SQLAlchemy Core elsewhere. Readers see the same columns and text.
3. The reads of a feature page (`PreparedSelect`) likewise: compiled once, run on the driver's cursor on
   SQLite (SQLAlchemy's per-execution work was most of the page's read time), through Core elsewhere.
"""

from __future__ import annotations

import json
from collections import namedtuple
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, Table, insert

if TYPE_CHECKING:
    from interplab.dashboards.db import ExampleRecord, FeatureRecord

FEATURE_COLUMNS = ("sae_id", "idx", "frequency", "max_act", "mean_act", "hist_edges", "hist_counts", "logits_pos",
                   "logits_neg", "neighbours")
EXAMPLE_COLUMNS = ("sae_id", "idx", "kind", "rank", "bucket", "max_act", "tokens", "acts", "token_ids", "position")
TOKEN_COLUMNS = ("sae_id", "idx", "token", "score")


def json_numbers(values: Sequence[float] | Sequence[int]) -> str:
    """`json.dumps(list(values))` for a list of Python floats or ints, several times faster."""
    text = repr(values if isinstance(values, list) else list(values))
    return json.dumps(list(values)) if "n" in text else text


def feature_row(sae_id: int, f: FeatureRecord) -> tuple[Any, ...]:
    return (sae_id, f.idx, f.frequency, f.max_act, f.mean_act, json_numbers(f.hist_edges), json_numbers(f.hist_counts),
            json.dumps(f.logits_pos), json.dumps(f.logits_neg), json.dumps(f.neighbours))


def example_row(sae_id: int, e: ExampleRecord) -> tuple[Any, ...]:
    return (sae_id, e.idx, e.kind, e.rank, e.bucket, e.max_act, json.dumps(e.tokens), json_numbers(e.acts),
            json_numbers(e.token_ids), e.position)


def insert_rows(conn: Any, table: Table, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
    """INSERT `rows` (tuples in `columns` order) into `table` on the connection `conn`, as one executemany."""
    if not rows:
        return
    if conn.dialect.paramstyle == "qmark":  # SQLite: straight to the driver
        quote = conn.dialect.identifier_preparer.quote
        sql = (f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) "
               f"VALUES ({', '.join('?' * len(columns))})")
        conn.exec_driver_sql(sql, rows)
    else:
        conn.execute(insert(table), [dict(zip(columns, r, strict=True)) for r in rows])


class PreparedSelect:
    """A SELECT with named `bindparam`s, compiled once per dialect. `all(conn, **params)` returns its rows
    (attribute access by column name, like SQLAlchemy's rows)."""

    def __init__(self, stmt: Select[Any]) -> None:
        self.stmt = stmt
        self.row: Any = namedtuple("row", list(stmt.selected_columns.keys()))  # type: ignore[misc]
        self._compiled: dict[str, tuple[str, tuple[str, ...]]] = {}

    def all(self, conn: Any, **params: Any) -> list[Any]:
        if conn.dialect.paramstyle != "qmark":
            return list(conn.execute(self.stmt, params).all())
        if conn.dialect.name not in self._compiled:
            compiled = self.stmt.compile(dialect=conn.dialect)
            self._compiled[conn.dialect.name] = (compiled.string, tuple(compiled.positiontup or ()))
        sql, names = self._compiled[conn.dialect.name]
        cursor = conn.connection.cursor()
        try:
            cursor.execute(sql, tuple(params[n] for n in names))
            return [self.row._make(r) for r in cursor.fetchall()]
        finally:
            cursor.close()

    def first(self, conn: Any, **params: Any) -> Any:
        rows = self.all(conn, **params)
        return rows[0] if rows else None
