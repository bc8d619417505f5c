"""``satds query``: SQL over the catalog's tables (DuckDB)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .app import CatalogOpt, app, catalog_dir, console, fail


@app.command("query")
def query_cmd(
    sql: Annotated[str, typer.Argument(help="SQL over the views datasets, scans, annotations, coverage, splits, folds, failures, evaluations, qc_flags, ontology, runs.")],
    catalog: CatalogOpt = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table, csv, json or parquet")] = "table",
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write the result to a file instead of printing.")] = None,
    limit: Annotated[int, typer.Option(help="Rows to print in table format.")] = 200,
) -> None:
    """Run SQL over the catalog and print a table (or write csv/json/parquet)."""
    import duckdb

    from ..catalog import Catalog

    con = Catalog(catalog_dir(catalog)).connect()
    try:
        rel = con.sql(sql)
    except duckdb.Error as e:
        raise fail(str(e).strip())
    if rel is None:
        return
    if fmt == "parquet" and out is None:
        raise fail("--format parquet needs --out FILE")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        if fmt in ("table", "csv"):
            rel.write_csv(str(out))
        elif fmt == "parquet":
            rel.write_parquet(str(out))
        elif fmt == "json":
            out.write_text(rel.df().to_json(orient="records", indent=1))
        else:
            raise fail(f"unknown format {fmt!r}")
        console.print(f"wrote {out}")
        return
    df = rel.df()
    if fmt == "csv":
        typer.echo(df.to_csv(index=False), nl=False)
    elif fmt == "json":
        typer.echo(df.to_json(orient="records", indent=1))
    elif fmt == "table":
        from rich.table import Table

        t = Table(show_lines=False)
        for c in df.columns:
            t.add_column(str(c), overflow="fold")
        for row in df.head(limit).itertuples(index=False):
            t.add_row(*[_fmt(v) for v in row])
        console.print(t)
        if len(df) > limit:
            console.print(f"[dim]{len(df) - limit} more rows (use --limit or --format csv)[/dim]")
    else:
        raise fail(f"unknown format {fmt!r}")


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if hasattr(v, "tolist"):
        v = v.tolist()
    if isinstance(v, list):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return "" if v is None else str(v)
