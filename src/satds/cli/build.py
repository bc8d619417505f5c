"""``satds build``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..build.spacing import SPACING_RANGE_MM, check_spacing
from .app import CatalogOpt, app, catalog_dir, console, data, dataset_keys, err_console, fail

_LO, _HI = SPACING_RANGE_MM


def _spacing(value: str) -> tuple[float, float, float]:
    """Option callback: ``x,y,z`` in mm as three floats; a bad --spacing is a usage error before anything runs."""
    try:
        return check_spacing(value)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None


@app.command("build")
def build_cmd(
    catalog: CatalogOpt = None,
    # The command receives the callback's tuple of three floats.
    spacing: Annotated[str, typer.Option(help=f"Target spacing x,y,z in mm (after reorientation), each from {_LO:g} to {_HI:g}.", callback=_spacing)] = "1,1,3",
    datasets: Annotated[Optional[str], typer.Option(help="Comma-separated dataset keys [default: all ingested].")] = None,
    workers: Annotated[Optional[int], typer.Option("--workers", "-w", help="Parallel processes [default: all cores].")] = None,
    executor: Annotated[str, typer.Option(help="local (process pool) or dask.")] = "local",
    scheduler: Annotated[Optional[str], typer.Option(help="Dask scheduler address (tcp://host:8786); a LocalCluster when omitted.")] = None,
    orientation: Annotated[str, typer.Option(help="Canonical axis codes.")] = "RAS",
    image_interpolation: Annotated[str, typer.Option(help="linear or cubic.")] = "linear",
    label_interpolation: Annotated[str, typer.Option(help="linear (each class interpolated on its own, kept at >= 0.5) or nearest.")] = "linear",
    out: Annotated[Optional[Path], typer.Option(help="Where normalised files go [default: CATALOG/normalised].")] = None,
    force: Annotated[bool, typer.Option(help="Rebuild even scans that are up to date.")] = False,
) -> None:
    """Normalise every ingested scan (reorient, respace, crop, intensity) and fill annotation statistics."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ..build import BuildConfig, build
    from ..catalog import Catalog

    if executor not in ("local", "dask"):
        raise fail("--executor must be local or dask")
    try:
        cfg = BuildConfig(spacing=spacing, orientation=orientation.upper(), image_interpolation=image_interpolation, label_interpolation=label_interpolation)
    except Exception as e:
        raise fail(str(e))
    root = catalog_dir(catalog)
    keys = dataset_keys(datasets)
    cat = Catalog(root)
    with Progress(TextColumn("build"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=err_console, transient=True) as bar:
        task = bar.add_task("build", total=None)
        summary = build(
            cat,
            cfg,
            datasets=keys,
            out_dir=out,
            workers=workers,
            executor=executor,
            scheduler=scheduler,
            force=force,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    console.print(
        f"build: {summary.built} built, {summary.skipped} up to date, {summary.recovered} recovered"
        + (f", [red]{summary.failed} failed[/red]" if summary.failed else "")
        + f" in {summary.seconds:.1f} s"
    )
    for f in summary.failures[:20]:
        err_console.print(f"  [red]✗[/red] {data(f)}", highlight=False)
    if len(summary.failures) > 20:
        err_console.print(f"  … {len(summary.failures) - 20} more: satds query \"SELECT * FROM failures WHERE stage = 'build'\"")
    if summary.failed:
        raise typer.Exit(1)  # every other scan is built; the failures are in the catalog's failures table
