"""Part files: how satds recognises its own, and which of them are current.

Every part satds writes carries one key/value entry in its Parquet footer, ``satds`` = JSON
``{"table", "schema_version", "replaces"}``. A file in a table's folder without it (one that a DuckDB
``COPY ... TO`` dropped there), with another table's tag, with columns the table does not have, or whose
footer cannot be read (a truncated copy, a full disk on another tool's write) is never merged: reads stop
with an error naming it, and ``satds catalog repair`` moves it to ``quarantine/``. (Parts written by
satds before the footer entry existed are recognised by their name, writer and columns.)

Compaction writes one merged part whose ``replaces`` lists the parts it merged. Readers skip every part
that a present part replaces, so a merge becomes visible in one rename; the replaced parts stay on disk
for :data:`KEEP_REPLACED_S` seconds, so a reader that listed them just before still finds them.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .schema import SCHEMA_VERSION, schema

FOOTER_KEY = b"satds"
PART_NAME = re.compile(r"part-\d{20}-[0-9a-f]{8}\.parquet")
KEEP_REPLACED_S = 3600.0


@dataclass(frozen=True)
class Part:
    """One ``*.parquet`` file of a table folder, as its footer describes it."""

    path: Path
    replaces: tuple[str, ...] = ()
    problem: str | None = None  # why it is not a good part of this table (None: it is one)
    mtime: float = 0.0


def footer(table: str, replaces: list[str] | tuple[str, ...] = ()) -> dict[bytes, bytes]:
    """The footer entry every part satds writes carries."""
    return {FOOTER_KEY: json.dumps({"table": table, "schema_version": SCHEMA_VERSION, "replaces": list(replaces)}).encode()}


_cache: dict[tuple[str, int, int], Part] = {}


def inspect(path: Path, table: str) -> Part | None:
    """What the part at ``path`` is (None when it vanished meanwhile: a replaced part just deleted)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    key = (str(path), st.st_size, st.st_mtime_ns)
    hit = _cache.get(key)
    if hit is not None:
        return hit
    try:
        md = pq.read_metadata(path)
    except FileNotFoundError:
        return None
    except Exception as e:  # pyarrow says ArrowInvalid / OSError for a truncated or garbled file
        part = Part(path, problem=f"damaged: its Parquet footer cannot be read ({brief(e)})", mtime=st.st_mtime)
    else:
        part = _judge(path, table, md, st.st_mtime)
    if len(_cache) > 20000:
        _cache.clear()
    _cache[key] = part
    return part


def _judge(path: Path, table: str, md: pq.FileMetaData, mtime: float) -> Part:
    tag = (md.metadata or {}).get(FOOTER_KEY)
    try:
        cols = md.schema.to_arrow_schema()
    except Exception as e:
        return Part(path, problem=f"damaged: unreadable schema ({brief(e)})", mtime=mtime)
    clash = _schema_clash(cols, schema(table))
    if tag is None:
        legacy = PART_NAME.fullmatch(path.name) and (md.created_by or "").startswith("parquet-cpp-arrow") and not clash
        if legacy:
            return Part(path, mtime=mtime)
        return Part(path, problem=f"not a satds part (no satds entry in its footer; written by {md.created_by or 'an unknown writer'})", mtime=mtime)
    try:
        info = json.loads(tag)
        owner, replaces = info["table"], tuple(str(r) for r in info.get("replaces", []))
    except (ValueError, KeyError, TypeError) as e:
        return Part(path, problem=f"damaged: its satds footer entry is unreadable ({brief(e)})", mtime=mtime)
    if owner != table:
        return Part(path, problem=f"a part of table {owner!r}, not {table!r}", mtime=mtime)
    if clash:
        return Part(path, problem=f"its columns do not match the {table} table: {clash}", mtime=mtime)
    return Part(path, replaces=replaces, mtime=mtime)


def _schema_clash(found: pa.Schema, want: pa.Schema) -> str:
    """'' when every column of ``found`` is a column of ``want`` with the same type (older parts may lack some)."""
    bad = []
    for f in found:
        i = want.get_field_index(f.name)
        if i < 0:
            bad.append(f"unknown column {f.name!r}")
        elif not f.type.equals(want.field(i).type):
            bad.append(f"{f.name} is {f.type}, not {want.field(i).type}")
    return "; ".join(bad[:5])


def brief(e: BaseException) -> str:
    """The first line of an error message, for one-line reports."""
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:200]


def scan(folder: Path, table: str) -> tuple[list[Part], list[Part]]:
    """(live parts, replaced parts) of one table folder, live ones sorted by name (= write order).

    A live part may have a ``problem``; readers refuse those. Replaced parts are skipped whatever they hold.
    """
    if not folder.is_dir():
        return [], []
    parts = [p for p in (inspect(f, table) for f in sorted(folder.glob("*.parquet"))) if p is not None]
    replaced = {name for p in parts for name in p.replaces}
    return [p for p in parts if p.path.name not in replaced], [p for p in parts if p.path.name in replaced]


def purge_replaced(folder: Path, table: str, keep_s: float = KEEP_REPLACED_S) -> int:
    """Delete the parts replaced by a merge older than ``keep_s`` seconds; returns how many."""
    live, replaced = scan(folder, table)
    if not replaced:
        return 0
    by_name = {p.path.name: p for p in replaced}
    now = time.time()
    gone = 0
    # Oldest merges first: a part replaced by a merge is deleted before that merge itself is.
    for merge in sorted(live + replaced, key=lambda p: p.mtime):
        if now - merge.mtime < keep_s:
            continue
        for name in merge.replaces:
            p = by_name.pop(name, None)
            if p is not None:
                p.path.unlink(missing_ok=True)
                gone += 1
    return gone


def conform(tbl: pa.Table, want: pa.Schema) -> pa.Table:
    """A part's rows in the table's current schema (columns an older part lacks are null)."""
    cols = [tbl.column(f.name).cast(f.type) if f.name in tbl.column_names else pa.nulls(tbl.num_rows, f.type) for f in want]
    return pa.Table.from_arrays(cols, schema=want)
