"""``satds catalog``: inspect and maintain the catalog directory."""

from __future__ import annotations

import typer

from .app import CatalogOpt, app, catalog_dir, console

catalog_app = typer.Typer(help="Inspect and maintain the catalog.", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")


@catalog_app.command("info")
def info(catalog: CatalogOpt = None) -> None:
    """Tables, their part files and current row counts."""
    from rich.table import Table

    from ..catalog import TABLES, Catalog

    cat = Catalog(catalog_dir(catalog))
    con = cat.connect()
    t = Table(title=str(cat.root))
    for c in ("table", "parts", "current rows"):
        t.add_column(c)
    for name in [*TABLES, "coverage"]:
        n = con.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
        t.add_row(name, str(len(cat.parts(name))) if name in TABLES else "view", str(n))
    console.print(t)


@catalog_app.command("compact")
def compact(catalog: CatalogOpt = None) -> None:
    """Merge each table's part files into one (safe while nothing else writes)."""
    from ..catalog import TABLES, Catalog

    cat = Catalog(catalog_dir(catalog))
    for name in TABLES:
        n = cat.compact(name)
        if n:
            console.print(f"{name}: {n} parts merged")
