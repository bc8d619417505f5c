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


def catalog_dir(value: Path | None) -> Path:
    """The catalog directory from the option, then ``SATDS_CATALOG``, then ``./catalog``."""
    if value is not None:
        return value
    env = os.environ.get("SATDS_CATALOG")
    return Path(env) if env else Path("catalog")


def fail(message: str, code: int = 1) -> "typer.Exit":
    err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False)
    return typer.Exit(code)
