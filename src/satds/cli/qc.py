"""``satds qc`` and ``satds report``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .app import CatalogOpt, app, catalog_dir, console, data, dataset_keys, fail


@app.command("qc")
def qc_cmd(
    catalog: CatalogOpt = None,
    datasets: Annotated[Optional[str], typer.Option(help="Comma-separated dataset keys [default: all]; other datasets keep their newest flags.")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Where previews go [default: CATALOG/qc].")] = None,
    workers: Annotated[Optional[int], typer.Option("--workers", "-w", help="Parallel processes [default: all cores].")] = None,
    source: Annotated[bool, typer.Option("--source/--no-source", help="Read the source images for the intensity checks.")] = True,
    previews: Annotated[bool, typer.Option("--previews/--no-previews", help="Write a preview PNG per built scan.")] = True,
    show: Annotated[int, typer.Option(help="Print at most this many error/warning flags.")] = 30,
) -> None:
    """Previews of every built scan and automatic checks, written to the qc_flags table."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    from rich.table import Table

    from ..catalog import Catalog
    from ..qc import run_qc

    cat = Catalog(catalog_dir(catalog))
    keys = dataset_keys(datasets)
    with Progress(TextColumn("qc"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console, transient=True) as bar:
        task = bar.add_task("qc", total=None)
        try:
            s = run_qc(cat, datasets=keys, out=out, workers=workers, source=source, previews=previews, progress=lambda d, t: bar.update(task, completed=d, total=t))
        except ValueError as e:
            raise fail(str(e)) from None
    console.print(f"QC run {s.run_id}: {s.scans} scans, {s.previews} previews in {data(s.out)}/previews, {s.seconds:.1f} s" + (f", {s.failed} failed" if s.failed else ""))
    sev = ", ".join(f"{s.severities.get(k, 0)} {k}" for k in ("error", "warning", "info"))
    console.print(f"flags: {sev}" + (f"  ({s.carried} carried over from other datasets)" if s.carried else ""))
    if show > 0:
        con = cat.connect()
        rows = con.execute(
            """SELECT severity, "check", scan_id, message FROM qc_flags WHERE severity <> 'info'
               ORDER BY severity = 'warning', scan_id, "check" LIMIT ?""",
            [show],
        ).fetchall()
        if rows:
            t = Table(title="errors and warnings", title_justify="left")
            for c in ("severity", "check", "scan", "message"):
                t.add_column(c, overflow="fold")
            for sev_, chk, sid, msg in rows:
                t.add_row(f"[red]{sev_}[/red]" if sev_ == "error" else f"[yellow]{sev_}[/yellow]", data(chk), data(sid), data(msg))
            console.print(t)
    console.print(f"next: satds report --catalog {data(cat.root)} --out report.html", highlight=False)
    if s.failed:
        raise typer.Exit(1)  # the other scans were checked; the failed ones are listed above and in qc_flags


@app.command("report")
def report_cmd(
    catalog: CatalogOpt = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="The HTML file to write.")] = Path("report.html"),
    max_previews: Annotated[int, typer.Option(help="Embed at most this many flagged scans' previews.")] = 120,
    gallery: Annotated[int, typer.Option(help="Sample previews embedded per dataset.")] = 2,
) -> None:
    """One self-contained HTML page: datasets, classes, distributions, QC flags with previews, failures, splits."""
    from ..catalog import Catalog
    from ..qc.report import write_report

    cat = Catalog(catalog_dir(catalog))
    p = write_report(cat, out, max_previews=max_previews, gallery=gallery)
    console.print(f"report: {data(p.resolve())} ({p.stat().st_size / 1e6:.1f} MB)", highlight=False)
