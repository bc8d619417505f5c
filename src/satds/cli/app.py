"""The one ``satds`` command. Subcommand modules register on :data:`app`; heavy imports stay inside them.

Every command runs inside :class:`_Errors`: an error satds raises on purpose (``SatdsError``), a full disk,
or a dead worker pool prints one line and exits 1, never a traceback. Text that comes from data (paths,
ids, values, error messages) is printed through :func:`data` or as :class:`rich.text.Text`, so a ``[``
in a file name is shown, not taken for console markup.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup


class _Errors(TyperGroup):
    """The top-level group: turns the errors a user can act on into one clear line."""

    def invoke(self, ctx: Any) -> Any:
        from ..errors import DISK_FULL, SatdsError

        started = time.monotonic()
        try:
            return super().invoke(ctx)
        except SatdsError as e:
            raise fail(str(e)) from None
        except Exception as e:
            if type(e).__module__.split(".")[0] in ("duckdb", "_duckdb"):
                from ..catalog.store import diagnose

                msg = diagnose(e, since=started)
                if msg:
                    raise fail(msg) from None
            if isinstance(e, OSError) and e.errno in DISK_FULL:
                where = f" writing {e.filename}" if e.filename else ""
                raise fail(f"disk full{where} ({os.strerror(e.errno)}): free some space and run the command again; it resumes where it stopped") from None
            raise


app = typer.Typer(
    name="satds",
    cls=_Errors,
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


@app.callback()
def _main(
    ctx: typer.Context,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Also show library warnings (nibabel, ITK, numpy, pydicom) and satds's debug records on stderr; they always go to the log file.")] = False,
) -> None:
    from .. import log

    path, done = log.setup(verbose)

    def close() -> None:
        if done() > 0 and not verbose:
            err_console.print(f"[dim]library warnings were written to {data(path)} (satds --verbose shows them)[/dim]", highlight=False, soft_wrap=True)

    ctx.call_on_close(close)


def data(value: Any) -> str:
    """Text from data (a path, an id, a value, an error message), escaped for rich markup."""
    return escape(str(value))


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
    """Exit with a clear error unless ``path`` is a satds catalog (:meth:`satds.catalog.Catalog.exists`)."""
    from ..catalog import Catalog

    if not path.is_dir():
        raise fail(f"no catalog at {path.absolute()} (from {origin}); `satds ingest` creates one, other commands read an existing one")
    if not Catalog(path).exists():
        raise fail(f"{path.absolute()} (from {origin}) is not a satds catalog: it holds none of the catalog's tables")


def dataset_keys(value: str | None) -> list[str] | None:
    """``--datasets a,b`` as lower-case keys, each once (None: the option was not given). The engines say
    which keys are not datasets of the catalog (:func:`satds.catalog.store.dataset_problems`)."""
    if value is None:
        return None
    keys = list(dict.fromkeys(k.strip().lower() for k in value.split(",") if k.strip()))
    if not keys:
        raise fail("--datasets is empty: give comma-separated dataset keys")
    return keys


def fail(message: str, code: int = 1) -> "typer.Exit":
    err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)
