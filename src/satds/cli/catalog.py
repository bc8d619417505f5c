"""``satds catalog``: inspect and maintain the catalog directory."""

from __future__ import annotations

import shlex
from typing import Annotated

import typer

from .app import CatalogOpt, app, catalog_dir, console, data, err_console, fail

catalog_app = typer.Typer(help="Inspect and maintain the catalog.", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")


@catalog_app.command("info")
def info(catalog: CatalogOpt = None) -> None:
    """Tables, their part files and current row counts."""
    from rich.table import Table

    from ..catalog import TABLES, Catalog

    cat = Catalog(catalog_dir(catalog))
    con = cat.connect()
    t = Table(title=data(cat.root))
    for c in ("table", "parts", "current rows"):
        t.add_column(c)
    for name in [*TABLES, "coverage"]:
        n = con.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
        t.add_row(name, str(len(cat.parts(name))) if name in TABLES else "view", str(n))
    console.print(t)


@catalog_app.command("compact")
def compact(catalog: CatalogOpt = None) -> None:
    """Merge each table's part files into one (safe while other commands write and read)."""
    from ..catalog import TABLES, Catalog
    from ..catalog.repair import check

    cat = Catalog(catalog_dir(catalog))
    for name in TABLES:
        n = cat.compact(name)
        if n:
            console.print(f"{name}: {n} parts merged")
    bad = check(cat, deep=False)
    if bad:
        raise fail(f"{len(bad)} damaged or foreign part file(s) were left as they are (tables holding them are not compacted): run satds catalog repair")


def _bad_table(bad, title: str):
    from rich.table import Table
    from rich.text import Text

    t = Table(title=title, title_justify="left")
    for c in ("table", "file", "problem", "rows of"):
        t.add_column(c, overflow="fold")
    for b in bad:
        held = ", ".join(b.datasets) if b.datasets else ("-" if b.datasets is not None else "unreadable")
        t.add_row(b.table, Text(b.path.name), Text(b.problem), Text(held))
    return t


@catalog_app.command("check")
def check_cmd(
    catalog: CatalogOpt = None,
    quick: Annotated[bool, typer.Option("--quick", help="Read only each part's footer, not its data.")] = False,
) -> None:
    """Find part files that reads refuse: damaged (truncated, garbled) or not written by satds. Exit 1 if any."""
    from ..catalog import Catalog
    from ..catalog.repair import check

    cat = Catalog(catalog_dir(catalog))
    bad = check(cat, deep=not quick)
    if not bad:
        console.print(f"{data(cat.root)}: every part file is readable and satds's own", highlight=False)
        return
    err_console.print(_bad_table(bad, f"{len(bad)} part file(s) reads refuse"))
    raise fail(f"run `satds catalog repair --catalog {cat.root}` to move them to {cat.root / 'quarantine'}")


@catalog_app.command("repair")
def repair_cmd(catalog: CatalogOpt = None) -> None:
    """Move damaged and foreign part files to CATALOG/quarantine and say which datasets to re-ingest."""
    from ..catalog import Catalog
    from ..catalog.repair import repair

    cat = Catalog(catalog_dir(catalog))
    rep = repair(cat)
    if not rep.moved:
        console.print(f"{data(cat.root)}: nothing to repair", highlight=False)
        return
    console.print(_bad_table([b for b, _ in rep.moved], f"moved {len(rep.moved)} part file(s) to {data(cat.root / 'quarantine')}"))
    for b, _ in rep.moved:
        if b.foreign and b.datasets:
            console.print(f"  {data(b.path.name)} was not satds's (its rows of {data(', '.join(b.datasets))} were never part of the catalog)", highlight=False, soft_wrap=True)
    if rep.reingest:
        console.print("[bold]re-ingest[/bold] (the rows these datasets lost come back; unchanged cases are read again only where rows are missing):")
        for ds, why in rep.reingest.items():
            root = shlex.quote(rep.roots[ds]) if ds in rep.roots else "ROOT"
            console.print(f"  satds ingest {data(ds)} --root {data(root)} --catalog {data(shlex.quote(str(cat.root)))}   # {data('; '.join(why))}", highlight=False, soft_wrap=True)
    elif any(not b.foreign for b, _ in rep.moved):
        console.print("no dataset is missing ingest rows (the part was replaced by a merge, or held rows of the tables below)")
    for a in rep.advice:
        console.print(f"  {data(a)}", highlight=False, soft_wrap=True)
