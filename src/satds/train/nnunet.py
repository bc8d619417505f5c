"""``satds train`` / ``satds predict``: run nnU-Net v2 on an exported task, with satds's folders and trainers.

Everything nnU-Net needs is set per command, never globally: ``nnUNet_raw``, ``nnUNet_preprocessed`` and
``nnUNet_results`` under one root (default ``./nnunet``), and ``nnUNet_extTrainer`` pointing at
``satds/train/trainers`` (also at predict time: the trainer's name is stored in the checkpoint). The steps:

1. export the task when its folder is missing or stale (its ``export_key`` differs from the catalog's);
2. ``nnUNetv2_plan_and_preprocess --verify_dataset_integrity`` when the plans are missing or older than
   the export;
3. copy the export's ``splits_final.json`` (grouped folds from the catalog) into the preprocessed folder
   (after planning: nnU-Net expects it there);
4. ``nnUNetv2_train``, its output streamed.

Every command is printed before it runs.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import SatdsError

TRAINERS_DIR = Path(__file__).resolve().parent / "trainers"
PLAN_STAMP = "satds_plan.json"

Echo = Callable[[str], None]


class TrainError(SatdsError):
    """nnU-Net could not be run, or a step failed."""


def _print(line: str) -> None:
    print(line, flush=True)


@dataclass
class NnunetPaths:
    root: Path

    def __post_init__(self) -> None:
        self.root = Path(self.root).resolve()

    @property
    def raw(self) -> Path:
        return self.root / "nnUNet_raw"

    @property
    def preprocessed(self) -> Path:
        return self.root / "nnUNet_preprocessed"

    @property
    def results(self) -> Path:
        return self.root / "nnUNet_results"

    def env(self, base: dict[str, str] | None = None, processes: int | None = None, epochs: int | None = None) -> dict[str, str]:
        """The environment for an nnU-Net command. ``processes`` caps nnU-Net's worker pools (its default
        is 8 export workers and up to 12 augmentation workers; 0 runs augmentation in-process); variables
        already set by the user win. ``epochs`` sets ``SATDS_EPOCHS``, which satds's trainers read."""
        env = dict(os.environ if base is None else base)
        if processes is not None:
            env.setdefault("nnUNet_def_n_proc", str(max(1, processes)))
            env.setdefault("nnUNet_n_proc_DA", str(max(0, processes)))
        if epochs is not None:
            env["SATDS_EPOCHS"] = str(int(epochs))
        env["nnUNet_raw"] = str(self.raw)
        env["nnUNet_preprocessed"] = str(self.preprocessed)
        env["nnUNet_results"] = str(self.results)
        ext = [str(TRAINERS_DIR)] + [p for p in env.get("nnUNet_extTrainer", "").split(os.pathsep) if p and p != str(TRAINERS_DIR)]
        env["nnUNet_extTrainer"] = os.pathsep.join(ext)
        env.setdefault("PYTHONUNBUFFERED", "1")
        return env

    def mkdirs(self) -> None:
        for d in (self.raw, self.preprocessed, self.results):
            d.mkdir(parents=True, exist_ok=True)


def nnunet_bin(tool: str) -> str:
    """An nnU-Net command from the running interpreter's environment (then from PATH)."""
    here = Path(sys.executable).parent / tool
    if here.exists():
        return str(here)
    found = shutil.which(tool)
    if found:
        return found
    raise TrainError(f"{tool} not found next to {sys.executable} nor on PATH: install nnU-Net (pip install 'satds[train]')")


def run_command(cmd: list[str], env: dict[str, str], echo: Echo = _print, cwd: str | Path | None = None) -> None:
    """Run ``cmd``, streaming its output line by line through ``echo``; TrainError with the tail on failure."""
    import time

    echo("$ " + shlex.join(cmd))
    t0 = time.monotonic()
    tail: deque[str] = deque(maxlen=40)
    try:
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    except OSError as e:
        raise TrainError(f"cannot run {cmd[0]}: {e}") from e
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            line = line.rstrip("\n")
            tail.append(line)
            echo(line)
        rc = proc.wait()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    if rc != 0:
        raise TrainError(f"{Path(cmd[0]).name} exited with status {rc}; last lines:\n" + "\n".join(tail))
    echo(f"({Path(cmd[0]).name} done in {time.monotonic() - t0:.1f} s)")


# ---------------------------------------------------------------------- steps
def ensure_export(catalog, recipe, paths: NnunetPaths, *, force: bool = False, pseudo_dir=None, workers: int | None = 1, echo: Echo = _print) -> tuple[Path, bool]:
    """The task's raw folder, exported (again) when missing or stale; returns (folder, whether written)."""
    from ..export import export_nnunet
    from ..export.nnunet import PROVENANCE

    folder = paths.raw / recipe.folder_name
    prov_file = folder / PROVENANCE
    if catalog is None or not catalog.exists():
        if prov_file.exists():
            echo(f"no catalog at {catalog.root if catalog else '-'}; using the existing export {folder}")
            return folder, False
        raise TrainError(f"{folder} does not exist and there is no catalog to export it from")
    dry = export_nnunet(catalog, recipe, paths.raw, pseudo_dir=pseudo_dir, dry_run=True)
    if prov_file.exists() and not force:
        old = json.loads(prov_file.read_text()).get("export_key")
        if old == dry.key:
            echo(f"export {folder.name} is up to date")
            return folder, False
        echo(f"export {folder.name} is stale (catalog, split or recipe changed); exporting again")
    else:
        echo(f"exporting {folder.name} to {paths.raw}")
    res = export_nnunet(catalog, recipe, paths.raw, pseudo_dir=pseudo_dir, workers=workers)
    for w in res.warnings:
        echo(f"warning: {w}")
    return folder, True


def _export_key(folder_raw: Path) -> str | None:
    from ..export.nnunet import PROVENANCE

    return json.loads((folder_raw / PROVENANCE).read_text()).get("export_key")


def plan_configs(config: str) -> list[str]:
    return ["3d_fullres", "3d_lowres"] if config == "3d_cascade_fullres" else [config]


def needs_plan(folder_raw: Path, paths: NnunetPaths, config: str) -> bool:
    pre = paths.preprocessed / folder_raw.name
    stamp = pre / PLAN_STAMP
    if not (pre / "nnUNetPlans.json").exists() or not stamp.exists():
        return True
    s = json.loads(stamp.read_text())
    key = _export_key(folder_raw)
    return s.get("export_key") != key or not set(plan_configs(config)) <= set(s.get("configs", []))


def plan_and_preprocess(folder_raw: Path, dataset_id: int, paths: NnunetPaths, config: str, *, processes: int = 2, echo: Echo = _print, extra: list[str] | None = None) -> None:
    cfgs = plan_configs(config)
    cmd = [nnunet_bin("nnUNetv2_plan_and_preprocess"), "-d", str(dataset_id), "--verify_dataset_integrity", "-c", *cfgs, "-np", *[str(max(1, processes))] * len(cfgs), "-npfp", str(max(1, processes))]
    run_command(cmd + (extra or []), paths.env(processes=max(1, processes)), echo)  # the planner needs >= 1 thread
    pre = paths.preprocessed / folder_raw.name
    key = _export_key(folder_raw)
    stamp = pre / PLAN_STAMP
    old = json.loads(stamp.read_text()) if stamp.exists() else {}
    configs = sorted(set(cfgs) | (set(old.get("configs", [])) if old.get("export_key") == key else set()))
    stamp.write_text(json.dumps({"export_key": key, "configs": configs}))


def install_splits(folder_raw: Path, paths: NnunetPaths, fold: str, echo: Echo = _print) -> Path:
    """Copy the grouped folds (and the export's ``class_status.json``, read by the partial-label trainers)
    into nnUNet_preprocessed, where nnU-Net and its trainers read them, and check the fold."""
    src = folder_raw / "splits_final.json"
    dst = paths.preprocessed / folder_raw.name / "splits_final.json"
    if not src.exists():
        raise TrainError(f"{src} is missing; export the task again")
    splits = json.loads(src.read_text())
    if fold != "all":
        k = int(fold)
        if k >= len(splits):
            raise TrainError(f"fold {k} does not exist: the catalog has {len(splits)} cross-validation folds (0-{len(splits) - 1})")
        if not splits[k]["val"]:
            usable = [i for i, s in enumerate(splits) if s["val"]]
            raise TrainError(f"fold {k} has no validation case of this task; use one of folds {usable} (or 'all')")
        if not splits[k]["train"]:
            raise TrainError(f"fold {k} has no training case")
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    echo(f"splits_final.json ({len(splits)} grouped folds) -> {dst}")
    from ..export.class_status import CLASS_STATUS

    status = folder_raw / CLASS_STATUS
    if status.exists():
        shutil.copyfile(status, dst.parent / CLASS_STATUS)
    return dst


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:
        return "cpu"


@dataclass
class TrainResult:
    raw: Path
    model_folder: Path
    exported: bool
    planned: bool


def model_folder(paths: NnunetPaths, folder_name: str, trainer: str, config: str, fold: str, plans: str = "nnUNetPlans") -> Path:
    return paths.results / folder_name / f"{trainer}__{plans}__{config}" / f"fold_{fold}"


def train(
    recipe,
    *,
    catalog=None,
    root: str | Path = "nnunet",
    config: str = "3d_fullres",
    fold: str = "0",
    trainer: str = "nnUNetTrainer",
    device: str = "auto",
    plan: bool | None = None,
    processes: int = 2,
    reexport: bool = False,
    pseudo_dir=None,
    continue_training: bool = False,
    epochs: int | None = None,
    extra_args: list[str] | None = None,
    echo: Echo = _print,
) -> TrainResult:
    """Export (if needed), plan (if needed or ``plan``), install the folds and train one fold.

    ``epochs``: the number of epochs for satds's trainers (``SATDS_EPOCHS``; nnU-Net's own trainers ignore it).
    """
    paths = NnunetPaths(Path(root))
    paths.mkdirs()
    folder, exported = ensure_export(catalog, recipe, paths, force=reexport, pseudo_dir=pseudo_dir, echo=echo)
    do_plan = plan if plan is not None else (exported or needs_plan(folder, paths, config))
    if do_plan:
        plan_and_preprocess(folder, recipe.dataset_id, paths, config, processes=processes, echo=echo)
    elif not (paths.preprocessed / folder.name / "nnUNetPlans.json").exists():
        raise TrainError(f"no plans in {paths.preprocessed / folder.name}; run without --no-plan")
    install_splits(folder, paths, fold, echo)
    if epochs is not None and not trainer.startswith("nnUNetTrainer_Satds"):
        echo(f"warning: {trainer} is not a satds trainer and ignores --epochs (nnUNetTrainer_Satds is nnU-Net's default trainer with it)")
    dev = resolve_device(device)
    cmd = [nnunet_bin("nnUNetv2_train"), str(recipe.dataset_id), config, str(fold), "-tr", trainer, "-device", dev]
    if continue_training:
        cmd.append("--c")
    run_command(cmd + (extra_args or []), paths.env(processes=processes, epochs=epochs), echo)
    return TrainResult(folder, model_folder(paths, folder.name, trainer, config, fold), exported, do_plan)


def predict(
    recipe,
    *,
    out: str | Path,
    root: str | Path = "nnunet",
    input_dir: str | Path | None = None,
    split: str | None = None,
    config: str = "3d_fullres",
    fold: str = "0",
    trainer: str = "nnUNetTrainer",
    device: str = "auto",
    disable_tta: bool = False,
    checkpoint: str = "checkpoint_final.pth",
    processes: int = 2,
    echo: Echo = _print,
) -> Path:
    """nnU-Net inference with the task's model; input: a folder of ``<case>_0000.nii.gz`` files or a split.

    ``processes`` 0 runs nnU-Net's sequential predictor (no worker processes: faster for a few small cases)."""
    paths = NnunetPaths(Path(root))
    folder = paths.raw / recipe.folder_name
    if (input_dir is None) == (split is None):
        raise TrainError("give either an input folder or --split")
    if input_dir is not None:
        inputs = [Path(input_dir)]
    else:
        if split not in ("test", "train", "all"):
            raise TrainError(f"--split must be test, train or all, not {split!r}")
        inputs = [folder / "imagesTs"] * (split in ("test", "all")) + [folder / "imagesTr"] * (split in ("train", "all"))
    for i in inputs:
        if not i.is_dir():
            raise TrainError(f"input folder {i} does not exist" + ("" if input_dir else "; export the task first"))
    mf = model_folder(paths, folder.name, trainer, config, fold)
    if not (mf / checkpoint).exists():
        raise TrainError(f"no model at {mf / checkpoint}; train it first (satds train --task {recipe.name} --fold {fold} --trainer {trainer})")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    dev = resolve_device(device)
    for i in inputs:
        if not any(i.glob("*_0000.nii.gz")):
            echo(f"{i} holds no images; skipped")
            continue
        cmd = [
            nnunet_bin("nnUNetv2_predict"), "-i", str(i), "-o", str(out), "-d", str(recipe.dataset_id), "-c", config,
            "-f", str(fold), "-tr", trainer, "-chk", checkpoint, "-device", dev, "-npp", str(max(0, processes)), "-nps", str(max(0, processes)),
            "--disable_progress_bar",
        ]
        if disable_tta:
            cmd.append("--disable_tta")
        run_command(cmd, paths.env(processes=processes), echo)
    return out
