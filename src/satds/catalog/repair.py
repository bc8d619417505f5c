"""``satds catalog check|repair``: find part files reads refuse, move them aside, say what to redo.

A part is bad when satds did not write it (a foreign file), it belongs to another table, or it cannot be
read (truncated, garbled). ``repair`` moves bad parts to ``CATALOG/quarantine/TABLE/`` (never deletes
them) and then compares the tables with each other to find the datasets whose rows went with them: the
scan count a ``datasets`` row promises, labelled scans without annotation rows, ``failures`` rows a
``datasets`` row counts, scans without a ``datasets`` row. Re-ingesting those datasets restores the rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from .parts import brief
from .schema import TABLES
from .store import Catalog

# What restores each table's rows besides re-ingesting (tables the ingest does not write).
REDO = {
    "splits": "run `satds split` again",
    "folds": "run `satds split` again",
    "qc_flags": "run `satds qc` again",
    "evaluations": "run `satds evaluate` again",
    "runs": "nothing to redo (provenance of past commands only)",
}


@dataclass
class BadPart:
    table: str
    path: Path
    problem: str
    datasets: list[str] | None = None  # datasets of the rows it holds, when its dataset column can be read

    @property
    def foreign(self) -> bool:
        return not self.problem.startswith("damaged")


@dataclass
class RepairReport:
    moved: list[tuple[BadPart, Path]] = field(default_factory=list)
    reingest: dict[str, list[str]] = field(default_factory=dict)  # dataset → why its rows are incomplete
    roots: dict[str, str] = field(default_factory=dict)  # dataset → the root its newest ingest read
    advice: list[str] = field(default_factory=list)


def check(catalog: Catalog, *, deep: bool = True) -> list[BadPart]:
    """Every current part that reads refuse; ``deep`` also reads each part's data (not only its footer)."""
    bad = []
    for table in TABLES:
        for p in catalog.live_parts(table):
            problem = p.problem
            if problem is None and deep:
                try:
                    pq.read_table(p.path)
                except FileNotFoundError:  # replaced by a merge and deleted meanwhile
                    continue
                except Exception as e:
                    problem = f"damaged: its data cannot be read ({brief(e)})"
            if problem:
                bad.append(BadPart(table, p.path, problem, _datasets_in(p.path)))
    return bad


def _datasets_in(path: Path) -> list[str] | None:
    try:
        col = pq.read_table(path, columns=["dataset"]).column("dataset")
    except Exception:
        return None
    return sorted({str(v) for v in col.to_pylist() if v is not None})


def repair(catalog: Catalog) -> RepairReport:
    """Move every bad part to ``quarantine/`` and find the datasets to re-ingest."""
    rep = RepairReport()
    for b in check(catalog):
        dest_dir = catalog.root / "quarantine" / b.table
        dest_dir.mkdir(parents=True, exist_ok=True)
        dest = dest_dir / b.path.name
        n = 1
        while dest.exists():
            dest = dest_dir / f"{b.path.stem}.{n}{b.path.suffix}"
            n += 1
        b.path.replace(dest)
        rep.moved.append((b, dest))
    if not rep.moved:
        return rep
    con = catalog.connect()
    try:
        rep.reingest = missing_rows(con)
        rep.roots = dict(con.execute("SELECT dataset, root FROM datasets").fetchall())
    finally:
        con.close()
    for table in sorted({b.table for b, _ in rep.moved if not b.foreign and b.table in REDO}):
        rep.advice.append(f"{table}: {REDO[table]}")
    if any(b.table in ("scans", "annotations") and not b.foreign for b, _ in rep.moved):
        rep.advice.append("if those datasets were built, run `satds build` after re-ingesting (it redoes only what is missing)")
    return rep


def missing_rows(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    """Datasets whose current rows disagree with each other (what a lost part leaves behind), read on a
    connection to the catalog (:meth:`Catalog.connect`)."""
    checks = {
        "its datasets row counts {1} scan(s), {2} are left": """
            SELECT d.dataset, d.scans, count(s.scan_id) FROM datasets d LEFT JOIN scans s USING (dataset)
            GROUP BY ALL HAVING count(s.scan_id) < d.scans""",
        "{1} labelled scan(s) have no annotation rows": """
            SELECT s.dataset, count(*) FROM scans s WHERE s.label_kind <> 'none'
              AND NOT EXISTS (SELECT 1 FROM annotations a WHERE a.scan_id = s.scan_id) GROUP BY ALL""",
        "it has scans but no datasets row": """
            SELECT DISTINCT dataset FROM _raw_scans WHERE dataset NOT IN (SELECT dataset FROM _raw_datasets)""",
        "its classes (dataset_classes) are gone": """
            SELECT d.dataset FROM datasets d
            WHERE EXISTS (SELECT 1 FROM scans s WHERE s.dataset = d.dataset AND s.label_kind <> 'none')
              AND NOT EXISTS (SELECT 1 FROM dataset_classes c WHERE c.dataset = d.dataset)""",
        "its datasets row counts {1} failure(s), {2} are left": """
            SELECT d.dataset, d.failures, count(f.dataset) FROM datasets d
            LEFT JOIN failures f ON f.dataset = d.dataset AND f.stage = 'ingest' AND f.ingest_id = d.ingest_id
            GROUP BY ALL HAVING count(f.dataset) < d.failures""",
    }
    out: dict[str, list[str]] = {}
    for why, sql in checks.items():
        for row in con.execute(sql).fetchall():
            out.setdefault(row[0], []).append(why.format(*row))
    return dict(sorted(out.items()))
