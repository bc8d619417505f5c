"""``satds train`` and ``satds predict``: nnU-Net v2 on an exported task."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .app import CatalogOpt, app, catalog_dir, console, fail

RootOpt = Annotated[Path, typer.Option("--root", help="Folder holding nnUNet_raw, nnUNet_preprocessed and nnUNet_results.")]
TrainerOpt = Annotated[str, typer.Option("--trainer", "-tr", help="nnU-Net trainer class; satds adds nnUNetTrainer_SatdsSmoke and nnUNetTrainer_SatdsShort.")]
DeviceOpt = Annotated[str, typer.Option(help="cpu, cuda, mps or auto (cuda when available).")]


def _echo(line: str) -> None:
    console.print(line, highlight=False, markup=False, soft_wrap=True)


@app.command("train")
def train_cmd(
    task: Annotated[str, typer.Option("--task", "-t", help="Recipe name in pipelines/, a recipe YAML, or an exported task's name.")],
    config: Annotated[str, typer.Option("--config", "-c", help="nnU-Net configuration.")] = "3d_fullres",
    fold: Annotated[str, typer.Option("--fold", "-f", help="Cross-validation fold (grouped, from the catalog) or 'all'.")] = "0",
    trainer: TrainerOpt = "nnUNetTrainer",
    device: DeviceOpt = "auto",
    root: RootOpt = Path("nnunet"),
    plan: Annotated[Optional[bool], typer.Option("--plan/--no-plan", help="Run plan_and_preprocess \\[default: when the plans are missing or older than the export].")] = None,
    reexport: Annotated[bool, typer.Option("--reexport", help="Export the task again even when it is up to date.")] = False,
    pseudo: Annotated[Optional[Path], typer.Option("--pseudo", help="Pseudo-label folder (policy pseudo).")] = None,
    processes: Annotated[int, typer.Option("--processes", "-np", help="Processes for preprocessing and data augmentation.")] = 2,
    continue_training: Annotated[bool, typer.Option("--continue", help="Continue from the latest checkpoint.")] = False,
    catalog: CatalogOpt = None,
) -> None:
    """Export if needed, plan and preprocess (with nnU-Net's integrity check), install grouped folds, train."""
    from ..catalog import Catalog
    from ..errors import ExportError, SpecError
    from ..train import TrainError, train
    from .export import load_task

    recipe = load_task(task, raw=root / "nnUNet_raw", partial_labels="pseudo" if pseudo else None, pseudo_labels=str(pseudo) if pseudo else None)
    try:
        res = train(
            recipe, catalog=Catalog(catalog_dir(catalog, must_exist=False)), root=root, config=config, fold=fold, trainer=trainer, device=device,
            plan=plan, processes=processes, reexport=reexport, pseudo_dir=pseudo, continue_training=continue_training, echo=_echo,
        )
    except (TrainError, ExportError, SpecError) as e:
        raise fail(str(e))
    console.print(f"model: {res.model_folder}")


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
    processes: Annotated[int, typer.Option("--processes", "-np", help="Pre- and post-processing processes.")] = 2,
) -> None:
    """Run nnU-Net inference with a trained satds task (nnUNet_extTrainer set, so satds trainers load)."""
    from ..errors import SpecError
    from ..train import TrainError, predict
    from .export import load_task

    recipe = load_task(task, raw=root / "nnUNet_raw")
    try:
        dest = predict(
            recipe, out=out, root=root, input_dir=input_dir, split=split, config=config, fold=fold, trainer=trainer,
            device=device, disable_tta=disable_tta, checkpoint=checkpoint, processes=processes, echo=_echo,
        )
    except (TrainError, SpecError) as e:
        raise fail(str(e))
    console.print(f"predictions: {dest}")
