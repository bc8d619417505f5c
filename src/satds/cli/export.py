"""``satds export nnunet`` and ``satds pseudolabel``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from .app import CatalogOpt, app, catalog_dir, console, data, err_console, fail

export_app = typer.Typer(
    name="export",
    help="Export the catalog as training datasets (nnU-Net v2).",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(export_app, name="export")


def default_raw() -> Path:
    env = os.environ.get("nnUNet_raw")
    return Path(env) if env else Path("nnunet") / "nnUNet_raw"


def load_task(
    task: str | None,
    *,
    raw: Path | None = None,
    classes: str | None = None,
    datasets: str | None = None,
    name: str | None = None,
    dataset_id: int | None = None,
    **overrides,
):
    """A recipe from --task (pipelines/, a YAML path or an earlier export) or from the ad-hoc options."""
    from ..export.recipe import adhoc_recipe, find_recipe, parse_recipe

    overrides = {k: v for k, v in overrides.items() if v is not None}
    if task:
        if classes or datasets:
            raise fail("give either --task or --classes/--datasets, not both")
        r = find_recipe(task, raw)
        data = r.model_dump(mode="json")
        if dataset_id is not None:
            data["dataset_id"] = dataset_id
        if name:
            data["name"] = name
        data.update(overrides)
        if data.get("partial_labels") != "pseudo":
            data.pop("pseudo_labels", None)
        return parse_recipe(data, f"task {task}")
    if not (classes and datasets and name and dataset_id is not None):
        raise fail("an ad-hoc task needs --classes, --datasets, --name and --dataset-id (or give --task)")
    split = lambda s: [x.strip() for x in s.split(",") if x.strip()]  # noqa: E731
    return adhoc_recipe(name=name, dataset_id=dataset_id, classes=split(classes), datasets=split(datasets), **overrides)


@export_app.command("nnunet")
def nnunet_cmd(
    task: Annotated[Optional[str], typer.Option("--task", "-t", help="Recipe name in pipelines/, a recipe YAML, or an exported task's name.")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="nnUNet_raw folder to write DatasetNNN_Name/ into \\[default: $nnUNet_raw or ./nnunet/nnUNet_raw].")] = None,
    dataset_id: Annotated[Optional[int], typer.Option("--dataset-id", help="nnU-Net dataset id (overrides the recipe's).")] = None,
    classes: Annotated[Optional[str], typer.Option(help="Ad-hoc task: comma-separated ontology class names, in label order.")] = None,
    datasets: Annotated[Optional[str], typer.Option(help="Ad-hoc task: comma-separated dataset keys.")] = None,
    name: Annotated[Optional[str], typer.Option(help="Ad-hoc task name (the folder becomes DatasetNNN_NAME).")] = None,
    policy: Annotated[Optional[str], typer.Option("--policy", help="Partial labels: ignore, marginal (for the marginal/exclusion trainer), pseudo or background (overrides the recipe).")] = None,
    source: Annotated[Optional[str], typer.Option(help="native (source images in RAS, nnU-Net plans spacing) or normalised (satds build outputs).")] = None,
    view: Annotated[Optional[str], typer.Option(help="multichannel, or per_channel (each channel its own case, as SAT-DS).")] = None,
    overlap: Annotated[Optional[str], typer.Option(help="precedence (one label per voxel) or regions (nnU-Net region training).")] = None,
    pseudo: Annotated[Optional[Path], typer.Option("--pseudo", help="Pseudo-label folder from `satds pseudolabel` (policy pseudo).")] = None,
    catalog: CatalogOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Plan and validate only: print the cases, write nothing.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing DatasetNNN_Name/ that holds files satds did not write; those files are moved to replaced-DatasetNNN_Name-<time>/, never deleted.")] = False,
    workers: Annotated[int, typer.Option("--workers", "-w", help="Parallel processes.")] = 1,
) -> None:
    """Write an nnU-Net v2 dataset (imagesTr/labelsTr/imagesTs/labelsTs, dataset.json, splits_final.json)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
    from rich.table import Table

    from ..catalog import Catalog
    from ..export import export_nnunet

    out = out or default_raw()
    if pseudo is not None and policy is None:
        policy = "pseudo"
    recipe = load_task(
        task, raw=out, classes=classes, datasets=datasets, name=name, dataset_id=dataset_id,
        partial_labels=policy, source=source, view=view, overlap=overlap, pseudo_labels=str(pseudo) if pseudo else None,
    )
    cat = Catalog(catalog_dir(catalog))
    with Progress(TextColumn(f"export {recipe.folder_name}"), BarColumn(), MofNCompleteColumn(), console=err_console, transient=True) as bar:
        t = bar.add_task("export", total=None)
        res = export_nnunet(cat, recipe, out, pseudo_dir=pseudo, dry_run=dry_run, overwrite=overwrite, workers=workers, progress=lambda d, n: bar.update(t, completed=d, total=n))
    plan = res.plan
    for w in res.warnings:
        err_console.print(f"[yellow]warning:[/yellow] {data(w)}", highlight=False)
    for n in plan.notes[:20]:
        console.print(f"  [dim]note: {data(n)}[/dim]", highlight=False)
    tbl = Table(title=f"{recipe.folder_name} ({recipe.partial_labels} policy, {recipe.source} images, {recipe.view})")
    for c in ("dataset", "train cases", "test cases", "classes known"):
        tbl.add_column(c)
    for d in recipe.datasets:
        us = [u for u in plan.units if u.members[0]["dataset"] == d]
        known = sorted({c for u in us for c in u.known})
        tbl.add_row(d, str(sum(len(u.case_ids) for u in us if u.split == "train")), str(sum(len(u.case_ids) for u in us if u.split == "test")), ", ".join(known) or "-")
    console.print(tbl)
    console.print("labels: " + ", ".join(f"{v}={c}" for c, v in plan.resolved.value.items()) + (f", {plan.resolved.ignore_value}=ignore" if recipe.partial_labels == "ignore" else ""), highlight=False)
    if dry_run:
        console.print(f"dry run: nothing written (would write {data(res.folder)})", highlight=False)
    else:
        console.print(f"wrote {data(res.folder)} ({len(plan.train_case_ids())} training cases, {plan.n_folds} grouped folds in splits_final.json)", highlight=False)
        if res.replaced is not None:
            err_console.print(f"[yellow]note:[/yellow] the files satds did not write in the previous {data(res.folder.name)} are kept in {data(res.replaced)}", highlight=False)


@app.command("pseudolabel")
def pseudolabel_cmd(
    task: Annotated[str, typer.Option("--task", "-t", help="Recipe name, recipe YAML, or an exported task's name.")],
    predictions: Annotated[list[Path], typer.Option("--predictions", "-p", help="Folder of nnU-Net predictions (<case>.nii.gz); repeat for several models, first wins.")],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Output folder \\[default: the recipe's pseudo_labels or ./pseudolabels/DatasetNNN_Name].")] = None,
    raw: Annotated[Optional[Path], typer.Option("--raw", help="nnUNet_raw holding ad-hoc exports \\[default: $nnUNet_raw or ./nnunet/nnUNet_raw].")] = None,
    catalog: CatalogOpt = None,
    workers: Annotated[int, typer.Option("--workers", "-w", help="Parallel processes.")] = 1,
) -> None:
    """Merge predictions with each scan's ground truth, class-wise (GT authoritative where annotated)."""
    from ..catalog import Catalog
    from ..export import make_pseudolabels

    recipe = load_task(task, raw=raw or default_raw())
    dest = out or (Path(recipe.pseudo_labels) if recipe.pseudo_labels else Path("pseudolabels") / recipe.folder_name)
    res = make_pseudolabels(Catalog(catalog_dir(catalog)), recipe, predictions, dest, workers=workers)
    n_pseudo = sum(1 for c in res.cases.values() if c["pseudo"])
    for n in res.notes:
        console.print(f"  [dim]note: {data(n)}[/dim]", highlight=False)
    console.print(f"wrote {len(res.cases)} label maps ({n_pseudo} with pseudo-labelled classes) to {data(dest)}", highlight=False)
    console.print(f"use them with: satds export nnunet --task {task} --policy pseudo --pseudo {data(dest)}", highlight=False)
