"""``satds export monai``: a task's images and labels plus a MONAI datalist with per-case class status.

The task is a recipe (``pipelines/*.yaml`` or ad hoc), planned by :func:`~satds.export.cases.plan_export`
exactly as for nnU-Net: the same cases, case ids, merged duplicates, leakage checks, splits and grouped
folds. What differs is how partial labels travel. nnU-Net has one class-agnostic ignore label; here every
class keeps its own status per case (present, absent, unknown), written into the datalist entry
(``class_status``, aligned with the label channels) and into ``class_status.json``, so a loss can drop
exactly the unknown classes (``satds.data.masked_dice_bce``; docs/data-api.md).

Label files, two formats (``labels``):

- ``masks``: one uint8 channel per class (a 4D NIfTI X×Y×Z×K, channel k = class k). Overlapping classes
  (an organ and its lesion, a whole and its parts) keep their overlap. MONAI reads it with ``LoadImaged``
  + ``EnsureChannelFirstd`` as K×X×Y×Z.
- ``values``: one class-per-value map (uint8; 0 = no known class, k+1 = class k), K times smaller. It can
  only hold classes that never overlap, so it is allowed when the ontology says no two task classes can
  share a voxel (universal33's 33 anatomies); merged ground truth that still overlaps (two datasets
  disagreeing at a border) is resolved by the recipe's painting order and counted per case. One-hot
  encoding it (``AsDiscreted(to_onehot=K+1)``, dropping channel 0) gives the masks.
- ``auto`` (default): ``values`` when the classes cannot overlap, else ``masks``.

A class a case does not annotate is all zeros in either format, and its status says *unknown*: value 0 is
"none of the known classes", not background, wherever a class is unknown.

Layout: ``OUT/<name>/imagesTr|labelsTr|imagesVal|labelsVal|imagesTs|labelsTs/<case>.nii.gz``, ``datalist.json``
(``training`` with ``fold`` keys from the catalog's grouped folds, ``validation`` = the catalog's ``val``
split, ``testing``), ``class_status.json`` (per case: status and voxels per class, scans, datasets,
provenance). Written into a hidden temporary folder and moved into place only when every case succeeded.
"""

from __future__ import annotations

import json
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

import numpy as np

from ..errors import SpecError
from .cases import ExportPlan, Unit, load_unit, plan_export, run_unit_jobs, unit_job
from .class_status import CLASS_STATUS
from .folder import publish, read_record, target_problems
from .problems import export_error
from .recipe import Recipe, ResolvedRecipe

DATALIST = "datalist.json"
STATUS_JSON = CLASS_STATUS  # the nnU-Net export's sidecar name; status keyed by class id here, by label value there
FORMAT = 1
LabelFormat = Literal["auto", "masks", "values"]
_DIRS = {"train": ("imagesTr", "labelsTr"), "val": ("imagesVal", "labelsVal"), "test": ("imagesTs", "labelsTs")}


@dataclass
class MonaiExport:
    folder: Path
    plan: ExportPlan
    key: str
    label_format: str
    cases: dict[str, dict[str, Any]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    written: bool = False
    replaced: Path | None = None  # where files satds did not write in the previous folder went

    def entries(self, side: str) -> list[str]:
        return [c for c, v in self.cases.items() if v["split"] == side]


def overlapping_pairs(rr: ResolvedRecipe) -> list[tuple[str, str]]:
    """Task classes the ontology allows to share voxels (nested classes, a lesion in its organ)."""
    ids = rr.ids
    return [(a, b) for i, a in enumerate(ids) for b in ids[i + 1 :] if rr.rel.may_overlap(a, b)]


def choose_format(rr: ResolvedRecipe, labels: LabelFormat) -> str:
    pairs = overlapping_pairs(rr)
    if labels == "auto":
        return "masks" if pairs else "values"
    if labels == "values" and pairs:
        shown = ", ".join(f"{a}/{b}" for a, b in pairs[:5]) + (" ..." if len(pairs) > 5 else "")
        raise SpecError(f"labels: values cannot hold classes that overlap ({shown}); use labels: masks (one channel per class)")
    if labels not in ("masks", "values"):
        raise SpecError(f"labels must be auto, masks or values, not {labels!r}")
    return labels


def monai_recipe(recipe: Recipe) -> Recipe:
    """The recipe as planned for MONAI: per-class status replaces nnU-Net's partial-label policies."""
    data = recipe.model_dump(mode="json")
    data["partial_labels"] = "ignore"
    data["pseudo_labels"] = None
    return Recipe.model_validate(data)


# ---------------------------------------------------------------------- one unit
@dataclass
class MonaiJob:
    unit: Unit
    recipe: dict
    tmp: str
    label_format: str

    @property
    def key(self) -> str:
        return self.unit.key


def atom_counts(atoms: np.ndarray | None, atom_sets) -> np.ndarray | None:
    """Voxels per atom value (one pass over the volume; None when the case has no label map)."""
    return None if atoms is None else np.bincount(atoms.reshape(-1), minlength=len(atom_sets))


def class_voxels(rr: ResolvedRecipe, counts: np.ndarray | None, atom_sets, annotated) -> list[int | None]:
    """Per task class its voxel count from the atom counts, None when the case does not annotate it."""
    out: list[int | None] = []
    for c in rr.ids:
        if c not in annotated:
            out.append(None)
        elif counts is None:
            out.append(0)
        else:
            out.append(int(counts[np.array([c in s for s in atom_sets], dtype=bool)].sum()))
    return out


def class_masks(rr: ResolvedRecipe, atoms: np.ndarray | None, atom_sets, annotated, shape) -> list[np.ndarray | None]:
    """Per task class its boolean mask from the label atoms, None when the case does not annotate it."""
    out: list[np.ndarray | None] = []
    for c in rr.ids:
        if c not in annotated:
            out.append(None)
            continue
        if atoms is None:
            out.append(np.zeros(shape, dtype=bool))
            continue
        lut = np.array([c in s for s in atom_sets], dtype=bool)
        out.append(lut[atoms])
    return out


def value_map(rr: ResolvedRecipe, atoms: np.ndarray | None, atom_sets, annotated, shape, counts: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """The class-per-value map (painting order decides where known classes overlap) and the overlap voxel count.

    ``counts``: voxels per atom value (:func:`atom_counts`), computed here when not given."""
    from .rules import VoxelRules

    if atoms is None:
        return np.zeros(shape, dtype=rr.label_dtype), 0
    rules = VoxelRules.of(rr)
    lut = np.zeros(len(atom_sets), dtype=rr.label_dtype)
    multi = np.zeros(len(atom_sets), dtype=bool)
    for v, s in enumerate(atom_sets):
        here = annotated.intersection(s)
        lut[v] = rules.winner(here)
        multi[v] = len(here & rules.recipe) > 1
    if multi.any():
        counts = atom_counts(atoms, atom_sets) if counts is None else counts
        overlap = int(counts[multi].sum())
    else:
        overlap = 0
    return lut[atoms], overlap


@unit_job
def export_case(job: MonaiJob) -> dict[str, Any]:
    """Read one unit and write its image, masks and status into the temporary folder."""
    from ..data.select import STATUS_CODES
    from ..io import write_nifti

    u = job.unit
    recipe = Recipe.model_validate(job.recipe)
    rr = recipe.resolve()
    data = load_unit(u, recipe.source)
    shape = data.shape
    problems = data.channel_problems(u.key)
    if problems:
        return {"problems": problems}
    counts = atom_counts(data.atoms, data.atom_sets) if u.labelled else None  # one pass; status and voxels follow
    per_class = class_voxels(rr, counts, data.atom_sets, data.annotated) if u.labelled else [None] * rr.n
    status = ["unknown" if n is None else ("present" if n else "absent") for n in per_class]
    voxels = {c: n for c, n in zip(rr.ids, per_class) if n is not None}
    overlap = 0
    label = None
    if u.labelled:
        if job.label_format == "masks":  # one volume per class only here, where they are the output
            masks = class_masks(rr, data.atoms, data.atom_sets, data.annotated, shape)
            label = np.stack([np.zeros(shape, bool) if m is None else m for m in masks], axis=-1).astype(np.uint8)
        else:
            label, overlap = value_map(rr, data.atoms, data.atom_sets, data.annotated, shape, counts)
    img_dir, lab_dir = _DIRS[u.side]
    tmp = Path(job.tmp)
    out: dict[str, Any] = {"problems": [], "cases": {}}
    for cid, ch in zip(u.case_ids, u.channel_of):
        chans = data.images if ch is None else [data.images[ch]]
        arr = chans[0] if len(chans) == 1 else np.stack(chans, axis=-1)
        write_nifti(tmp / img_dir / f"{cid}.nii.gz", arr, data.affine)
        if label is not None:
            write_nifti(tmp / lab_dir / f"{cid}.nii.gz", label, data.affine)
        out["cases"][cid] = {
            "image": f"{img_dir}/{cid}.nii.gz",
            "label": f"{lab_dir}/{cid}.nii.gz" if label is not None else None,
            "channel": ch,
            "status": dict(zip(rr.ids, status)),
            "codes": [STATUS_CODES[s] for s in status],
            "voxels": voxels,
            "overlap_voxels": overlap,
            "shape": list(shape),
            "affine": np.asarray(data.affine).ravel().tolist(),
        }
    return out


# ---------------------------------------------------------------------- the export
def export_monai(
    catalog,
    recipe: Recipe,
    out: str | Path,
    *,
    labels: LabelFormat = "auto",
    dry_run: bool = False,
    workers: int | None = 1,
    progress: Callable[[int, int], None] | None = None,
) -> MonaiExport:
    """Export ``recipe`` into ``out/<name>/`` for MONAI; raises ExportError listing every problem."""
    from .. import __version__
    from ..catalog import now
    from ..data.select import STATUS_CODES
    from ..ontology import load_ontology

    out = Path(out)
    recipe = monai_recipe(recipe)
    rr = recipe.resolve()
    fmt = choose_format(rr, labels)
    plan = plan_export(catalog, recipe)
    folder = out / recipe.name
    key = plan.export_key(f"monai|{fmt}")
    warnings = list(plan.warnings)
    result = MonaiExport(folder, plan, key, fmt, warnings=warnings)
    # no --overwrite: its own earlier export is replaced (files a user added moved aside), any other folder refused
    plan.problems += target_problems(folder, _written(folder), None, f"exists and is not a satds MONAI export (no {STATUS_JSON})")
    if plan.problems:
        raise export_error(recipe, plan.problems, f"{recipe.name} for MONAI")
    if dry_run:
        return result

    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".{recipe.name}.tmp-{uuid.uuid4().hex[:8]}"
    for d in {d for pair in _DIRS.values() for d in pair}:
        (tmp / d).mkdir(parents=True, exist_ok=True)
    rdump = recipe.model_dump(mode="json")
    jobs = [MonaiJob(u, rdump, str(tmp), fmt) for u in plan.units]
    try:
        by_key, problems = run_unit_jobs(export_case, jobs, workers, progress)
        if problems:
            raise export_error(recipe, problems, f"{recipe.name} for MONAI")
        lists: dict[str, list[dict]] = {"training": [], "validation": [], "testing": []}
        cases: dict[str, dict] = {}
        for u in plan.units:
            for cid, c in by_key[u.key]["cases"].items():
                entry: dict[str, Any] = {"image": c["image"]}
                if c["label"]:
                    entry["label"] = c["label"]
                if u.fold is not None:
                    entry["fold"] = int(u.fold)
                entry["class_status"] = c["codes"]
                entry["case_id"] = cid
                lists[{"train": "training", "val": "validation", "test": "testing"}[u.side]].append(entry)
                if c["overlap_voxels"]:
                    warnings.append(f"{cid}: {c['overlap_voxels']} voxels hold two known classes the ontology calls disjoint (merged ground truth); the painting order decided")
                cases[cid] = {
                    "split": u.side,
                    "fold": u.fold,
                    "group": u.group,
                    "scans": u.scan_ids,
                    "datasets": u.datasets,
                    "classes_from": plan.classes_from(u),
                    **{k: c[k] for k in ("image", "label", "channel", "status", "voxels", "overlap_voxels", "shape", "affine")},
                }
        onto = load_ontology()
        classes = [
            {"id": cid, "name": name, "synonyms": list(onto[cid].synonyms), "channel": k, "value": k + 1}
            for k, (cid, name) in enumerate(zip(rr.ids, rr.names))
        ]
        datalist = {
            "name": recipe.name,
            **plan.about(),
            "release": f"satds {__version__}",
            "tensorImageSize": "4D" if (fmt == "masks" or len(plan.modalities) > 1) else "3D",
            "modality": {str(i): n for i, n in enumerate(plan.modalities)},
            "label_format": fmt,
            "labels": ({str(k): c["name"] for k, c in enumerate(classes)} if fmt == "masks" else {"0": "none of the known classes", **{str(c["value"]): c["name"] for c in classes}}),
            "classes": classes,
            "class_status_codes": STATUS_CODES,
            "numTraining": len(lists["training"]),
            "numValidation": len(lists["validation"]),
            "numTest": len(lists["testing"]),
            **lists,
        }
        (tmp / DATALIST).write_text(json.dumps(datalist, indent=1))
        sidecar = {
            "format": FORMAT,
            "task": recipe.name,
            "export_key": key,
            "satds_version": __version__,
            "ontology_version": onto.version,
            "created_at": now().isoformat(),
            "catalog": str(Path(plan.catalog_root).resolve()),
            "split_id": plan.split_id,
            "folds": plan.n_folds,
            "recipe": rdump,
            "source": recipe.source,
            "label_format": fmt,
            "classes": classes,
            "codes": STATUS_CODES,
            "datasets": plan.datasets,
            "warnings": warnings,
            "notes": plan.notes,
            "cases": cases,
        }
        for d in {d for pair in _DIRS.values() for d in pair}:
            if not any((tmp / d).iterdir()):
                (tmp / d).rmdir()
        result.replaced = publish(tmp, folder, STATUS_JSON, sidecar, _written(folder))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    result.cases = cases
    result.warnings = warnings
    result.written = True
    return result


def _written(folder: Path) -> set[str] | None:
    """The files an earlier satds MONAI export wrote into ``folder`` (None: not one; empty: one from before the
    sidecar listed its files, whose every file is then moved aside)."""
    rec = read_record(folder / STATUS_JSON)
    return None if rec is None else set(rec.get("files") or [])
