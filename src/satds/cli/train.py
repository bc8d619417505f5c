"""``satds train`` and ``satds predict``: nnU-Net v2 on an exported task."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .app import CatalogOpt, app, catalog_dir, console, data, fail

RootOpt = Annotated[Path, typer.Option("--root", help="Folder holding nnUNet_raw, nnUNet_preprocessed and nnUNet_results.")]
TrainerOpt = Annotated[
    str,
    typer.Option(
        "--trainer", "-tr",
        help="nnU-Net trainer class. satds adds nnUNetTrainer_Satds (default schedule, --epochs), nnUNetTrainer_SatdsMargExc "
        "(marginal + exclusion losses; export with --policy marginal), nnUNetTrainer_SatdsCPTM (cross-patch transformer), "
        "their ...Smoke variants (tiny, 1 epoch x 2 iterations) and nnUNetTrainer_SatdsShort.",
    ),
]
DeviceOpt = Annotated[str, typer.Option(help="cpu, cuda, mps or auto (cuda when available).")]


def _echo(line: str) -> None:
    console.print(line, highlight=False, markup=False, soft_wrap=True)


@app.command("train")
def train_cmd(
    task: Annotated[Optional[str], typer.Option("--task", "-t", help="Recipe name in pipelines/, a recipe YAML, or an exported task's name.")] = None,
    recipe: Annotated[Optional[str], typer.Option("--recipe", help="Run a training pipeline (pipelines/NAME.yaml, kind: training), e.g. universal33-paper: every stage, resumable.")] = None,
    config: Annotated[str, typer.Option("--config", "-c", help="nnU-Net configuration.")] = "3d_fullres",
    fold: Annotated[Optional[str], typer.Option("--fold", "-f", help="Cross-validation fold (grouped, from the catalog) or 'all' \\[default: 0; --recipe: the pipeline's].")] = None,
    trainer: TrainerOpt = "nnUNetTrainer",
    device: DeviceOpt = "auto",
    root: RootOpt = Path("nnunet"),
    plan: Annotated[Optional[bool], typer.Option("--plan/--no-plan", help="Run plan_and_preprocess \\[default: when the plans are missing or older than the export].")] = None,
    reexport: Annotated[bool, typer.Option("--reexport", help="Export the task again even when it is up to date.")] = False,
    pseudo: Annotated[Optional[Path], typer.Option("--pseudo", help="Pseudo-label folder (policy pseudo).")] = None,
    processes: Annotated[int, typer.Option("--processes", "-np", help="Processes for preprocessing and data augmentation.")] = 2,
    continue_training: Annotated[bool, typer.Option("--continue", help="Continue from the latest checkpoint.")] = False,
    epochs: Annotated[Optional[int], typer.Option("--epochs", min=1, help="Epochs for satds's trainers (SATDS_EPOCHS) \\[default: the trainer's].")] = None,
    smoke: Annotated[bool, typer.Option("--smoke", help="--recipe: use each model's smoke trainer (tiny network, 1 epoch x 2 iterations).")] = False,
    until: Annotated[Optional[str], typer.Option("--until", help="--recipe: stop after this stage.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="--recipe: print the stages and which are done; run nothing.")] = False,
    catalog: CatalogOpt = None,
) -> None:
    """Export if needed, plan and preprocess (with nnU-Net's integrity check), install grouped folds, train.

    With --recipe, run a whole training pipeline instead (e.g. universal33-paper: the specialists, their
    pseudo-labels, the universal model, the evaluation), skipping the stages a previous run finished.
    """
    from ..catalog import Catalog
    from ..train import train
    from .export import load_task

    if (task is None) == (recipe is None):
        raise fail("give --task (one model) or --recipe (a training pipeline)")
    if recipe is not None:
        return _run_pipeline(recipe, lambda: Catalog(catalog_dir(catalog)), root=root, device=device, processes=processes, epochs=epochs, smoke=smoke, fold=fold, until=until, dry_run=dry_run)
    if smoke or until or dry_run:
        raise fail("--smoke, --until and --dry-run go with --recipe")
    recipe_ = load_task(task, raw=root / "nnUNet_raw", partial_labels="pseudo" if pseudo else None, pseudo_labels=str(pseudo) if pseudo else None)
    res = train(
        recipe_, catalog=Catalog(catalog_dir(catalog, must_exist=False)), root=root, config=config, fold=fold or "0", trainer=trainer, device=device,
        plan=plan, processes=processes, reexport=reexport, pseudo_dir=pseudo, continue_training=continue_training, epochs=epochs, echo=_echo,
    )
    console.print(f"model: {data(res.model_folder)}", highlight=False)


def _run_pipeline(name: str, open_catalog, *, root: Path, device: str, processes: int, epochs, smoke: bool, fold, until, dry_run: bool) -> None:
    from rich.table import Table

    from ..train.pipeline import PipelineRun, find_pipeline

    pipeline = find_pipeline(name)  # an unknown name is named before the catalog is looked for
    catalog = open_catalog()
    run = PipelineRun(pipeline, catalog=catalog, root=root, device=device, processes=processes, epochs=epochs, smoke=smoke, fold=fold, echo=_echo)
    results = run.run(until=until, dry_run=dry_run)
    if dry_run:
        return
    ran = sum(r.status == "ran" for r in results)
    console.print(f"{run.p.name}: {ran} stage(s) run, {len(results) - ran} already done; state in {data(run.dir / 'state.json')}", highlight=False)
    summary = run.summarise()
    if not summary["models"]:
        return
    t = Table(title=f"{run.p.name}: test-split scores (DSC / HD95 for organs, HD for bones)")
    groups = [g.name for g in run.p.evaluation.groups]
    for c in ("model", "trainer", *groups, "vertebra id.rate / d"):
        t.add_column(c)
    for task, row in summary["models"].items():
        cells = []
        for g in groups:
            v = row["groups"].get(g)
            dist = None if v is None else next((v[k] for k in ("hd95", "hd") if k in v), None)
            cells.append("–" if v is None else f"{_f(v['dsc'], 3)} / {_f(dist, 2)}")
        vt = row.get("vertebrae")
        cells.append("–" if not vt else f"{_f(100 * vt['id_rate'] if vt['id_rate'] is not None else None, 1)} % / {_f(vt['d_mm'], 2)} mm")
        t.add_row(task, row["trainer"], *cells)
    console.print(t)
    console.print(f"summary: {data(run.dir / 'summary.json')}", highlight=False)


def _f(x, digits: int) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


@app.command("predict")
def predict_cmd(
    task: Annotated[str, typer.Option("--task", "-t", help="Recipe name, recipe YAML, or an exported task's name.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the predicted label maps (<case>.nii.gz).")],
    input_dir: Annotated[Optional[Path], typer.Option("--input", "-i", help="Folder of <case>_0000.nii.gz images (nnU-Net layout).")] = None,
    split: Annotated[Optional[str], typer.Option(help="Predict the exported task's test, train or all cases instead of --input.")] = None,
    config: Annotated[str, typer.Option("--config", "-c")] = "3d_fullres",
    fold: Annotated[str, typer.Option("--fold", "-f")] = "0",
    trainer: TrainerOpt = "nnUNetTrainer",
    device: DeviceOpt = "auto",
    disable_tta: Annotated[bool, typer.Option("--disable-tta", help="No mirroring test-time augmentation (8x faster).")] = False,
    checkpoint: Annotated[str, typer.Option(help="checkpoint_final.pth or checkpoint_best.pth.")] = "checkpoint_final.pth",
    root: RootOpt = Path("nnunet"),
    processes: Annotated[int, typer.Option("--processes", "-np", help="Pre- and post-processing processes (0: nnU-Net's sequential predictor, no worker processes).")] = 2,
) -> None:
    """Run nnU-Net inference with a trained satds task (nnUNet_extTrainer set, so satds trainers load)."""
    from ..train import predict
    from .export import load_task

    recipe = load_task(task, raw=root / "nnUNet_raw")
    dest = predict(
        recipe, out=out, root=root, input_dir=input_dir, split=split, config=config, fold=fold, trainer=trainer,
        device=device, disable_tta=disable_tta, checkpoint=checkpoint, processes=processes, echo=_echo,
    )
    console.print(f"predictions: {data(dest)}", highlight=False)
