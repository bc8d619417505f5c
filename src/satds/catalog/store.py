"""The catalog on disk: one folder per table of immutable Parquet parts, and DuckDB views over them.

Why part files: many workers append results, and a killed run must never leave a half-written table.
Each write is a new file (temp name, then rename), so readers see a part entirely or not at all. The
views below turn the append-only history into current state.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Iterable, Mapping

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

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

    def table_dir(self, table: str) -> Path:
        schema(table)
        return self.root / table

    def parts(self, table: str) -> list[Path]:
        d = self.table_dir(table)
        return sorted(d.glob("*.parquet")) if d.exists() else []

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
            tbl = pa.Table.from_pylist([dict(r) for r in rows], schema=sch)
        if tbl.num_rows == 0:
            return None
        d = self.table_dir(table)
        d.mkdir(parents=True, exist_ok=True)
        final = d / f"part-{new_gen():020d}-{uuid.uuid4().hex[:8]}.parquet"
        tmp = d / f".{final.name}.tmp"
        pq.write_table(tbl, tmp, compression="zstd")
        os.replace(tmp, final)
        return final

    def compact(self, table: str) -> int:
        """Merge a table's parts into one file; returns how many parts were merged."""
        parts = self.parts(table)
        if len(parts) < 2:
            return 0
        tbl = pa.concat_tables([pq.read_table(p).cast(schema(table)) for p in parts])
        self.write(table, tbl)
        for p in parts:
            p.unlink(missing_ok=True)
        return len(parts)

    def maybe_compact(self, threshold: int = 64) -> dict[str, int]:
        """Compact every table with more than ``threshold`` parts (keeps view creation fast)."""
        return {t: self.compact(t) for t in TABLES if len(self.parts(t)) > threshold}

    # ------------------------------------------------------------------ reading
    def connect(self, con: duckdb.DuckDBPyConnection | None = None) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection with one view per table (and ``coverage``, ``ontology``)."""
        con = con or duckdb.connect()
        for table, sch in TABLES.items():
            parts = self.parts(table)
            if parts:
                files = ", ".join("'" + str(p).replace("'", "''") + "'" for p in parts)
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


def connect(root: str | os.PathLike | None = None) -> duckdb.DuckDBPyConnection:
    """DuckDB connection over the catalog at ``root`` (default: ``$SATDS_CATALOG`` or ``./catalog``)."""
    if root is None:
        root = os.environ.get("SATDS_CATALOG", "catalog")
    return Catalog(root).connect()
