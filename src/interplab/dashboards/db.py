"""The dashboards database: SAEs, per-latent statistics, example contexts, explanations.

SQLite by default (a file path); any SQLAlchemy URL (``postgresql+psycopg://...``) selects another
engine. Written incrementally by ``interplab dashboards`` (one transaction per batch of latents, so a
killed build keeps every finished batch and ``build_state`` says where to resume) and read by the web
app and ``interplab explain``.

Lists (tokens, activations, histogram bins, logit effects, neighbours) are stored as JSON text: the
pages always read a latent's row whole, and JSON text works the same on every engine.

The `path` of an SAE row is absolute (``upsert_sae`` resolves a relative one against the writer's current
folder), and so is its `model` when that is a local folder. URLs, the checks made before a SQLite file is opened, and where an SAE path leads are in
``db_access.py``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from interplab.common import InterplabError
from interplab.dashboards.db_access import (
    OPEN_FIX,
    check_sqlite_file,
    database_url,
    first_line,
    masked_url,
    sqlite_file,
    storable,
    stored_model,
    stored_sae_path,
)
from interplab.dashboards.db_rows import (
    EXAMPLE_COLUMNS,
    FEATURE_COLUMNS,
    TOKEN_COLUMNS,
    PreparedSelect,
    example_row,
    feature_row,
    insert_rows,
)

__all__ = ["DashboardDB", "ExampleRecord", "ExplanationRecord", "FeatureHit", "FeaturePage", "FeatureRecord",
           "SaeRecord", "database_url"]

metadata = MetaData()

saes = Table(
    "saes", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("path", Text, nullable=False),
    Column("model", Text, nullable=False),
    Column("hook", String(200), nullable=False),
    Column("d_in", Integer, nullable=False),
    Column("d_sae", Integer, nullable=False),
    Column("arch", String(50), nullable=False),
    Column("n_tokens", Integer, nullable=False, default=0),
    Column("created_at", String(40), nullable=False),
    Column("meta", Text, nullable=False, default="{}"),
)

features = Table(
    "features", metadata,
    Column("sae_id", Integer, primary_key=True),
    Column("idx", Integer, primary_key=True),
    Column("frequency", Float, nullable=False),  # fraction of tokens where the latent is > 0
    Column("max_act", Float, nullable=False),
    Column("mean_act", Float, nullable=False),  # mean over the tokens where it fires
    Column("hist_edges", Text, nullable=False),  # JSON [n_bins + 1] over the positive activations
    Column("hist_counts", Text, nullable=False),  # JSON [n_bins]
    Column("logits_pos", Text, nullable=False),  # JSON [[token, value], ...], most promoted first
    Column("logits_neg", Text, nullable=False),  # JSON [[token, value], ...], most suppressed first
    Column("neighbours", Text, nullable=False),  # JSON [[latent, cosine], ...] by decoder cosine
    # the latent list pages sorted by these; without them a deep page sorts the whole table (seconds at 100k)
    Index("ix_features_frequency", "sae_id", "frequency"),
    Index("ix_features_max_act", "sae_id", "max_act"),
)

examples = Table(
    "examples", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("sae_id", Integer, nullable=False),
    Column("idx", Integer, nullable=False),
    Column("kind", String(20), nullable=False),  # "top" or "quantile"
    Column("rank", Integer, nullable=False),  # order within (latent, kind)
    Column("bucket", String(40), nullable=True),  # quantile interval, e.g. "0.25-0.50"
    Column("max_act", Float, nullable=False),
    Column("tokens", Text, nullable=False),  # JSON [str]
    Column("acts", Text, nullable=False),  # JSON [float], aligned with tokens
    Column("token_ids", Text, nullable=False),  # JSON [int]
    Column("position", Integer, nullable=False),  # row * context + token of the maximum, in the store
    Index("ix_examples_latent", "sae_id", "idx", "kind", "rank"),
)

feature_tokens = Table(
    "feature_tokens", metadata,
    Column("sae_id", Integer, primary_key=True),
    Column("idx", Integer, primary_key=True),
    Column("token", String(200), primary_key=True),  # normalised: stripped, lower-case
    Column("score", Float, nullable=False),  # max activation of the latent on this token
    Index("ix_feature_tokens_token", "sae_id", "token"),
    Index("ix_feature_tokens_by_token", "token", "score"),  # search across all SAEs
)

explanations = Table(
    "explanations", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("sae_id", Integer, nullable=False),
    Column("idx", Integer, nullable=False),
    Column("text", Text, nullable=False),
    Column("explainer", String(200), nullable=False),
    Column("detection", Float, nullable=True),  # balanced accuracy of detection scoring
    Column("fuzzing", Float, nullable=True),  # balanced accuracy of fuzzing scoring
    Column("created_at", String(40), nullable=False),
    Index("ix_explanations_latent", "sae_id", "idx"),
)

meta_latents = Table(
    "meta_latents", metadata,
    Column("sae_id", Integer, primary_key=True),
    Column("idx", Integer, primary_key=True),
    Column("metas", Text, nullable=False),  # JSON [[meta-latent, activation], ...], strongest first
    Column("shared", Text, nullable=False),  # JSON [[latent, score], ...] sharing meta-latents, best first
)

build_state = Table(
    "build_state", metadata,
    Column("sae_id", Integer, primary_key=True),
    Column("key", String(100), primary_key=True),
    Column("value", Text, nullable=False),  # JSON
)


# The reads of a feature page, compiled once (db_rows.PreparedSelect).
_LATENT: dict[str, Any] = {"sae_id": bindparam("sae_id"), "idx": bindparam("idx")}
_SAE_BY_ID = PreparedSelect(select(saes).where(saes.c.id == _LATENT["sae_id"]))
_FEATURE = PreparedSelect(select(features).where(and_(*(features.c[k] == v for k, v in _LATENT.items()))))
_EXAMPLES = PreparedSelect(select(examples).where(and_(*(examples.c[k] == v for k, v in _LATENT.items())))
                           .order_by(examples.c.kind, examples.c.rank))
_EXPLANATIONS = PreparedSelect(select(explanations).where(and_(*(explanations.c[k] == v for k, v in _LATENT.items())))
                               .order_by(explanations.c.id.desc()))
_META = PreparedSelect(select(meta_latents).where(and_(*(meta_latents.c[k] == v for k, v in _LATENT.items()))))


@dataclass
class SaeRecord:
    name: str
    path: str  # SAE folder or weights file, stored absolute; "neurons:<store folder>" for neuron dashboards
    model: str  # hub id, or a local model folder (stored absolute)
    hook: str
    d_in: int
    d_sae: int
    arch: str
    n_tokens: int = 0
    meta: dict[str, Any] = field(default_factory=dict)
    id: int | None = None
    created_at: str = ""


@dataclass
class FeatureRecord:
    idx: int
    frequency: float
    max_act: float
    mean_act: float
    hist_edges: list[float]
    hist_counts: list[int]
    logits_pos: list[tuple[str, float]] = field(default_factory=list)
    logits_neg: list[tuple[str, float]] = field(default_factory=list)
    neighbours: list[tuple[int, float]] = field(default_factory=list)


@dataclass
class ExampleRecord:
    idx: int
    kind: str
    rank: int
    max_act: float
    tokens: list[str]
    acts: list[float]
    token_ids: list[int]
    position: int
    bucket: str | None = None


@dataclass
class ExplanationRecord:
    idx: int
    text: str
    explainer: str
    detection: float | None
    fuzzing: float | None
    created_at: str
    sae_id: int = 0


@dataclass
class MetaRecord:
    """A latent's meta-latents (from a meta-SAE on the decoder rows) and the latents sharing them."""

    idx: int
    metas: list[tuple[int, float]]
    shared: list[tuple[int, float]]


@dataclass
class FeaturePage:
    """A latent's row with its examples and explanations (`DashboardDB.get_feature_page`)."""

    feature: FeatureRecord
    top: list[ExampleRecord]
    quantile: list[ExampleRecord]
    explanations: list[ExplanationRecord]


@dataclass
class FeatureHit:
    """One search result."""

    sae_id: int
    idx: int
    score: float
    text: str  # the matched token or explanation


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _norm_token(token: str) -> str:
    return token.strip().lower().lstrip("ġ▁#")[:200]


class DashboardDB:
    """Reads and writes the dashboards database; tables are created on first use. Readers answer "none"
    for ids no row can have (beyond 64-bit integers) instead of failing."""

    def __init__(self, url_or_path: str | Path, *, create: bool = True) -> None:
        """create: a build that writes (tables made, a new SQLite file allowed); False: an existing database
        is read (a missing SQLite file, or one without dashboards, is an error)."""
        url = database_url(url_or_path)
        self.url = url  # with its password: show it only as masked_url(self.url)
        self.file = sqlite_file(url)
        if self.file is not None and not create and not self.file.exists():
            raise InterplabError(f"no dashboards database at {self.file}: build one with `interplab dashboards`")
        if self.file is not None and self.file.is_file() and self.file.stat().st_size > 0:
            check_sqlite_file(self.file, writing=create)
        try:
            self.engine: Engine = create_engine(url, future=True)
            if url.startswith("sqlite"):
                event.listen(self.engine, "connect", _sqlite_pragmas)
            metadata.create_all(self.engine)
            _create_missing_indexes(self.engine)
        except (ImportError, SQLAlchemyError, ValueError) as exc:
            raise InterplabError(f"cannot open the database {masked_url(url)} ({first_line(exc)}); "
                                 f"{OPEN_FIX}") from None

    def close(self) -> None:
        self.engine.dispose()

    # ---- SAEs -----------------------------------------------------------------------------------
    def upsert_sae(self, rec: SaeRecord) -> int:
        """Insert the SAE by name, or update its description if the name exists; returns its id. A relative
        `path` (and a `model` that is a local folder) is stored resolved against the current folder."""
        values = dict(path=stored_sae_path(rec.path), model=stored_model(rec.model), hook=rec.hook, d_in=rec.d_in, d_sae=rec.d_sae,
                      arch=rec.arch, n_tokens=rec.n_tokens, meta=json.dumps(rec.meta))
        with self.engine.begin() as conn:
            row = conn.execute(select(saes.c.id).where(saes.c.name == rec.name)).first()
            if row is not None:
                conn.execute(update(saes).where(saes.c.id == row.id).values(**values))
                return int(row.id)
            result = conn.execute(insert(saes).values(name=rec.name, created_at=_now(), **values))
            key = result.inserted_primary_key
            assert key is not None  # an autoincrement insert always returns its key
            return int(key[0])

    def list_saes(self) -> list[SaeRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(saes).order_by(saes.c.id)).all()
        return [_sae_from_row(r) for r in rows]

    def get_sae(self, sae_id: int) -> SaeRecord | None:
        if not storable(sae_id):
            return None
        with self.engine.connect() as conn:
            row = _SAE_BY_ID.first(conn, sae_id=sae_id)
        return None if row is None else _sae_from_row(row)

    def get_sae_by_name(self, name: str) -> SaeRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(saes).where(saes.c.name == name)).first()
        return None if row is None else _sae_from_row(row)

    # ---- features and examples ------------------------------------------------------------------
    def write_latents(self, sae_id: int, feats: Sequence[FeatureRecord], exs: Sequence[ExampleRecord],
                      state: dict[str, Any] | None = None) -> None:
        """Replace the rows of these latents (statistics, examples, search tokens) in one transaction.

        Passing the build's resume state here commits it atomically with the rows it describes.
        """
        ids = [f.idx for f in feats]
        with self.engine.begin() as conn:
            for chunk in _chunks(ids, 500):
                for table in (features, examples, feature_tokens):
                    conn.execute(delete(table).where(and_(table.c.sae_id == sae_id, table.c.idx.in_(chunk))))
            insert_rows(conn, features, FEATURE_COLUMNS, [feature_row(sae_id, f) for f in feats])
            insert_rows(conn, examples, EXAMPLE_COLUMNS, [example_row(sae_id, e) for e in exs])
            insert_rows(conn, feature_tokens, TOKEN_COLUMNS, _search_tokens(sae_id, exs))
            for key, value in (state or {}).items():
                _set_state(conn, sae_id, key, value)

    def clear_latents(self, sae_id: int) -> None:
        """Drop an SAE's latent rows (statistics, examples, search tokens) and its build state, in one
        transaction; the SAE row and its explanations stay. Used when a build starts over."""
        with self.engine.begin() as conn:
            for table in (features, examples, feature_tokens, build_state):
                conn.execute(delete(table).where(table.c.sae_id == sae_id))

    def write_meta_latents(self, sae_id: int, records: Sequence[MetaRecord]) -> None:
        """Replace the SAE's meta-latent rows with `records`, in one transaction."""
        rows = [{"sae_id": sae_id, "idx": r.idx, "metas": json.dumps([[int(m), float(v)] for m, v in r.metas]),
                 "shared": json.dumps([[int(j), float(v)] for j, v in r.shared])} for r in records]
        with self.engine.begin() as conn:
            conn.execute(delete(meta_latents).where(meta_latents.c.sae_id == sae_id))
            if rows:
                conn.execute(insert(meta_latents), rows)

    def get_meta_latents(self, sae_id: int, idx: int) -> MetaRecord | None:
        if not storable(sae_id, idx):
            return None
        with self.engine.connect() as conn:
            row = _META.first(conn, sae_id=sae_id, idx=idx)
        if row is None:
            return None
        return MetaRecord(row.idx, [(int(m), float(v)) for m, v in json.loads(row.metas)],
                          [(int(j), float(v)) for j, v in json.loads(row.shared)])

    def n_features(self, sae_id: int) -> int:
        if not storable(sae_id):
            return 0
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).where(features.c.sae_id == sae_id)).scalar_one())

    def get_feature(self, sae_id: int, idx: int) -> FeatureRecord | None:
        if not storable(sae_id, idx):
            return None
        with self.engine.connect() as conn:
            row = _FEATURE.first(conn, sae_id=sae_id, idx=idx)
        return None if row is None else _feature_from_row(row)

    def list_features(self, sae_id: int, *, offset: int = 0, limit: int = 100,
                      order: str = "idx") -> list[FeatureRecord]:
        """A page of latents ordered by index, or by "frequency" / "max_act" (largest first)."""
        columns = {"idx": features.c.idx, "frequency": features.c.frequency.desc(),
                   "max_act": features.c.max_act.desc()}
        if order not in columns:
            raise InterplabError(f"unknown order {order!r}: use one of {', '.join(columns)}")
        if not storable(sae_id, offset, limit):
            return []
        query = (select(features).where(features.c.sae_id == sae_id).order_by(columns[order])
                 .offset(offset).limit(limit))
        with self.engine.connect() as conn:
            return [_feature_from_row(r) for r in conn.execute(query).all()]

    def get_examples(self, sae_id: int, idx: int, kind: str = "top") -> list[ExampleRecord]:
        if not storable(sae_id, idx):
            return []
        query = (select(examples).where(and_(examples.c.sae_id == sae_id, examples.c.idx == idx,
                                             examples.c.kind == kind)).order_by(examples.c.rank))
        with self.engine.connect() as conn:
            return [_example_from_row(r) for r in conn.execute(query).all()]

    def get_feature_page(self, sae_id: int, idx: int) -> FeaturePage | None:
        """Everything a feature page shows, read over one connection: the latent's row, its top and quantile
        examples (rank order) and its explanations (newest first); None for a latent without a row."""
        if not storable(sae_id, idx):
            return None
        with self.engine.connect() as conn:
            row = _FEATURE.first(conn, sae_id=sae_id, idx=idx)
            if row is None:
                return None
            exs = [_example_from_row(r) for r in _EXAMPLES.all(conn, sae_id=sae_id, idx=idx)]
            expl = [_explanation_from_row(r) for r in _EXPLANATIONS.all(conn, sae_id=sae_id, idx=idx)]
        return FeaturePage(feature=_feature_from_row(row), top=[e for e in exs if e.kind == "top"],
                           quantile=[e for e in exs if e.kind == "quantile"], explanations=expl)

    def search_by_token(self, token: str, *, sae_id: int | None = None, limit: int = 50) -> list[FeatureHit]:
        """Latents whose top contexts peak on this token, strongest first."""
        if not storable(sae_id, limit):
            return []
        cond = feature_tokens.c.token == _norm_token(token)
        if sae_id is not None:
            cond = and_(cond, feature_tokens.c.sae_id == sae_id)
        query = select(feature_tokens).where(cond).order_by(feature_tokens.c.score.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [FeatureHit(r.sae_id, r.idx, r.score, r.token) for r in conn.execute(query).all()]

    # ---- explanations ---------------------------------------------------------------------------
    def write_explanation(self, sae_id: int, idx: int, text: str, explainer: str,
                          detection: float | None = None, fuzzing: float | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(explanations).values(sae_id=sae_id, idx=idx, text=text, explainer=explainer,
                                                     detection=detection, fuzzing=fuzzing, created_at=_now()))

    def get_explanations(self, sae_id: int, idx: int) -> list[ExplanationRecord]:
        if not storable(sae_id, idx):
            return []
        with self.engine.connect() as conn:
            return [_explanation_from_row(r) for r in _EXPLANATIONS.all(conn, sae_id=sae_id, idx=idx)]

    def search_by_explanation(self, text: str, *, sae_id: int | None = None, limit: int = 50) -> list[FeatureHit]:
        """Latents whose explanation contains the text (case-insensitive), best-scored first."""
        if not storable(sae_id, limit):
            return []
        cond = func.lower(explanations.c.text).contains(text.strip().lower(), autoescape=True)
        if sae_id is not None:
            cond = and_(cond, explanations.c.sae_id == sae_id)
        score = func.coalesce(explanations.c.detection, explanations.c.fuzzing, 0.0)
        query = select(explanations, score.label("score")).where(cond).order_by(score.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [FeatureHit(r.sae_id, r.idx, float(r.score), r.text) for r in conn.execute(query).all()]

    # ---- build state ----------------------------------------------------------------------------
    def get_state(self, sae_id: int, key: str, default: Any = None) -> Any:
        if not storable(sae_id):
            return default
        with self.engine.connect() as conn:
            row = conn.execute(select(build_state.c.value).where(and_(build_state.c.sae_id == sae_id,
                                                                      build_state.c.key == key))).first()
        return default if row is None else json.loads(row.value)

    def set_state(self, sae_id: int, key: str, value: Any) -> None:
        with self.engine.begin() as conn:
            _set_state(conn, sae_id, key, value)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets the web app read while a build writes; NORMAL sync is safe with WAL and much faster.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _create_missing_indexes(engine: Engine) -> None:
    """Indexes added after a database was first created (create_all only indexes the tables it creates)."""
    for table in (features, feature_tokens):
        for index in table.indexes:
            index.create(engine, checkfirst=True)


def _set_state(conn: Any, sae_id: int, key: str, value: Any) -> None:
    cond = and_(build_state.c.sae_id == sae_id, build_state.c.key == key)
    conn.execute(delete(build_state).where(cond))
    conn.execute(insert(build_state).values(sae_id=sae_id, key=key, value=json.dumps(value)))


def _chunks(items: list[int], size: int) -> Iterable[list[int]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _search_tokens(sae_id: int, exs: Sequence[ExampleRecord]) -> list[tuple[Any, ...]]:
    """(latent, token) -> best activation, from the token where each top example peaks."""
    best: dict[tuple[int, str], float] = {}
    for e in exs:
        if e.kind != "top" or not e.acts:
            continue
        peak = max(range(len(e.acts)), key=e.acts.__getitem__)
        token = _norm_token(e.tokens[peak])
        if token:
            key = (e.idx, token)
            best[key] = max(best.get(key, float("-inf")), e.acts[peak])
    return [(sae_id, i, t, s) for (i, t), s in best.items()]  # TOKEN_COLUMNS order


def _sae_from_row(r: Any) -> SaeRecord:
    return SaeRecord(name=r.name, path=r.path, model=r.model, hook=r.hook, d_in=r.d_in, d_sae=r.d_sae,
                     arch=r.arch, n_tokens=r.n_tokens, meta=json.loads(r.meta), id=r.id, created_at=r.created_at)


def _feature_from_row(r: Any) -> FeatureRecord:
    return FeatureRecord(idx=r.idx, frequency=r.frequency, max_act=r.max_act, mean_act=r.mean_act,
                         hist_edges=json.loads(r.hist_edges), hist_counts=json.loads(r.hist_counts),
                         logits_pos=[tuple(x) for x in json.loads(r.logits_pos)],  # type: ignore[misc]
                         logits_neg=[tuple(x) for x in json.loads(r.logits_neg)],  # type: ignore[misc]
                         neighbours=[tuple(x) for x in json.loads(r.neighbours)])  # type: ignore[misc]


def _example_from_row(r: Any) -> ExampleRecord:
    return ExampleRecord(idx=r.idx, kind=r.kind, rank=r.rank, max_act=r.max_act, tokens=json.loads(r.tokens),
                         acts=json.loads(r.acts), token_ids=json.loads(r.token_ids), position=r.position,
                         bucket=r.bucket)


def _explanation_from_row(r: Any) -> ExplanationRecord:
    return ExplanationRecord(idx=r.idx, text=r.text, explainer=r.explainer, detection=r.detection,
                             fuzzing=r.fuzzing, created_at=r.created_at, sae_id=r.sae_id)
