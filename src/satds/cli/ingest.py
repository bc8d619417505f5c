"""``satds ingest``, ``satds datasets`` and ``satds phantom``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from .app import CatalogOpt, app, catalog_dir, console, data, err_console, fail


@app.command("ingest")
def ingest_cmd(
    key: Annotated[Optional[str], typer.Argument(help="Dataset key, e.g. msd_liver, verse, totalsegmentator (case-insensitive); omit with --all.")] = None,
    root: Annotated[Path, typer.Option("--root", "-r", help="The dataset as downloaded: its folder, a folder up to three levels above it (e.g. ~/data), or one of its sub-folders (then only the scans in it).")] = ...,
    catalog: CatalogOpt = None,
    workers: Annotated[Optional[int], typer.Option("--workers", "-w", help="Parallel processes [default: all cores].")] = None,
    headers_only: Annotated[bool, typer.Option("--headers-only", help="Read image headers only (faster; integrity and fingerprints wait for build).")] = False,
    arrangement: Annotated[Optional[str], typer.Option("--arrangement", "-a", help="Which arrangement of the release the root holds: 'release' (the publisher's), 'nnunet' (an nnU-Net raw folder) or one the spec lists (e.g. sat_ds) [default: the one found].")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Ingest every release found under --root (what `satds detect --ingest` does).")] = False,
) -> None:
    """Record every case of one dataset, read in its native layout, in the catalog."""
    if all_:
        if key is not None or arrangement is not None:
            raise fail("--all finds the datasets and their arrangements itself; give no KEY and no --arrangement")
        from .detect import detect_and_ingest

        detect_and_ingest(root, ingest=True, catalog=catalog, workers=workers)
        return
    if key is None:
        raise fail("give a dataset KEY (satds datasets lists them), or --all")
    if not ingest_one(key, root, catalog, workers=workers, headers_only=headers_only, arrangement=arrangement):
        raise typer.Exit(1)


def ingest_one(key: str, root: Path, catalog: Path | None, *, workers: int | None = None, headers_only: bool = False, arrangement: str | None = None, copy=None) -> bool:
    """Ingest one dataset with a progress bar and print its summary; False when every case failed.

    ``copy``: the copy of the release ``satds detect`` found (:class:`satds.ingest.roots.Copy`), read as found."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ..catalog import Catalog
    from ..ingest import ingest
    from ..specs import get_spec

    spec = get_spec(key)
    cat = Catalog(catalog_dir(catalog, must_exist=False))  # the one command that creates a catalog
    with Progress(TextColumn(f"ingest {spec.key}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=err_console, transient=True) as bar:
        task = bar.add_task("ingest", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        summary = ingest(spec.key, root, cat, workers=workers, full=not headers_only, arrangement=arrangement, progress=progress, copy=copy)
    console.print(
        f"[bold]{spec.key}[/bold]: {summary.scans} scans ingested"
        + (f" ({summary.reused} unchanged, reused)" if summary.reused else "")
        + (f", {summary.skipped} skipped by the spec" if summary.skipped else "")
        + (f", [red]{summary.failed} failed[/red]" if summary.failed else "")
        + f" from {data(summary.root)}" + (f" ({summary.arrangement})" if summary.arrangement != "release" else "")
        + f" → {data(cat.root)}",
        highlight=False,
    )
    for f in summary.failures[:20]:
        err_console.print(f"  [red]✗[/red] {data(f)}", highlight=False, soft_wrap=True)
    if len(summary.failures) > 20:
        err_console.print(f"  … {len(summary.failures) - 20} more: satds query \"SELECT * FROM failures\"", highlight=False)
    for n in summary.notes[:10]:
        console.print(f"  [dim]note: {data(n)}[/dim]", highlight=False, soft_wrap=True)
    return not (summary.failed and not summary.scans)


def dataset_rows() -> list[dict]:
    """One row per registered dataset: the interface behind ``satds datasets --format json``."""
    from ..ingest.engine import dataset_classes
    from ..ontology import load_ontology
    from ..specs import all_specs

    onto = load_ontology()
    rows = []
    for spec in all_specs():
        try:
            classes = [onto[c].name for c in dataset_classes(spec.key, "").all_classes()]
        except Exception as e:  # a spec whose classes do not resolve is listed, flagged
            classes = []
            err_console.print(f"[yellow]warning:[/yellow] {spec.key}: {data(e)}", highlight=False)
        rows.append(
            {
                "key": spec.key,
                "title": spec.title,
                "modality": spec.modality,
                "region": spec.region,
                "licence": spec.licence,
                "redistributable": spec.redistributable,
                "implemented": spec.implemented,
                "scans": spec.scans,
                "classes": classes,
                "sat_key": spec.sat_key,
                "url": spec.url,
            }
        )
    return rows


@app.command("datasets")
def datasets_cmd(
    fmt: Annotated[str, typer.Option("--format", "-f", help="table or json")] = "table",
) -> None:
    """List every registered dataset: modality, region, licence, expected scans and classes."""
    rows = dataset_rows()
    if fmt == "json":
        typer.echo(json.dumps(rows, indent=1))
        return
    if fmt != "table":
        raise fail("--format must be table or json")
    from rich.table import Table

    t = Table(title=f"{len(rows)} datasets", show_lines=False)
    for col in ("key", "modality", "region", "scans", "classes", "licence", "implemented"):
        t.add_column(col, overflow="fold")
    for r in rows:
        cls = ", ".join(r["classes"])
        cells = (r["key"], r["modality"], r["region"], str(r["scans"] or "?"), f"{len(r['classes'])}: {cls[:60]}{'…' if len(cls) > 60 else ''}", r["licence"] + ("" if r["redistributable"] else " (no redistribution)"), "yes" if r["implemented"] else "no")
        t.add_row(*map(data, cells))
    console.print(t)


@app.command("phantom")
def phantom_cmd(
    key: Annotated[str, typer.Argument(help="Dataset key.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the phantom release into.")],
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    arrangement: Annotated[str, typer.Option("--arrangement", "-a", help="Write the release in this arrangement ('release': the publisher's; others as the spec lists them).")] = "release",
) -> None:
    """Write a tiny synthetic copy of a dataset's native layout (for trying satds without downloads)."""
    from ..phantoms import generate
    from ..specs import get_spec

    spec = get_spec(key)
    if arrangement not in spec.arrangement_names:
        raise fail(f"{spec.key} has no arrangement {arrangement!r}; it has: {', '.join(spec.arrangement_names)}")
    generate(spec.key, out, seed=seed, arrangement=arrangement)
    console.print(f"phantom of {spec.key} ({arrangement}) written to {data(out)}", highlight=False)
