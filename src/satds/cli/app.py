"""The one ``satds`` command. Subcommand modules register on :data:`app`; heavy imports stay inside them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape

app = typer.Typer(
    name="satds",
    help="Public 3D medical segmentation datasets as one clean, queryable, leakage-free collection.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
console = Console()
err_console = Console(stderr=True)

CatalogOpt = Annotated[
    Optional[Path],
    typer.Option("--catalog", "-C", help="Catalog directory [default: $SATDS_CATALOG or ./catalog].", show_default=False),
]


def catalog_dir(value: Path | None, *, must_exist: bool = True) -> Path:
    """The catalog directory from the option, then ``SATDS_CATALOG``, then ``./catalog``.

    Only ``satds ingest`` creates a catalog (``must_exist=False``); every other command reads an existing
    one, so a mistyped ``--catalog`` is an error naming the path, never a new empty catalog.
    """
    env = os.environ.get("SATDS_CATALOG")
    if value is not None:
        path, origin = value, "--catalog"
    elif env:
        path, origin = Path(env), "SATDS_CATALOG"
    else:
        path, origin = Path("catalog"), "the default ./catalog"
    if must_exist:
        require_catalog(path, origin)
    return path


def require_catalog(path: Path, origin: str = "--catalog") -> None:
    """Exit with a clear error unless ``path`` is a satds catalog (a folder holding at least one table)."""
    from ..catalog.schema import TABLES

    if not path.is_dir():
        raise fail(f"no catalog at {path.absolute()} (from {origin}); `satds ingest` creates one, other commands read an existing one")
    if not any((path / t).is_dir() for t in TABLES):
        raise fail(f"{path.absolute()} (from {origin}) is not a satds catalog: it holds none of the catalog's tables")


def dataset_keys(value: str | None, catalog: Path) -> list[str] | None:
    """``--datasets a,b`` as keys, each a dataset ingested in ``catalog``; otherwise an error per key that
    says whether it is unknown (with close keys) or known but not ingested."""
    if value is None:
        return None
    keys = list(dict.fromkeys(k.strip().lower() for k in value.split(",") if k.strip()))
    if not keys:
        raise fail("--datasets is empty: give comma-separated dataset keys")
    from ..catalog import Catalog
    from ..errors import SpecError
    from ..specs import get_spec

    con = Catalog(catalog).connect()
    try:
        known = {r[0] for r in con.execute("SELECT dataset FROM datasets").fetchall()}
    finally:
        con.close()
    problems = []
    for k in keys:
        if k in known:
            continue
        try:
            get_spec(k)
        except SpecError as e:
            problems.append(str(e))
            continue
        problems.append(f"dataset {k!r} is not in the catalog {catalog} (ingested: {', '.join(sorted(known)) or 'none'}); run `satds ingest {k} --root DIR` first")
    if problems:
        raise fail("; ".join(problems))
    return keys


def fail(message: str, code: int = 1) -> "typer.Exit":
    err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False)
    return typer.Exit(code)
