"""``satds export monai``: a task as images, labels and a MONAI datalist with per-case class status."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .app import CatalogOpt, catalog_dir, console, data, err_console, fail
from .export import export_app, load_task


@export_app.command("monai")
def export_monai_cmd(
    task: Annotated[Optional[str], typer.Option("--task", "-t", help="Recipe name in pipelines/ or a recipe YAML.")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write <name>/ into (datalist.json, class_status.json, imagesTr/, labelsTr/, ...).")] = Path("monai"),
    classes: Annotated[Optional[str], typer.Option(help="Ad-hoc task: comma-separated ontology class names, in channel order.")] = None,
    datasets: Annotated[Optional[str], typer.Option(help="Ad-hoc task: comma-separated dataset keys (first listed wins a class on merged images).")] = None,
    name: Annotated[Optional[str], typer.Option(help="Ad-hoc task name (the folder's name).")] = None,
    source: Annotated[Optional[str], typer.Option(help="native (source images in RAS; MONAI's Spacingd respaces) or normalised (satds build outputs).")] = None,
    labels: Annotated[str, typer.Option(help="masks (one channel per class, overlaps kept), values (one class-per-value map; classes that cannot overlap) or auto.")] = "auto",
    view: Annotated[Optional[str], typer.Option(help="multichannel, or per_channel (each channel its own case).")] = None,
    catalog: CatalogOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Plan and validate only; write nothing.")] = False,
    workers: Annotated[int, typer.Option("--workers", "-w", help="Parallel processes.")] = 1,
) -> None:
    """Write a task for MONAI: datalist.json (training with grouped folds, validation, testing) that
    monai.data.load_decathlon_datalist reads, and class_status.json (present/absent/unknown per case × class)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from ..catalog import Catalog
    from ..export.monai import export_monai

    if not task and not (classes and datasets and name):
        raise fail("an ad-hoc task needs --classes, --datasets and --name (or give --task)")
    # ad-hoc tasks need a dataset id for the recipe model only; MONAI does not use it
    recipe = load_task(task, classes=classes, datasets=datasets, name=name, dataset_id=None if task else 999, source=source, view=view)
    with Progress(TextColumn(f"export {recipe.name} (MONAI)"), BarColumn(), MofNCompleteColumn(), console=err_console, transient=True) as bar:
        t = bar.add_task("export", total=None)
        res = export_monai(Catalog(catalog_dir(catalog)), recipe, out, labels=labels, dry_run=dry_run, workers=workers, progress=lambda d, n: bar.update(t, completed=d, total=n))
    for w in res.warnings:
        err_console.print(f"[yellow]warning:[/yellow] {data(w)}", highlight=False)
    plan = res.plan
    if dry_run:
        n_test = sum(len(u.case_ids) for u in plan.test_units())
        console.print(f"dry run: nothing written (would write {data(res.folder)}: {len(plan.train_case_ids())} training/validation and {n_test} test cases, labels as {res.label_format})")
        return
    console.print(
        f"wrote {res.folder}: {len(res.entries('train'))} training cases ({plan.n_folds} grouped folds), {len(res.entries('val'))} validation, "
        f"{len(res.entries('test'))} test; labels as {res.label_format}; datalist.json + class_status.json",
        highlight=False,
    )
