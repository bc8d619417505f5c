"""The catalog on disk: one folder per table of immutable Parquet parts, and DuckDB views over them.

Why part files: many workers append results, and a killed run must never leave a half-written table.
Each write is a new file (temp name, fsync, then rename), so readers see a part entirely or not at all;
a full disk leaves no part and says so. The views below turn the append-only history into current state.
Reads refuse part files satds did not write or cannot read, naming them (:mod:`.parts`); compaction is
safe beside other writers and readers; ``satds catalog check|repair`` (:mod:`.repair`) finds and
quarantines bad parts.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import json
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Iterable, Mapping, Protocol, Sequence

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import DISK_FULL, CatalogError
from . import parts as _parts
from .schema import TABLES, schema

_gen_lock = threading.Lock()
_last_gen = 0


def new_gen() -> int:
    """A strictly increasing 64-bit stamp (nanoseconds), unique within this process."""
    global _last_gen
    with _gen_lock:
        _last_gen = max(_last_gen + 1, time.time_ns())
        return _last_gen


def new_id(prefix: str) -> str:
    return f"{prefix}-{_dt.datetime.now(_dt.UTC).strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"


def now() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)


# Views that turn the part history into current state. Order matters: later views use earlier ones.
_VIEWS = {
    "datasets": """
        SELECT * FROM _raw_datasets
        QUALIFY row_number() OVER (PARTITION BY dataset ORDER BY ingested_at DESC, ingest_id DESC) = 1
    """,
    "scans": """
        SELECT s.* FROM _raw_scans s JOIN datasets d ON s.dataset = d.dataset AND s.ingest_id = d.ingest_id
        QUALIFY row_number() OVER (PARTITION BY s.scan_id ORDER BY s.gen DESC) = 1
    """,
    "annotations": """
        SELECT a.* FROM _raw_annotations a SEMI JOIN scans s ON a.scan_id = s.scan_id AND a.gen = s.gen
    """,
    "dataset_classes": """
        SELECT c.* FROM _raw_dataset_classes c SEMI JOIN datasets d ON c.dataset = d.dataset AND c.ingest_id = d.ingest_id
    """,
    "splits": """
        SELECT * FROM _raw_splits
        WHERE split_id = (SELECT split_id FROM _raw_splits ORDER BY created_at DESC, split_id DESC LIMIT 1)
    """,
    "folds": """
        SELECT f.* FROM _raw_folds f SEMI JOIN (SELECT DISTINCT split_id FROM splits) s ON f.split_id = s.split_id
    """,
    "failures": """
        SELECT f.* FROM _raw_failures f LEFT JOIN datasets d ON f.dataset = d.dataset
        WHERE (f.stage = 'ingest' AND f.ingest_id IS NOT DISTINCT FROM d.ingest_id)
           OR (f.stage <> 'ingest' AND NOT EXISTS (
                SELECT 1 FROM scans s WHERE s.scan_id = f.scan_id AND s.gen > f.gen))
    """,
    "runs": "SELECT * FROM _raw_runs",
    "evaluations": "SELECT * FROM _raw_evaluations",
    "qc_flags": """
        SELECT * FROM _raw_qc_flags
        WHERE run_id = (SELECT run_id FROM _raw_qc_flags ORDER BY created_at DESC LIMIT 1)
    """,
}

# Views computed from the tables (not stored).
_DERIVED_VIEWS = {
    # present: annotated with voxels; absent: annotated, none here; unknown: the dataset does not annotate it.
    "coverage": """
        SELECT s.scan_id, s.dataset, o.class_id, o.class_name,
               CASE WHEN a.voxels > 0 THEN 'present' WHEN a.voxels = 0 THEN 'absent' ELSE 'unknown' END AS status,
               coalesce(a.derived, false) AS derived
        FROM scans s CROSS JOIN ontology o
        LEFT JOIN annotations a ON a.scan_id = s.scan_id AND a.class_id = o.class_id
    """,
}


class Catalog:
    """A catalog directory. Cheap to create; opens nothing until used."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"Catalog({str(self.root)!r})"

    def exists(self) -> bool:
        """Whether a catalog is here: a folder holding at least one table's folder (`satds ingest` makes one)."""
        return self.root.is_dir() and any((self.root / t).is_dir() for t in TABLES)

    def table_dir(self, table: str) -> Path:
        schema(table)
        return self.root / table

    def parts(self, table: str) -> list[Path]:
        """The table's current part files (damaged or foreign ones included: reads refuse those)."""
        return [p.path for p in self.live_parts(table)]

    def live_parts(self, table: str) -> list[_parts.Part]:
        """The table's current parts with what their footers say (parts a merge replaced are left out)."""
        return _parts.scan(self.table_dir(table), table)[0]

    # ------------------------------------------------------------------ writing
    def write(self, table: str, rows: Iterable[Mapping[str, Any]] | pa.Table) -> Path | None:
        """Append rows as one new part file, atomically. Missing columns are null; unknown ones an error."""
        sch = schema(table)
        if isinstance(rows, pa.Table):
            tbl = rows.select(sch.names).cast(sch) if rows.schema != sch else rows
        else:
            rows = list(rows)
            if not rows:
                return None
            extra = set().union(*(r.keys() for r in rows)) - set(sch.names)
            if extra:
                raise ValueError(f"{table}: unknown column(s) {sorted(extra)}")
            try:
                tbl = pa.Table.from_pylist([dict(r) for r in rows], schema=sch)
            except UnicodeEncodeError:
                raise CatalogError(f"{table}: a value is not valid UTF-8: {_first_unencodable(rows)}") from None
        if tbl.num_rows == 0:
            return None
        return self._write(table, tbl)

    def _write(self, table: str, tbl: pa.Table, replaces: list[str] | tuple[str, ...] = ()) -> Path:
        from ..io.atomic import atomic_path

        d = self.table_dir(table)
        final = d / f"part-{new_gen():020d}-{uuid.uuid4().hex[:8]}.parquet"
        try:
            # fsync: the rename must never publish a part whose bytes are not on disk.
            with atomic_path(final, fsync=True) as tmp, open(tmp, "wb") as f:
                pq.write_table(tbl.replace_schema_metadata(_parts.footer(table, replaces)), f, compression="zstd")
        except OSError as e:
            if e.errno in DISK_FULL:
                raise CatalogError(
                    f"disk full: cannot write a part of table {table} in {d} ({os.strerror(e.errno)}). "
                    "Nothing was half-written; free some space and run the command again: it resumes where it stopped."
                ) from None
            raise
        return final

    def compact(self, table: str, *, wait: bool = True, keep_s: float = _parts.KEEP_REPLACED_S) -> int:
        """Merge a table's current parts into one; returns how many were merged (0: nothing to do).

        Safe while other processes write and read: one compaction per table at a time (a lock file; with
        ``wait=False`` a busy table is skipped), the merged part names the parts it replaces so readers
        switch in one rename, and replaced parts are deleted only ``keep_s`` seconds later. A table with a
        damaged or foreign part is not compacted (``satds catalog repair`` first).
        """
        d = self.table_dir(table)
        if not d.is_dir():
            return 0
        with _table_lock(d, wait) as locked:
            if not locked:
                return 0
            _parts.purge_replaced(d, table, keep_s)
            live = self.live_parts(table)
            if len(live) < 2 or any(p.problem for p in live):
                return 0
            sch = schema(table)
            try:
                tbl = pa.concat_tables([_parts.conform(pq.read_table(p.path), sch) for p in live])
            except (OSError, pa.ArrowException) as e:  # data pages damaged behind a readable footer
                raise CatalogError(f"{table}: cannot compact, a part cannot be read ({e}); run satds catalog check") from None
            self._write(table, tbl, replaces=[p.path.name for p in live])
            return len(live)

    def maybe_compact(self, threshold: int = 64) -> dict[str, int]:
        """Compact every table with more than ``threshold`` parts (keeps view creation fast); never waits."""
        return {t: self.compact(t, wait=False) for t in TABLES if len(self.parts(t)) > threshold}

    # ------------------------------------------------------------------ reading
    def connect(self, con: duckdb.DuckDBPyConnection | None = None) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection with one view per table (and ``coverage``, ``ontology``)."""
        live = {t: self.live_parts(t) for t in TABLES}
        bad = [p for ps in live.values() for p in ps if p.problem]
        if bad:
            raise CatalogError(refusal(self.root, bad))
        _opened.pop(str(self.root), None)
        _opened[str(self.root)] = time.monotonic()
        while len(_opened) > 8:
            del _opened[next(iter(_opened))]
        con = con or duckdb.connect()
        for table, sch in TABLES.items():
            parts = [p.path for p in live[table]]
            if parts:
                files = ", ".join("'" + os.path.abspath(p).replace("'", "''") + "'" for p in parts)
                con.execute(f"CREATE OR REPLACE VIEW _raw_{table} AS SELECT * FROM read_parquet([{files}], union_by_name=true)")
            else:
                con.register(f"_empty_{table}", sch.empty_table())
                con.execute(f"CREATE OR REPLACE VIEW _raw_{table} AS SELECT * FROM _empty_{table}")
        for name, sql in _VIEWS.items():
            con.execute(f"CREATE OR REPLACE VIEW {name} AS {sql}")
        _register_ontology(con)
        for name, sql in _DERIVED_VIEWS.items():
            con.execute(f"CREATE OR REPLACE VIEW {name} AS {sql}")
        return con

    def read(self, table: str, where: str = "", params: list | dict | None = None) -> pa.Table:
        """Current rows of one view as Arrow (``where`` is a SQL condition with ``?``/``$name`` parameters)."""
        con = self.connect()
        try:
            sql = f"SELECT * FROM {table}" + (f" WHERE {where}" if where else "")
            return con.sql(sql, params=params).to_arrow_table() if params else con.sql(sql).to_arrow_table()
        finally:
            con.close()

    def log_run(self, run_id: str, command: str, config: Mapping[str, Any], summary: Mapping[str, Any], started_at: _dt.datetime) -> None:
        from .. import __version__
        from ..ontology import load_ontology

        try:
            onto_version = load_ontology().version
        except Exception:  # provenance must never stop a run
            onto_version = None
        self.write(
            "runs",
            [
                {
                    "run_id": run_id,
                    "command": command,
                    "satds_version": __version__,
                    "ontology_version": onto_version,
                    "config": json.dumps(config, sort_keys=True, default=str),
                    "summary": json.dumps(summary, sort_keys=True, default=str),
                    "started_at": started_at,
                    "finished_at": now(),
                }
            ],
        )


# Catalogs this process has read, with when (newest last): to explain a read error after the fact.
_opened: dict[str, float] = {}


# What DuckDB 2.0 raises reading a Parquet page garbled behind an intact footer (measured on ~2,000 garbled
# copies of real parts): a bare ``duckdb.Error`` ("don't know what type"), InvalidInputException
# ("Failed to read file ...: ZSTD Decompression failure"), IOException ("Could not read enough bytes").
_DAMAGE = (duckdb.InvalidInputException, duckdb.IOException)


def diagnose(error: BaseException, roots: Iterable[str | os.PathLike] | None = None, since: float = 0.0) -> str | None:
    """When a query failed inside a part's data (its footer was fine), name the damaged part(s).

    Reads check every part's footer before they start; a part damaged further in only shows when DuckDB
    reads it, with a message that may name no file. Then ``roots`` (default: the catalogs this process read
    since the monotonic time ``since``) are checked fully: only for the errors a damaged file gives
    (:data:`_DAMAGE`), never for the query's own (a typo, a failed cast), which would read every part for nothing.
    """
    from .repair import check

    if not (type(error) is duckdb.Error or isinstance(error, _DAMAGE)):
        return None
    roots = [str(r) for r in roots] if roots is not None else [r for r, t in reversed(_opened.items()) if t >= since]
    for root in roots:
        bad = [b for b in check(Catalog(root)) if not b.foreign]
        if bad:
            return refusal(Path(root), bad)
    return None


class _Refused(Protocol):
    """A part a read refuses: a :class:`~.parts.Part` with a problem, or a :class:`~.repair.BadPart`."""

    @property
    def path(self) -> Path: ...

    @property
    def problem(self) -> str | None: ...


def refusal(root: Path, bad: Sequence[_Refused]) -> str:
    """The error a read gives when the catalog holds parts it will not merge."""
    lines = [f"  {p.path.parent.name}/{p.path.name}: {p.problem}" for p in bad[:10]]
    if len(bad) > 10:
        lines.append(f"  ... {len(bad) - 10} more")
    return (
        f"the catalog at {root} holds {len(bad)} part file(s) satds will not read:\n" + "\n".join(lines)
        + f"\nrun `satds catalog repair --catalog {root}` to move them to {root / 'quarantine'}; it says what to re-ingest."
    )


@contextlib.contextmanager
def _table_lock(folder: Path, wait: bool):
    """An exclusive lock on one table folder (``.lock``); yields False when busy and ``wait`` is False."""
    with open(folder / ".lock", "a+") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _first_unencodable(rows: list[Mapping[str, Any]]) -> str:
    from ..errors import is_utf8, printable

    for r in rows:
        for k, v in r.items():
            if isinstance(v, str) and not is_utf8(v):
                return f"column {k} = {printable(v)!r}"
    return "(in a nested value)"


def _register_ontology(con: duckdb.DuckDBPyConnection) -> None:
    from ..ontology import load_ontology

    try:
        onto = load_ontology()
        rows = [
            {
                "class_id": c.id,
                "class_name": c.name,
                "region": c.region,
                "kind": c.kind,
                "laterality": c.laterality,
                "parents": [p.id for p in c.parents],
                "synonyms": c.synonyms,
            }
            for c in onto.concepts.values()
        ]
    except Exception:
        rows = []
    sch = pa.schema(
        [
            ("class_id", pa.string()),
            ("class_name", pa.string()),
            ("region", pa.string()),
            ("kind", pa.string()),
            ("laterality", pa.string()),
            ("parents", pa.list_(pa.string())),
            ("synonyms", pa.list_(pa.string())),
        ]
    )
    con.register("_ontology_arrow", pa.Table.from_pylist(rows, schema=sch))
    con.execute("CREATE OR REPLACE VIEW ontology AS SELECT * FROM _ontology_arrow")


def dataset_problems(con: duckdb.DuckDBPyConnection, keys: Iterable[str], root: str | os.PathLike) -> list[str]:
    """Why each of ``keys`` (lower-case dataset keys) cannot be selected in the catalog at ``root`` that
    ``con`` reads: a key satds does not know (with the close ones), or a dataset not ingested there.
    Empty when every key is an ingested dataset."""
    from ..errors import SpecError
    from ..specs import get_spec

    known = {r[0] for r in con.execute("SELECT dataset FROM datasets").fetchall()}
    problems = []
    for k in keys:
        if k in known:
            continue
        try:
            get_spec(k)
        except SpecError as e:
            problems.append(f"dataset {k!r} is not in the catalog {root}: {e}")
            continue
        problems.append(f"dataset {k!r} is not in the catalog {root} (ingested: {', '.join(sorted(known)) or 'none'}); run `satds ingest {k} --root DIR` first")
    return problems


def restrict_files(con: duckdb.DuckDBPyConnection, root: str | os.PathLike) -> None:
    """Let SQL on ``con`` open files only inside the catalog folder (reads of its parts; a ``COPY`` into
    it, which the next read refuses as foreign), and lock that setting."""
    folder = os.path.realpath(root).replace("'", "''")
    con.execute(f"SET allowed_directories = ['{folder}/']")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


def connect(root: str | os.PathLike | None = None) -> duckdb.DuckDBPyConnection:
    """DuckDB connection over the catalog at ``root`` (default: ``$SATDS_CATALOG`` or ``./catalog``)."""
    if root is None:
        root = os.environ.get("SATDS_CATALOG", "catalog")
    return Catalog(root).connect()
