"""``satds detect DIR``: the releases a folder of downloads holds (and ``--ingest`` them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from .app import CatalogOpt, app, console, data, err_console, fail


@app.command("detect")
def detect_cmd(
    root: Annotated[Path, typer.Argument(help="A folder of downloads, e.g. ~/data (releases up to --depth levels below it).")],
    ingest: Annotated[bool, typer.Option("--ingest", help="Then ingest every release found (ambiguous ones are skipped, with how to choose).")] = False,
    catalog: CatalogOpt = None,
    workers: Annotated[Optional[int], typer.Option("--workers", "-w", help="Parallel processes for --ingest [default: all cores].")] = None,
    depth: Annotated[Optional[int], typer.Option("--depth", help="How many folder levels below (and above) DIR a release may start [default: as far as satds ingest --root looks].")] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table or json")] = "table",
) -> None:
    """Find every dataset satds knows under DIR: where each release starts, its arrangement, scans and labelled
    scans, and copies found twice. Reads file names only (no image is opened)."""
    if fmt not in ("table", "json"):
        raise fail("--format must be table or json")
    detect_and_ingest(root, ingest=ingest, catalog=catalog, workers=workers, depth=depth, fmt=fmt)


def detect_and_ingest(root: Path, *, ingest: bool, catalog: Path | None, workers: int | None, depth: int | None = None, fmt: str = "table") -> None:
    """What ``satds detect [--ingest]`` and ``satds ingest --all`` do (``depth``: default :data:`satds.ingest.roots.DEPTH`)."""
    import time

    from ..ingest.detect import detect
    from ..ingest.roots import DEPTH

    depth = DEPTH if depth is None else depth

    root = root.expanduser()
    if not root.is_dir():
        raise fail(f"{root} is not a folder")
    t0 = time.perf_counter()
    found = detect(root, depth=depth)
    took = time.perf_counter() - t0
    rows = [d.row(found.root) for d in found.found]
    if fmt == "json":
        typer.echo(json.dumps(rows, indent=1))
    else:
        _print(found, rows, took)
    if not ingest:
        return
    if not found.releases:
        raise fail(f"no release to ingest under {found.root}")
    from .ingest import ingest_one

    failed = 0
    for d in found.releases:
        c = d.copy
        failed += not ingest_one(d.key, c.folder, catalog, workers=workers, copy=c)  # as found: no second search
    skipped = [d.key for d in found.found if d.ambiguous]
    if skipped:
        err_console.print(f"[yellow]not ingested (several copies): {', '.join(skipped)}[/yellow]; ingest each with satds ingest KEY --root <one copy's folder>", highlight=False)
    if failed and failed == len(found.releases):
        raise typer.Exit(1)


def _print(found, rows: list[dict], took: float) -> None:
    from rich.table import Table

    n_files = len(found.index.files)
    t = Table(title=f"{sum(1 for r in rows if r['resolved'] and not r['ambiguous'])} releases under {data(found.root)} ({n_files} files read by name in {took:.1f} s)", show_lines=False)
    for col in ("dataset", "arrangement", "scans", "labelled", "root", "notes"):
        t.add_column(col, overflow="fold")
    for r in rows:
        if r["ambiguous"]:
            t.add_row(r["dataset"], "", "", "", "", "[red]several copies (below)[/red]")
            continue
        notes = []
        if r["problems"]:
            notes.append(f"[yellow]{r['problems']} case(s) will fail[/yellow]")
        if not r["resolved"]:
            notes.append(f"[yellow]{data(r['error'] or '')}[/yellow]")
        if r["views"]:
            notes.append("views: " + ", ".join(r["views"]))
        t.add_row(r["dataset"], r["arrangement"] or "", str(r["scans"]), str(r["labelled"]), data(r["relative_root"] or ""), "; ".join(notes))
    console.print(t)
    for r in rows:
        if r["ambiguous"]:
            err_console.print(f"[red]{r['dataset']}[/red]: {data(r['error'])}", highlight=False)
    if not rows:
        console.print("no known release found (satds datasets lists what satds reads)")
