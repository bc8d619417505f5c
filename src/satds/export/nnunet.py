"""``satds export nnunet``: write an nnU-Net v2 raw dataset (``DatasetNNN_Name/``) from the catalog.

The export is planned from the catalog first (every problem collected), then each case is read, labelled
by the recipe's partial-label policy and written into a hidden temporary folder; problems found in the
voxels (NaN, grids, label values) are collected over all cases too. Only a clean export is moved into
place, replacing the previous one, so nnU-Net never sees a half-written or invalid dataset.
"""

from __future__ import annotations

import json
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .cases import ExportPlan, Unit, load_unit, plan_export, run_unit_jobs, unit_job
from .class_status import CLASS_STATUS, class_status
from .folder import publish, read_record, target_problems
from .problems import export_error
from .pseudofiles import pseudo_stamp
from .recipe import Recipe

PROVENANCE = "satds_export.json"
SPLITS = "splits_final.json"


@dataclass
class ExportResult:
    folder: Path
    plan: ExportPlan
    key: str
    cases: dict[str, dict[str, Any]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    written: bool = False
    replaced: Path | None = None  # where files satds did not write went (``overwrite``)


def folder_problems(out: Path, recipe: Recipe) -> list[str]:
    """Other datasets with the same id in the raw folder would make nnU-Net's id lookup ambiguous."""
    if not out.is_dir():
        return []
    clash = [d.name for d in out.glob(f"Dataset{recipe.dataset_id:03d}_*") if d.is_dir() and d.name != recipe.folder_name]
    return [f"{out} already holds {', '.join(clash)} with dataset id {recipe.dataset_id}; pick another dataset_id or remove it"] if clash else []


def satds_files(folder: Path) -> set[str] | None:
    """The files (relative paths) an earlier satds export wrote into ``folder``; None when satds did not
    write it (no readable ``satds_export.json``)."""
    prov = read_record(folder / PROVENANCE)
    if prov is None or "cases" not in prov:
        return None
    if "files" in prov:
        return set(prov["files"])
    # exports written before provenance listed its files: what their cases, channels and ending imply
    ending = (prov.get("recipe") or {}).get("file_ending", ".nii.gz")
    n = max(1, len(prov.get("channels") or [None]))
    files = {"dataset.json", SPLITS, PROVENANCE}
    for cid, c in prov["cases"].items():
        tr = c.get("split") == "train"
        chans = range(1) if c.get("channel") is not None else range(n)
        files |= {f"{'imagesTr' if tr else 'imagesTs'}/{cid}_{k:04d}{ending}" for k in chans}
        files |= {f"{'labelsTr' if tr else 'labelsTs'}/{cid}{ending}"}
    return files


def dataset_json(plan: ExportPlan, n_training: int) -> dict[str, Any]:
    from .. import __version__

    r, rr = plan.recipe, plan.resolved
    labels: dict[str, Any] = {"background": 0}
    extra: dict[str, Any] = {}
    if r.overlap == "regions":
        reg, order = rr.regions()
        labels.update(reg)
        extra["regions_class_order"] = order
    else:
        labels.update({c: rr.value[c] for c in rr.ids})
    if r.partial_labels == "ignore":
        labels["ignore"] = rr.ignore_value
    dj: dict[str, Any] = {
        "channel_names": {str(i): n for i, n in enumerate(plan.channel_names)},
        "labels": labels,
        "numTraining": n_training,
        "file_ending": r.file_ending,
        **extra,
        "name": r.name,
        **plan.about(),
        "release": f"satds {__version__}",
        "class_names": {c: n for c, n in zip(rr.ids, rr.names)},
        "partial_labels": r.partial_labels,
    }
    return dj


def check_dataset_json(dj: dict[str, Any]) -> list[str]:
    """nnU-Net's own rules for dataset.json, checked before anything is written."""
    problems = []
    for k in ("channel_names", "labels", "numTraining", "file_ending"):
        if k not in dj:
            problems.append(f"dataset.json lacks {k!r}")
    labels = dj.get("labels", {})
    if labels.get("background") != 0:
        problems.append("dataset.json: background must be 0")
    values: set[int] = set()
    for name, v in labels.items():
        if name == "ignore":
            continue
        values |= set(v) if isinstance(v, (list, tuple)) else {v}
    if values != set(range(len(values))):
        problems.append(f"dataset.json: label values {sorted(values)} are not consecutive from 0")
    if "ignore" in labels and labels["ignore"] != max(values) + 1:
        problems.append(f"dataset.json: ignore must be the highest value {max(values) + 1}, not {labels['ignore']}")
    regions = [k for k, v in labels.items() if isinstance(v, (list, tuple))]
    if regions and len(dj.get("regions_class_order", [])) != len(labels) - 1 - ("ignore" in labels):
        problems.append("dataset.json: regions_class_order needs one entry per region")
    if dj.get("numTraining", 0) < 1:
        problems.append("dataset.json: no training cases")
    return problems


# ---------------------------------------------------------------------- one unit
@dataclass
class UnitJob:
    unit: Unit
    recipe: dict
    tmp: str
    pseudo_dir: str | None
    n_channels: int

    @property
    def key(self) -> str:
        return self.unit.key


def _check_grid(arr_shape, img_shape, what: str, problems: list[str]) -> bool:
    if tuple(arr_shape[:3]) != tuple(img_shape[:3]):
        problems.append(f"{what}: shape {tuple(arr_shape)} differs from the image's {tuple(img_shape)}")
        return False
    return True


@unit_job
def export_unit(job: UnitJob) -> dict[str, Any]:
    """Read, label and write one unit into the temporary folder; returns its provenance and problems."""
    from ..io import write_nifti
    from .labels import body_mask, known_labels
    from .rules import VoxelRules

    u = job.unit
    recipe = Recipe.model_validate(job.recipe)
    rr = recipe.resolve()
    rules = VoxelRules.of(rr)
    data = load_unit(u, recipe.source)
    problems: list[str] = []
    shape = data.shape
    per_case = 1 if recipe.view == "per_channel" else len(data.images)
    if per_case != job.n_channels:
        problems.append(f"{u.key}: {len(data.images)} channel(s) read, dataset.json declares {job.n_channels}")
    problems += data.channel_problems(u.key)
    dtype = rr.label_dtype
    ct = bool(data.modalities) and data.modalities[0].upper().startswith("CT")
    body = None if recipe.outside_body == "ignore" else (lambda: body_mask(data.images[0], ct=ct, normalised=data.normalised, threshold_hu=recipe.body_threshold_hu))
    labels: dict[str, np.ndarray] = {}  # case id → label map (per channel case: pseudo-labels may differ)
    stats: dict[str, Any] = {}
    admits: dict[int, list[int]] = {}  # marginal policy: label → the values the loss accepts there
    label_source = None
    if u.split == "train" and recipe.partial_labels == "marginal":
        from .labels import marginal_labels

        lab, admits = marginal_labels(rules, data.atoms, data.atom_sets, data.annotated, shape, dtype)
        labels = {cid: lab for cid in u.case_ids}
        label_source = "gt (marginal)"
    elif u.split == "train" and recipe.partial_labels == "pseudo":
        from .pseudofiles import read_pseudo_label

        for cid in u.case_ids:
            lab = read_pseudo_label(Path(job.pseudo_dir), cid, shape, data.affine, problems)
            if lab is not None:
                labels[cid] = lab.astype(dtype)
        label_source = "gt+pseudo"
    elif u.labelled and (u.split == "train" or recipe.test_labels):
        lab, stats = known_labels(rules, data.atoms, data.atom_sets, data.annotated, body, shape, dtype)
        labels = {cid: lab for cid in u.case_ids}
        label_source = "gt"
    top = rr.n if (u.split == "train" and recipe.partial_labels != "ignore") else rr.ignore_value
    for cid, lab in labels.items():
        _check_grid(lab.shape, shape, f"{cid}: label", problems)
        if lab.size and int(lab.max()) > top:
            problems.append(f"{cid}: label value {int(lab.max())} above the task's highest {top}")
    if problems:
        return {"problems": problems}

    tmp = Path(job.tmp)
    img_dir, lab_dir = ("imagesTr", "labelsTr") if u.split == "train" else ("imagesTs", "labelsTs")
    counts: dict[str, dict[str, int]] = {}
    for cid, ch in zip(u.case_ids, u.channel_of):
        chans = data.images if ch is None else [data.images[ch]]
        for k, arr in enumerate(chans):
            write_nifti(tmp / img_dir / f"{cid}_{k:04d}{recipe.file_ending}", arr, data.affine)
        if cid in labels:
            write_nifti(tmp / lab_dir / f"{cid}{recipe.file_ending}", labels[cid], data.affine)
            bc = np.bincount(labels[cid].reshape(-1), minlength=rr.ignore_value + 1)
            counts[cid] = {str(v): int(n) for v, n in enumerate(bc) if n}
    return {
        "problems": [],
        "case_ids": u.case_ids,
        "shape": list(shape),
        "affine": np.asarray(data.affine).ravel().tolist(),
        "voxels": counts,
        "labels": label_source,
        "admits": admits,
        **stats,
    }


# ---------------------------------------------------------------------- the export
def export_nnunet(
    catalog,
    recipe: Recipe,
    out: str | Path,
    *,
    pseudo_dir: str | Path | None = None,
    dry_run: bool = False,
    overwrite: bool = False,
    workers: int | None = 1,
    progress: Callable[[int, int], None] | None = None,
) -> ExportResult:
    """Export ``recipe`` from ``catalog`` into ``out/DatasetNNN_Name``; raises ExportError listing all problems.

    An existing task folder is replaced when satds wrote every file in it. Otherwise the export is refused,
    unless ``overwrite``: then the files satds did not write are moved to ``out/replaced-DatasetNNN_Name-<time>/``
    and only the files satds wrote are deleted.
    """
    from .. import __version__
    from ..catalog import now
    from ..ontology import load_ontology

    out = Path(out)
    plan = plan_export(catalog, recipe, pseudo_dir=pseudo_dir)
    if recipe.dataset_id <= 10:
        plan.warnings.insert(0, f"dataset_id {recipe.dataset_id}: nnU-Net keeps ids 1-10 for the Medical Segmentation Decathlon")
    plan.problems += folder_problems(out, recipe)
    folder = out / recipe.folder_name
    # an existing DatasetNNN_Name/ is replaced only when satds wrote all of it, or with overwrite
    plan.problems += target_problems(folder, satds_files(folder), overwrite, f"was not written by satds (no {PROVENANCE})")
    key = plan.export_key(pseudo_stamp(plan.pseudo_dir))
    result = ExportResult(folder, plan, key, warnings=list(plan.warnings))
    plan.problems += check_dataset_json(dataset_json(plan, len(plan.train_case_ids())))
    if plan.problems:
        raise export_error(recipe, plan.problems)
    if dry_run:
        return result

    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".{recipe.folder_name}.tmp-{uuid.uuid4().hex[:8]}"
    for sub in ("imagesTr", "labelsTr", "imagesTs") + (("labelsTs",) if recipe.test_labels else ()):
        (tmp / sub).mkdir(parents=True, exist_ok=True)
    rdump = recipe.model_dump(mode="json")
    jobs = [UnitJob(u, rdump, str(tmp), plan.pseudo_dir, len(plan.channel_names)) for u in plan.units]
    try:
        by_key, problems = run_unit_jobs(export_unit, jobs, workers, progress)
        if problems:
            raise export_error(recipe, problems)

        n_train = len(plan.train_case_ids())
        rr = plan.resolved
        warnings = list(plan.warnings)
        cases: dict[str, dict] = {}
        for u in plan.units:
            res = by_key[u.key]
            if res.get("outside_body_gt_voxels"):
                warnings.append(f"{u.key}: {res['outside_body_gt_voxels']} annotated voxels lie outside the body mask (check body_threshold_hu)")
            for cid, ch in zip(u.case_ids, u.channel_of):
                cases[cid] = {
                    "scans": u.scan_ids,
                    "datasets": u.datasets,
                    "split": u.split,
                    "group": u.group,
                    "fold": u.fold,
                    "channel": ch,
                    "known": u.known,
                    "unknown": u.unknown,
                    "classes_from": plan.classes_from(u),
                    "labels": res["labels"],
                    "shape": res["shape"],
                    "affine": res["affine"],
                    "voxels": res["voxels"].get(cid, {}),
                }
        dj = dataset_json(plan, n_train)
        (tmp / "dataset.json").write_text(json.dumps(dj, indent=2, sort_keys=False))
        splits = plan.splits_final()
        (tmp / SPLITS).write_text(json.dumps(splits, indent=2))
        status = class_status(catalog, plan, {cid: by_key[u.key]["admits"] for u in plan.units for cid in u.case_ids})
        (tmp / CLASS_STATUS).write_text(json.dumps(status, indent=1))
        prov = {
            "format": 1,
            "task": recipe.folder_name,
            "export_key": key,
            "satds_version": __version__,
            "ontology_version": load_ontology().version,
            "created_at": now().isoformat(),
            "catalog": str(Path(plan.catalog_root).resolve()),
            "split_id": plan.split_id,
            "recipe": rdump,
            "recipe_hash": recipe.hash(),
            "policy": recipe.partial_labels,
            "source": recipe.source,
            "view": recipe.view,
            "overlap": recipe.overlap,
            "classes": [{"value": rr.value[c], "id": c, "name": n} for c, n in zip(rr.ids, rr.names)],
            "ignore_value": rr.ignore_value if recipe.partial_labels == "ignore" else None,
            "test_ignore_value": rr.ignore_value,
            "pseudo_labels": plan.pseudo_dir,
            "channels": plan.channel_names,
            "datasets": plan.datasets,
            "folds": plan.n_folds,
            "warnings": warnings,
            "notes": plan.notes,
            "cases": cases,
        }
        result.replaced = publish(tmp, folder, PROVENANCE, prov, satds_files(folder))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    result.cases = cases
    result.warnings = warnings
    result.written = True
    return result


def read_provenance(folder: str | Path) -> dict[str, Any]:
    return json.loads((Path(folder) / PROVENANCE).read_text())
