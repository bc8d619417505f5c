"""``satds build``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .app import CatalogOpt, app, catalog_dir, console, data, dataset_keys, err_console, fail


def _spacing(value: str) -> tuple[float, float, float]:
    """``x,y,z`` in mm: three finite numbers within :data:`satds.build.config.SPACING_RANGE_MM`."""
    import math

    from ..build.config import SPACING_RANGE_MM

    lo, hi = SPACING_RANGE_MM
    try:
        parts = [float(x) for x in value.split(",")]
    except ValueError:
        raise typer.BadParameter(f"{value!r}: give three numbers in mm, e.g. 1,1,3") from None
    if len(parts) != 3:
        raise typer.BadParameter(f"{value!r}: give three numbers in mm, e.g. 1,1,3")
    bad = [x for x in parts if not (math.isfinite(x) and lo <= x <= hi)]
    if bad:
        raise typer.BadParameter(f"{value!r}: each spacing must be a finite number from {lo:g} to {hi:g} mm (got {', '.join(map(str, bad))})")
    return tuple(parts)  # type: ignore[return-value]


def _check_spacing(value: str) -> str:
    """Option callback: a bad --spacing is a usage error before anything runs."""
    _spacing(value)
    return value


@app.command("build")
def build_cmd(
    catalog: CatalogOpt = None,
    spacing: Annotated[str, typer.Option(help="Target spacing x,y,z in mm (after reorientation), each from 0.01 to 100.", callback=_check_spacing)] = "1,1,3",
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
        cfg = BuildConfig(spacing=_spacing(spacing), orientation=orientation.upper(), image_interpolation=image_interpolation, label_interpolation=label_interpolation)
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
