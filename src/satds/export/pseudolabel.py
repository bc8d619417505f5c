"""``satds pseudolabel``: merge model predictions with each scan's own ground truth, class by class.

For every training case of a task, the prediction (an nnU-Net integer map on the exported grid) supplies
the classes the scan's dataset does not annotate; the ground truth is authoritative for the classes it
does annotate, about presence *and* absence:

- GT voxels of an annotated class get that class;
- predicted voxels of an annotated class outside its GT become background;
- unannotated classes keep the prediction, except where the GT rules them out: a GT class that cannot
  overlap the predicted one is present there (GT wins the conflict), or the predicted class lies inside an
  annotated class that is absent there (a predicted liver tumour outside the GT liver);
- overlaps the ontology allows (a predicted lesion inside a GT organ) follow the recipe's painting order.

Several prediction folders (specialist models) can be given: each class comes from the first folder that
predicts it, and at a voxel where two folders predict different classes the earlier folder wins. A folder's
``dataset.json`` (nnU-Net copies it next to its predictions) maps its label values to ontology names, so
specialists with their own label order can be combined; without it, values are taken in the task's order.

The result is a folder with ``labels/<case>.nii.gz`` and ``pseudolabels.json`` (per case: which classes are
ground truth and which pseudo, and from which folder), used by ``export`` with ``partial_labels: pseudo``.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .cases import load_unit, plan_export, run_unit_jobs, unit_job
from .pseudofiles import PSEUDO_JSON
from .recipe import Recipe


@dataclass
class PredictionSource:
    """One prediction folder and how its label values map onto the task's values."""

    folder: Path
    value_map: np.ndarray  # folder value → task value (0 when the class is not the task's or comes from another folder)
    classes: list[str]  # task classes this folder supplies
    notes: list[str] = field(default_factory=list)


def _folder_labels(folder: Path) -> dict[int, str] | None:
    """Prediction value → label name from the folder's dataset.json, read as ``satds evaluate --labels`` reads
    it (nnU-Net v2 or v1; a region: the value nnU-Net paints it with, its ``regions_class_order`` entry);
    None without one. SpecError when it cannot be read."""
    from ..evaluate.labels import from_dataset_json

    p = folder / "dataset.json"
    if not p.exists():
        return None
    return {s.label: s.name for s in from_dataset_json(p, resolve=False)}


def prediction_sources(folders: list[Path], rr) -> tuple[list[PredictionSource], list[str]]:
    """Decide, per task class, which folder predicts it; returns the sources and problems."""
    from ..errors import OntologyError, SpecError

    problems: list[str] = []
    taken: set[str] = set()
    out: list[PredictionSource] = []
    for f in folders:
        if not f.is_dir():
            problems.append(f"prediction folder {f} does not exist")
            continue
        try:
            names = _folder_labels(f)
        except SpecError as e:
            problems.append(str(e))
            continue
        notes: list[str] = []
        if names is None:
            names = {rr.value[c]: c for c in rr.ids}
            notes.append(f"{f}: no dataset.json; values taken in the task's label order")
        top = max(names, default=0)
        vmap = np.zeros(max(top, rr.n) + 1, dtype=np.int64)
        mine: list[str] = []
        for v, name in sorted(names.items()):
            try:
                cid = rr.onto.resolve(name).id
            except OntologyError:
                notes.append(f"{f}: label {name!r} is not an ontology concept; ignored")
                continue
            if cid not in rr.value:
                notes.append(f"{f}: label {name!r} is not a class of this task; ignored")
                continue
            if cid in taken:
                notes.append(f"{f}: {cid} already comes from an earlier folder")
                continue
            vmap[v] = rr.value[cid]
            mine.append(cid)
        taken |= set(mine)
        out.append(PredictionSource(f, vmap, mine, notes))
    return out, problems


@dataclass
class PseudoResult:
    out: Path
    cases: dict[str, dict[str, Any]]
    notes: list[str]
    missing_classes: list[str]  # task classes neither annotated nor predicted for some case


@dataclass
class PseudoJob:
    unit: Any
    case_id: str
    recipe: dict
    sources: list[tuple[str, list[int], list[str]]]  # (folder, value map, classes)
    out: str

    @property
    def key(self) -> str:
        return self.case_id


@unit_job
def _merge_case(job: PseudoJob) -> dict[str, Any]:
    from ..geometry import align_to, grid_mismatch
    from ..io import read_volume, write_nifti
    from .labels import merged_labels
    from .rules import VoxelRules

    recipe = Recipe.model_validate(job.recipe)
    rr = recipe.resolve()
    rules = VoxelRules.of(rr)
    u = job.unit
    data = load_unit(u, recipe.source, with_images=False)
    if data.atoms is None:
        data = load_unit(u, recipe.source, with_images=True)
    shape = data.atoms.shape if data.atoms is not None else data.shape
    dtype = rr.label_dtype
    combined = np.zeros(shape, dtype=dtype)
    used: dict[str, str] = {}
    need = set(u.unknown)
    problems: list[str] = []
    for folder, vmap_l, classes in reversed(job.sources):
        if not need & set(classes):
            continue
        p = Path(folder) / f"{job.case_id}.nii.gz"
        if not p.exists():
            problems.append(f"{job.case_id}: no prediction in {folder} (needed for {', '.join(sorted(need & set(classes)))})")
            continue
        vol = read_volume(p)
        why = grid_mismatch(shape, data.affine, vol.shape, vol.affine)
        if why:
            problems.append(f"{job.case_id}: prediction {p} is not on the exported grid ({why})")
            continue
        pred = np.asarray(align_to(vol.array, vol.affine, shape, data.affine))
        if not np.issubdtype(pred.dtype, np.integer):
            pred = np.rint(pred).astype(np.int32)
        vmap = np.asarray(vmap_l).astype(dtype)
        if pred.size and (pred.min() < 0 or pred.max() >= len(vmap)):
            problems.append(f"{job.case_id}: prediction {p} holds value {int(pred.max())}, beyond its labels")
            continue
        mapped = vmap[pred]
        sel = mapped != 0
        combined[sel] = mapped[sel]
        for c in classes:
            if c in need:
                used[c] = folder
    if problems:
        return {"problems": problems}
    label = merged_labels(rules, data.atoms, data.atom_sets, data.annotated, combined, dtype)
    write_nifti(Path(job.out) / "labels" / f"{job.case_id}.nii.gz", label, data.affine)
    bc = np.bincount(label.reshape(-1), minlength=rr.n + 1)
    overridden = int(((combined != 0) & (combined != label)).sum())
    return {
        "problems": [],
        "scans": u.scan_ids,
        "gt": u.known,
        "pseudo": {c: used[c] for c in u.unknown if c in used},
        "unlabelled": [c for c in u.unknown if c not in used],
        "shape": [int(s) for s in shape],
        "affine": np.asarray(data.affine).ravel().tolist(),
        "voxels": {str(v): int(n) for v, n in enumerate(bc) if n},
        "predicted_voxels_overridden": overridden,
    }


def make_pseudolabels(
    catalog,
    recipe: Recipe,
    predictions: list[str | Path],
    out: str | Path,
    *,
    workers: int | None = 1,
    progress: Callable[[int, int], None] | None = None,
) -> PseudoResult:
    """Merge ``predictions`` with the ground truth for every training case of ``recipe`` into ``out``."""
    from .. import __version__
    from ..catalog import now
    from ..io import write_text
    from .problems import export_error

    plan = plan_export(catalog, recipe, for_pseudolabel=True)
    rr = plan.resolved
    sources, problems = prediction_sources([Path(p) for p in predictions], rr)
    problems = plan.problems + problems
    if problems:
        raise export_error(recipe, problems)
    out = Path(out)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    rdump = recipe.model_dump(mode="json")
    src = [(str(s.folder.resolve()), s.value_map.tolist(), s.classes) for s in sources]
    jobs = [PseudoJob(u, cid, rdump, src, str(out)) for u in plan.train_units() for cid in u.case_ids]
    by_case, problems = run_unit_jobs(_merge_case, jobs, workers, progress)
    cases = {cid: {k: v for k, v in res.items() if k != "problems"} for cid, res in by_case.items()}
    if problems:
        raise export_error(recipe, problems)
    notes = [n for s in sources for n in s.notes]
    missing = sorted({c for v in cases.values() for c in v["unlabelled"]})
    if missing:
        notes.append(f"classes neither annotated nor predicted in some cases (they become background there): {', '.join(missing)}")
    index = {
        "format": 1,
        "task": recipe.folder_name,
        "classes": rr.ids,
        "recipe_hash": recipe.hash(),
        "source": recipe.source,
        "predictions": [s[0] for s in src],
        "class_sources": {c: str(s.folder.resolve()) for s in sources for c in s.classes},
        "stamp": uuid.uuid4().hex,
        "satds_version": __version__,
        "created_at": now().isoformat(),
        "notes": notes,
        "cases": cases,
    }
    write_text(out / PSEUDO_JSON, json.dumps(index, indent=1))
    return PseudoResult(out, cases, notes, missing)
