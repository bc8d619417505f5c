"""``satds query``: SQL over the catalog's tables (DuckDB)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .app import CatalogOpt, app, catalog_dir, console, data, fail


@app.command("query")
def query_cmd(
    sql: Annotated[str, typer.Argument(help="SQL over the views datasets, scans, annotations, coverage, splits, folds, failures, evaluations, qc_flags, ontology, runs.")],
    catalog: CatalogOpt = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table, csv, json or parquet")] = "table",
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write the result to a file instead of printing.")] = None,
    limit: Annotated[int, typer.Option(help="Rows to print in table format.")] = 200,
    allow_files: Annotated[bool, typer.Option("--allow-files", help="Let the SQL read and write files anywhere (read_csv, COPY ... TO, ATTACH). By default it reaches only the catalog's folder.")] = False,
) -> None:
    """Run SQL over the catalog and print a table (or write csv/json/parquet).

    The SQL is DuckDB's, with the catalog's tables as views. By default it can open no file outside the
    catalog folder (DuckDB's enable_external_access is off, the catalog is the one allowed directory, the
    setting is locked); --allow-files lifts that. A file that SQL writes into the catalog is not a part of
    it: the next read refuses it by name (satds catalog repair moves it aside).
    """
    import duckdb

    from ..catalog import Catalog
    from ..catalog.store import restrict_files

    if fmt not in ("table", "csv", "json", "parquet"):
        raise fail(f"unknown format {fmt!r} (table, csv, json or parquet)")
    if fmt == "parquet" and out is None:
        raise fail("--format parquet needs --out FILE")
    cat = Catalog(catalog_dir(catalog))
    con = cat.connect()
    if not allow_files:
        restrict_files(con, cat.root)
    try:
        rel = con.sql(sql)
        if rel is None:
            return
        tbl = rel.to_arrow_table()
    except duckdb.Error as e:
        from ..catalog.store import diagnose

        msg = diagnose(e, [cat.root]) or str(e).strip()
        if not allow_files and "disabled by configuration" in msg:
            msg += f"\n(satds query reaches only files in the catalog folder {cat.root}; --allow-files lifts this)"
        raise fail(msg)
    if out is not None:  # written by satds, not by the SQL: the one file outside the catalog the user named
        out.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "parquet":
            import pyarrow.parquet as pq

            pq.write_table(tbl, out)
        elif fmt == "json":
            out.write_text(tbl.to_pandas().to_json(orient="records", indent=1))
        else:
            tbl.to_pandas().to_csv(out, index=False)
        console.print(f"wrote {data(out)}", highlight=False)
        return
    df = tbl.to_pandas()
    if fmt == "csv":
        typer.echo(df.to_csv(index=False), nl=False)
    elif fmt == "json":
        typer.echo(df.to_json(orient="records", indent=1))
    else:
        from rich.table import Table
        from rich.text import Text

        t = Table(show_lines=False)
        for c in df.columns:
            t.add_column(Text(str(c)), overflow="fold")
        for row in df.head(limit).itertuples(index=False):
            t.add_row(*[Text(_fmt(v)) for v in row])
        console.print(t)
        if len(df) > limit:
            console.print(f"[dim]{len(df) - limit} more rows (use --limit or --format csv)[/dim]")


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if hasattr(v, "tolist"):
        v = v.tolist()
    if isinstance(v, list):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return "" if v is None else str(v)
