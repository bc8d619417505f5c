"""One scan's normalisation: read → reorient → crop → respace → normalise → write, plus statistics.

The steps are pure functions (this package's ``resample``/``intensity`` modules, :mod:`satds.geometry`);
I/O happens only at the start (:mod:`satds.ingest.read`) and the end (atomic writes).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CaseError, SatdsError
from ..geometry import grid_mismatch, reorient, reorient_box, respacing
from ..labels.boxes import label_boxes
from ..ingest.discover import CaseFiles
from ..ingest.engine import annotation_rows, dataset_classes
from ..ingest.read import fingerprint, load_channels, load_labels
from ..io import Volume, write_nifti, write_text
from ..labels import AtomLabels
from ..ontology import load_ontology
from ..specs import get_spec
from . import resample
from .config import BuildConfig
from .intensity import normalise


@dataclass
class BuildJob:
    scan: dict[str, Any]  # the scan's current catalog row
    root: str  # the dataset root it was ingested from
    out_dir: str
    config: dict[str, Any]
    build_hash: str


def scan_folder(out_dir: str | Path, scan_id: str) -> Path:
    return Path(out_dir) / Path(*scan_id.split("/"))


def crop_box(image: np.ndarray, threshold: float, labels: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Inclusive index box of voxels above ``threshold`` or labelled; the whole grid when none are."""
    mask = image > threshold
    if labels is not None:
        mask |= labels != 0
    # Two passes over the volume: one 2-D projection gives two axes, one reduction gives the third.
    p01 = mask.any(axis=2)
    projections = [p01.any(axis=1), p01.any(axis=0), mask.any(axis=(0, 1))]
    if not projections[0].any():
        return np.zeros(3, dtype=int), np.asarray(image.shape[:3]) - 1
    lo = np.array([np.flatnonzero(p)[0] for p in projections])
    hi = np.array([np.flatnonzero(p)[-1] for p in projections])
    return lo, hi


def onto_grid(vol: Volume, ref: Volume) -> np.ndarray:
    """A channel on the reference grid: as is when the grids match, else resampled by physical space."""
    if grid_mismatch(ref.spatial_shape, ref.affine, vol.spatial_shape, vol.affine) is None:
        from ..geometry import align_to

        return align_to(vol.array, vol.affine, ref.spatial_shape, ref.affine)
    from ..geometry import resample_to_grid

    return resample_to_grid(vol.array, vol.affine, ref.spatial_shape, ref.affine, fill=float(np.min(vol.array)))


@dataclass
class Normalised:
    image: np.ndarray  # float32 [i, j, k] or [i, j, k, c]
    labels: AtomLabels | None  # the classes on the same grid (atoms renumbered for this grid)
    affine: np.ndarray
    respacing: Any
    start: np.ndarray  # output box within the full respaced grid
    stop: np.ndarray
    source_lo: np.ndarray  # crop box on the canonical source grid (inclusive)
    source_hi: np.ndarray


def normalise_scan(channels: list[Volume], modalities: list[str], labels: AtomLabels | None, cfg: BuildConfig, order: dict[str, int] | None = None) -> Normalised:
    """The pure core of a build: reorient, crop, respace and normalise one scan (no I/O).

    ``labels`` are the scan's classes on channel 0's grid. Crop box: channel 0 above the modality's
    threshold (CT: ``ct_body_threshold`` HU, else 0) plus every labelled voxel, on the canonical
    source grid; only output voxels inside it are computed. Labels: ``linear`` resamples each class on
    its own (so a structure's output never depends on which other classes a release annotates),
    ``nearest`` takes each output voxel's source voxel.
    """
    ref = channels[0]
    arrays = [reorient(onto_grid(v, ref) if i else v.array, ref.affine, cfg.orientation)[0] for i, v in enumerate(channels)]
    _, canon_aff = reorient(ref.array, ref.affine, cfg.orientation)
    lab = reorient(labels.array, ref.affine, cfg.orientation)[0] if labels is not None else None
    threshold = cfg.ct_body_threshold if modalities[0].upper().startswith("CT") else 0.0
    shape = arrays[0].shape[:3]
    # Boxes are found on the stored arrays (contiguous: fast) and then turned into canonical indices.
    native = ref.spatial_shape
    if cfg.crop:
        lo, hi = reorient_box(*crop_box(np.asarray(ref.array), threshold, labels.array if labels is not None else None), native, ref.affine, cfg.orientation)
    else:
        lo, hi = np.zeros(3, int), np.asarray(shape) - 1
    r = respacing(shape, canon_aff, cfg.spacing)
    start, stop = r.out_range(lo, hi)
    _check_output_size(tuple(int(b - a) for a, b in zip(start, stop)), len(arrays), cfg)
    images = []
    for arr, mod in zip(arrays, modalities):
        res = resample.cubic(arr, r, start, stop) if cfg.image_interpolation == "cubic" else resample.linear(arr, r, start, stop)
        images.append(normalise(res, mod, cfg.intensity))
    image = images[0] if len(images) == 1 else np.stack(images, axis=-1)
    out = None
    if lab is not None:
        out_shape = tuple(int(stop[a] - start[a]) for a in range(3))
        if cfg.label_interpolation == "linear":
            out = AtomLabels.empty(out_shape)
            classes = {c: labels.values_of(c) for c in sorted(labels.classes_present())}
            boxes = {v: reorient_box(a, b, native, ref.affine, cfg.orientation) for v, (a, b) in label_boxes(labels.array).items()}
            for cls, offset, mask in resample.classes_linear(lab, classes, r, start, stop, cfg.keep_small_structures, boxes=boxes):
                out.add_mask(mask, cls, offset=tuple(int(x) for x in offset))
        else:
            arr = resample.nearest_keep_small(lab, len(labels.atoms), r, start, stop, cfg.keep_small_structures)
            out = AtomLabels(arr, list(labels.atoms))
        out.annotated = set(labels.annotated)
        out.canonicalise(order or {})
    return Normalised(image, out, r.out_affine(start), r, start, stop, lo, hi)


def _check_output_size(shape: tuple[int, ...], channels: int, cfg: BuildConfig) -> None:
    """The respaced grid must stay under the reader's voxel cap: a tiny spacing is one clear error, not an
    exhausted machine."""
    from ..io.limits import ENV, max_voxels

    n = int(np.prod(shape, dtype=object)) * channels
    if n > max_voxels():
        raise CaseError(
            f"respacing to {list(cfg.spacing)} mm gives a grid of {shape} = {n:,} voxels, above the limit of "
            f"{max_voxels():,} (choose a coarser --spacing, or set {ENV})",
            stage="build",
        )


def build_scan(job: BuildJob) -> dict[str, Any]:
    scan = job.scan
    try:
        return _build(job)
    except CaseError as e:
        raise e.located(dataset=scan["dataset"], case=scan["case_id"])
    except (MemoryError, SatdsError):
        raise
    except Exception as e:
        raise CaseError(f"{type(e).__name__}: {e}", dataset=scan["dataset"], case=scan["case_id"], file=(scan.get("image_paths") or [""])[0], stage="build") from e


def _build(job: BuildJob) -> dict[str, Any]:
    scan = job.scan
    cfg = BuildConfig.model_validate(job.config)
    spec = get_spec(scan["dataset"])
    onto = load_ontology()
    root = Path(job.root)
    case = CaseFiles(**json.loads(scan["case_files"]))
    classes = dataset_classes(spec.key, str(root), case.arrangement)

    channels = load_channels(spec, case, root)
    ref = channels[0]
    labels = load_labels(spec, classes, onto, case, root, ref)
    src_rows = annotation_rows(labels, classes, onto, ref.affine, ref.voxel_volume_ml, scan["scan_id"], spec.key) if labels is not None else []

    norm = normalise_scan(channels, scan["channel_modalities"], labels, cfg, onto.order)

    folder = scan_folder(job.out_dir, scan["scan_id"])
    folder.mkdir(parents=True, exist_ok=True)
    image_path = folder / "image.nii.gz"
    write_nifti(image_path, norm.image, norm.affine, level=cfg.compression_level)
    label_path = None
    tgt_counts = None
    if norm.labels is not None:
        label_path = folder / "label.nii.gz"
        write_nifti(label_path, norm.labels.array, norm.affine, level=cfg.compression_level)
        tgt_counts = np.bincount(norm.labels.array.reshape(-1), minlength=len(norm.labels.atoms))
    voxel_ml_target = float(abs(np.linalg.det(norm.affine[:3, :3]))) / 1000.0
    rows = []
    for row in src_rows:
        # label_values now name the atoms of the normalised label file.
        values = norm.labels.values_of(row["class_id"]) if norm.labels is not None else []
        vt = int(tgt_counts[values].sum()) if values else 0
        rows.append({**row, "label_values": values, "voxels_target": vt, "volume_ml_target": vt * voxel_ml_target})
    update = {
        "normalised_image": str(image_path),
        "normalised_label": str(label_path) if label_path else None,
        "target_shape": [int(x) for x in norm.image.shape[:3]],
        "target_spacing": [float(x) for x in cfg.spacing],
        "target_affine": norm.affine.ravel().tolist(),
        "crop_box": [int(x) for x in (*norm.start, *norm.stop)],
        "fingerprint": scan.get("fingerprint") or fingerprint(channels),
        "build_hash": job.build_hash,
        "status": "built",
    }
    meta = {
        "scan_id": scan["scan_id"],
        "build_hash": job.build_hash,
        "config": cfg.model_dump(mode="json"),
        "atoms": norm.labels.sidecar()["atoms"] if norm.labels is not None else [],
        "crop": {
            "start": [int(x) for x in norm.start],
            "stop": [int(x) for x in norm.stop],
            "full_shape": list(norm.respacing.out_shape),
            "source_box": [int(x) for x in (*norm.source_lo, *norm.source_hi)],
        },
        "notes": labels.notes if labels is not None else [],
        "update": update,
        "annotations": rows,
    }
    write_text(folder / "meta.json", json.dumps(meta, default=_json_default))
    return {"update": update, "annotations": rows}


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o))
