"""Reading built scans whole or patch by patch, through an uncompressed cache beside the ``.nii.gz``.

A gzip stream cannot be read from the middle: a 128³ patch of a ``.nii.gz`` costs inflating the whole
volume. So on first use a scan's normalised image and label atoms are also written as uncompressed
``.npy`` files (the image channels first, C order), read afterwards through memory maps: a patch reads
only its pages. Measured (``bench/bench_data.py``, docs/data-api.md): a 128³ patch of a 400×400×133
float32 volume takes ~1 ms from the cache against ~300 ms through the ``.nii.gz``; chunked blosc2 took
~6 ms and an uncompressed ``.nii`` memory map ~20 ms (Fortran order), so ``.npy`` needs no new dependency
and is the fastest.

The cache is a folder ``cache-<build hash>/`` beside the scan's normalised files (or under ``cache_dir``):
``image.npy``, ``label.npy``, ``atom_boxes.npy`` (each label atom's bounding box: a patch computes only
the masks of classes it meets, inside their boxes), ``loc_flat.npy``/``loc_index.npy`` (a sample of each
label atom's voxels, for foreground-balanced patches) and ``meta.json``. It is written into a temporary folder and renamed into
place (atomic; a concurrent writer's copy is identical and simply wins), keyed by the build's content
hash (a rebuilt scan gets a new cache and the stale one is removed), and optional: the ``.nii.gz`` stays
the build's primary output, and without a cache (or when its folder is read-only) scans are read from it.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import shutil
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from .select import ScanItem

CACHE_VERSION = 1
#: Foreground locations kept per label atom (nnU-Net keeps up to 10,000 per class, or 1 % when more).
MAX_LOCATIONS = 10_000
#: Cache folders' parents this process could not write (warned once; the write is not tried again).
_unwritable: set[str] = set()


def cache_folder(item: ScanItem, cache_dir: str | os.PathLike | None = None) -> Path:
    base = Path(cache_dir) / Path(*item.scan_id.split("/")) if cache_dir else item.image.parent
    return base / f"cache-{item.build_hash}-v{CACHE_VERSION}"


def _read_image(item: ScanItem, contiguous: bool = True) -> np.ndarray:
    """The normalised image as C×X×Y×Z float32 (a C-order copy, or a view of the decoded buffer), checked
    against the catalog's grid."""
    from ..io import read_volume

    vol = read_volume(item.image, ndim=None)
    arr = np.asarray(vol.array)
    arr = arr[None] if arr.ndim == 3 else np.moveaxis(arr, 3, 0)
    if tuple(arr.shape[1:]) != tuple(item.shape):
        raise DataError(f"{item.scan_id}: {item.image} has shape {arr.shape[1:]}, the catalog says {item.shape}; re-run `satds build`")
    if not np.allclose(vol.affine, np.asarray(item.affine), atol=1e-4):
        raise DataError(f"{item.scan_id}: {item.image}'s affine differs from the catalog's target_affine; re-run `satds build`")
    arr = arr.astype(np.float32, copy=False)
    return np.ascontiguousarray(arr) if contiguous else arr


def _read_label(item: ScanItem, contiguous: bool = True) -> np.ndarray | None:
    from ..io import read_volume

    if item.label is None:
        return None
    arr = np.asarray(read_volume(item.label).array)
    if tuple(arr.shape) != tuple(item.shape):
        raise DataError(f"{item.scan_id}: {item.label} has shape {arr.shape}, the catalog says {item.shape}; re-run `satds build`")
    return np.ascontiguousarray(arr) if contiguous else arr


def atom_locations(atoms: np.ndarray, seed: int = 1234) -> dict[str, np.ndarray]:
    """Per atom value, its voxel count and a seeded sample of its flat voxel indices (C order)."""
    flat = atoms.reshape(-1)
    fg = np.flatnonzero(flat)
    vals = flat[fg]
    order = np.argsort(vals, kind="stable")
    fg, vals = fg[order], vals[order]
    uniq, starts, counts = np.unique(vals, return_index=True, return_counts=True)
    rng = np.random.default_rng(seed)
    picks, offsets = [], [0]
    for u, s, n in zip(uniq, starts, counts):
        idx = fg[s : s + n]
        k = int(min(n, max(MAX_LOCATIONS, np.ceil(0.01 * n))))
        if k < n:
            idx = np.sort(rng.choice(idx, size=k, replace=False))
        picks.append(idx)
        offsets.append(offsets[-1] + len(idx))
    return {
        "values": uniq.astype(np.int64),
        "counts": counts.astype(np.int64),
        "offsets": np.asarray(offsets, dtype=np.int64),
        "flat": np.concatenate(picks).astype(np.int64) if picks else np.zeros(0, np.int64),
    }


def atom_boxes(atoms: np.ndarray) -> np.ndarray:
    """Rows ``(value, lo x, lo y, lo z, hi x, hi y, hi z)``: each atom value's inclusive voxel box."""
    from ..labels.boxes import label_boxes

    boxes = label_boxes(atoms) if atoms.size else {}
    return np.array([[v, *lo, *hi] for v, (lo, hi) in sorted(boxes.items())], dtype=np.int64).reshape(-1, 7)


def write_cache(item: ScanItem, folder: Path, image: np.ndarray | None = None, label: np.ndarray | None = None) -> Path:
    """Write the cache of one scan into ``folder`` atomically (a temporary folder renamed into place)."""
    image = _read_image(item) if image is None else image
    label = _read_label(item) if label is None else label
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".{folder.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        np.save(tmp / "image.npy", image)
        if label is not None:
            np.save(tmp / "label.npy", label)
            np.save(tmp / "atom_boxes.npy", atom_boxes(label))
            locs = atom_locations(label)
            np.save(tmp / "loc_flat.npy", locs.pop("flat"))
            np.save(tmp / "loc_index.npy", np.stack([locs["values"], locs["counts"], locs["offsets"][:-1], locs["offsets"][1:]]))
        meta = {
            "version": CACHE_VERSION,
            "scan_id": item.scan_id,
            "build_hash": item.build_hash,
            "shape": list(item.shape),
            "channels": int(image.shape[0]),
            "channel_min": [float(image[c].min()) if image[c].size else 0.0 for c in range(image.shape[0])],
            "label": label is not None,
        }
        (tmp / "meta.json").write_text(json.dumps(meta))
        try:
            os.rename(tmp, folder)
        except OSError:
            if not (folder / "meta.json").exists():  # not a concurrent writer's finished copy
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for stale in folder.parent.glob("cache-*"):
        if stale != folder and stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
    return folder


@dataclass
class ScanArrays:
    """A scan's image (C×X×Y×Z), label atoms (X×Y×Z, or None) and atom locations: memory maps or arrays."""

    image: np.ndarray
    label: np.ndarray | None
    channel_min: list[float]
    locations: dict[str, np.ndarray] | None
    boxes: np.ndarray | None  # rows (value, lo xyz, hi xyz), see atom_boxes
    cached: bool


@functools.lru_cache(maxsize=64)  # up to 3 memory maps (each holding a file handle) per scan
def _open_cached(folder: Path, need_locations: bool) -> ScanArrays:
    """A scan's cache folder opened (memory maps, its boxes and location index), kept for this process's next
    items of the same scan (~20 us instead of ~0.7 ms: meta.json, four .npy headers): the folder name holds the
    scan id, build hash and cache root, and a rebuilt scan gets a new folder. The maps are read-only and stay
    valid across a fork, so DataLoader workers may inherit them."""
    meta = json.loads((folder / "meta.json").read_text())
    image = np.load(folder / "image.npy", mmap_mode="r")
    label = np.load(folder / "label.npy", mmap_mode="r") if meta["label"] else None
    boxes = np.load(folder / "atom_boxes.npy") if meta["label"] else None
    locs = None
    if need_locations and meta["label"]:
        idx = np.load(folder / "loc_index.npy")
        offsets = np.append(idx[2], idx[3][-1:]) if idx.shape[1] else np.zeros(1, np.int64)
        locs = {"values": idx[0], "counts": idx[1], "offsets": offsets, "flat": np.load(folder / "loc_flat.npy", mmap_mode="r")}
    return ScanArrays(image, label, meta["channel_min"], locs, boxes, True)


def open_scan(item: ScanItem, *, cache: bool = True, cache_dir: str | os.PathLike | None = None, need_locations: bool = False) -> ScanArrays:
    """The scan's arrays: memory-mapped from the cache (written on first use), else read from the .nii.gz."""
    image = label = None
    if cache:
        folder = cache_folder(item, cache_dir)
        if not (folder / "meta.json").exists() and str(folder.parent) not in _unwritable:
            image, label = _read_image(item), _read_label(item)  # decoded once: written, or used as they are
            try:
                write_cache(item, folder, image, label)
            except OSError as e:  # a read-only catalog, a full disk: read the .nii.gz instead
                _unwritable.add(str(folder.parent))
                warnings.warn(f"satds.data: cannot write the patch cache in {folder.parent} ({e}); reading the .nii.gz instead (pass cache_dir=)", stacklevel=2)
        if (folder / "meta.json").exists():
            return dataclasses.replace(_open_cached(folder, need_locations))
    if image is None:
        image, label = _read_image(item, contiguous=False), _read_label(item, contiguous=False)
    locs = atom_locations(label) if (need_locations and label is not None) else None
    boxes = atom_boxes(label) if label is not None else None
    return ScanArrays(image, label, [float(image[c].min()) for c in range(image.shape[0])], locs, boxes, False)
