"""``CatalogDataset``: a PyTorch map-style dataset over the built catalog.

One item per selected scan (whole volume) or one random patch of it. Each item is a plain dict of
channel-first tensors that MONAI dictionary transforms and TorchIO transforms take as they are:

- ``image``: C×X×Y×Z float32, the normalised channels (RAS, the build's spacing);
- ``label``: K×X×Y×Z uint8, one mask per requested class (overlapping classes keep their overlap);
- ``valid``: 1×X×Y×Z uint8, 1 on scan voxels, 0 on padding (a patch larger than the scan along an axis);
- ``class_status``: K int8, :data:`PRESENT` (1), :data:`ABSENT` (0) or :data:`UNKNOWN` (-1), from the
  catalog's ``coverage`` view (per scan: a class present in the scan may be outside the patch);
- ``class_ids``, ``class_names``, ``class_synonyms``: the classes (ontology ids, preferred names as
  text prompts, their synonyms);
- ``meta``: scan_id, dataset, case_id, patient_id, split, fold, spacing, affine (of this item: a patch's
  affine is shifted to its first voxel), shape (of the scan), start (the patch's first voxel in the scan),
  source_files, image_file, label_file, channels, modalities, pad_value.

Randomness (patch placement) depends only on ``(seed, epoch, index)``: the same item comes back in any
worker, and :meth:`CatalogDataset.set_epoch` draws new patches for the next epoch.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ..errors import DataError
from . import sampling
from .cache import open_scan
from .select import PRESENT, Classes, ScanItem, select_scans


class CatalogDataset(torch.utils.data.Dataset):
    """Scans of a built satds catalog with per-class masks and statuses.

    Args:
        catalog: a :class:`satds.catalog.Catalog` or its folder.
        classes: ontology names, synonyms or ids (derived classes too), in the order of the ``label`` channels.
        split, fold, fold_role, datasets, where: the selection (see :func:`satds.data.select.select_scans`).
        patch_size: ``None`` for whole volumes, else (x, y, z) voxels (an int means a cube).
        foreground: probability that a patch is centred on a voxel of a class present in the scan
            (nnU-Net's ``oversample_foreground_percent`` is 0.33).
        seed: patch placement depends only on (seed, epoch, index).
        cache: read through the uncompressed ``.npy`` cache (written on first use beside the
            normalised files, or under ``cache_dir``); ``False`` reads the ``.nii.gz`` every time.
        transform: a callable applied to each item dict (a MONAI ``Compose`` of dictionary transforms,
            a TorchIO transform with ``include=["image", "label", "valid"]``, ...).
        metatensor: return ``image``/``label``/``valid`` as MONAI ``MetaTensor`` carrying the affine
            (so MONAI's spatial transforms such as ``Spacingd`` know the geometry); needs ``monai``.
    """

    def __init__(
        self,
        catalog: Any,
        classes: Sequence[str] | str,
        *,
        split: str | Sequence[str] | None = None,
        fold: int | None = None,
        fold_role: str = "train",
        datasets: str | Sequence[str] | None = None,
        where: str | None = None,
        patch_size: int | Sequence[int] | None = None,
        foreground: float = 0.33,
        seed: int = 0,
        cache: bool = True,
        cache_dir: str | os.PathLike | None = None,
        transform: Callable[[dict], dict] | None = None,
        metatensor: bool = False,
    ):
        self.selection = select_scans(catalog, classes, split=split, fold=fold, fold_role=fold_role, datasets=datasets, where=where)
        if patch_size is not None:
            ps = (int(patch_size),) * 3 if np.ndim(patch_size) == 0 else tuple(int(p) for p in patch_size)
            if len(ps) != 3 or min(ps) < 1:
                raise DataError(f"patch_size must be one positive int or three (x, y, z), not {patch_size!r}")
            patch_size = ps
        if not 0.0 <= foreground <= 1.0:
            raise DataError(f"foreground must be a probability in [0, 1], not {foreground}")
        n_ch = {it.n_channels for it in self.selection.items}
        if len(n_ch) > 1:
            raise DataError(
                f"the selected scans have different channel counts {sorted(n_ch)} (e.g. CT with 1, MSD prostate with 2); "
                "select scans of one kind (datasets= or where=\"len(channels) = 1\")"
            )
        if metatensor:
            try:
                import monai  # noqa: F401
            except ImportError:
                raise DataError("metatensor=True needs MONAI: pip install 'satds[monai]'") from None
        self.patch_size = patch_size
        self.foreground = float(foreground)
        self.seed = int(seed)
        self.epoch = 0
        self.cache = bool(cache)
        self.cache_dir = cache_dir
        self.transform = transform
        self.metatensor = metatensor

    # ------------------------------------------------------------------ the selection
    @property
    def classes(self) -> Classes:
        return self.selection.classes

    @property
    def items(self) -> list[ScanItem]:
        return self.selection.items

    def __len__(self) -> int:
        return len(self.selection.items)

    def set_epoch(self, epoch: int) -> None:
        """New patches for a new epoch (call before iterating; workers are re-created each epoch unless
        ``persistent_workers=True``, in which case pass a new dataset or keep one epoch's patches)."""
        self.epoch = int(epoch)

    def prepare_cache(self, workers: int | None = 1) -> int:
        """Write every selected scan's cache now (e.g. before training); returns how many were written."""
        from .. import parallel
        from .cache import cache_folder

        todo = [it for it in self.items if not (cache_folder(it, self.cache_dir) / "meta.json").exists()]
        errors = []
        for it, ok, res in parallel.run(_warm, [(it, self.cache_dir) for it in todo], workers=workers or 1):
            if not ok:
                errors.append(f"{it[0].scan_id}: {res}")
        if errors:
            raise DataError("cannot write the cache of: " + "; ".join(errors))
        return len(todo)

    # ------------------------------------------------------------------ items
    def __getitem__(self, index: int) -> dict[str, Any]:
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        it = self.items[index % len(self)]
        K = len(self.classes)
        arrays = open_scan(it, cache=self.cache, cache_dir=self.cache_dir, need_locations=self.patch_size is not None and self.foreground > 0)
        shape = tuple(it.shape)
        if self.patch_size is None:
            start = np.zeros(3, dtype=np.int64)
            size = shape
            image_t, image = _zeros((arrays.image.shape[0], *size), torch.float32)
            image[...] = arrays.image
            atoms = None if arrays.label is None else np.asarray(arrays.label)
        else:
            size = self.patch_size
            rng = np.random.default_rng([self.seed, self.epoch, index % len(self)])
            start = None
            if arrays.locations is not None and rng.random() < self.foreground:
                present = [k for k in range(K) if it.status[k] == PRESENT and it.label_values[k]]
                voxel = sampling.pick_foreground_voxel(it.label_values, present, arrays.locations, shape, rng)
                if voxel is not None:
                    start = sampling.centred_start(shape, size, voxel)
            if start is None:
                start = sampling.uniform_start(shape, size, rng)
            image_t, image = _zeros((arrays.image.shape[0], *size), torch.float32)
            sampling.extract(arrays.image, start, size, arrays.channel_min, lead=1, out=image)
            atoms = None if arrays.label is None else sampling.extract(arrays.label, start, size, 0)
        label_t, label = _zeros((K, *size), torch.uint8)
        if atoms is not None and arrays.boxes is not None:
            fill_masks(label, atoms, it.label_values, arrays.boxes, start)
        valid = sampling.valid_mask(shape, start, size) if self.patch_size is not None else np.ones((1, *size), dtype=np.uint8)
        affine = np.asarray(it.affine, dtype=np.float64).copy()
        affine[:3, 3] = affine[:3, :3] @ start + affine[:3, 3]
        item: dict[str, Any] = {
            "image": image_t,
            "label": label_t,
            "valid": torch.from_numpy(valid),
            "class_status": torch.tensor(it.status, dtype=torch.int8),
            "class_ids": list(self.classes.ids),
            "class_names": list(self.classes.names),
            "class_synonyms": [list(s) for s in self.classes.synonyms],
            "meta": {
                "scan_id": it.scan_id,
                "dataset": it.dataset,
                "case_id": it.case_id,
                "patient_id": it.patient_id,
                "split": it.split,
                "fold": it.fold,
                "spacing": list(it.spacing),
                "affine": affine,
                "shape": list(shape),
                "start": [int(s) for s in start],
                "source_files": list(it.source_files),
                "image_file": str(it.image),
                "label_file": str(it.label) if it.label else None,
                "channels": list(it.channels),
                "modalities": list(it.modalities),
                "pad_value": list(arrays.channel_min),
            },
        }
        if self.metatensor:
            from monai.data import MetaTensor

            aff = torch.as_tensor(affine)
            for k in ("image", "label", "valid"):
                item[k] = MetaTensor(item[k], affine=aff.clone())
        return self.transform(item) if self.transform is not None else item

    def __repr__(self) -> str:
        what = "whole volumes" if self.patch_size is None else f"{'x'.join(map(str, self.patch_size))} patches"
        return f"CatalogDataset({len(self)} scans, {len(self.classes)} classes, {what}, catalog={str(self.selection.catalog_root)!r})"


def _zeros(shape, dtype: torch.dtype) -> tuple[torch.Tensor, np.ndarray]:
    """A zero tensor and its numpy view. In a DataLoader worker it is allocated in shared memory (as
    torch's ``default_collate`` does for batches), so handing a patch of K masks to the main process
    sends a handle instead of copying tens of megabytes; untouched pages of either kind cost nothing."""
    if torch.utils.data.get_worker_info() is None:
        # numpy's zeros come from calloc: pages are mapped on first write (torch.zeros writes them all)
        t = torch.from_numpy(np.zeros(shape, dtype=torch.empty(0, dtype=dtype).numpy().dtype))
    else:
        elem = torch.empty(0, dtype=dtype)
        numel = int(np.prod(shape))
        # a new shared-memory file is zero-filled (ftruncate), its pages allocated on first write
        t = elem.new(elem._typed_storage()._new_shared(numel, device=elem.device)).view(shape)
    return t, t.numpy()


def fill_masks(label: np.ndarray, atoms: np.ndarray, label_values: list[list[int]], boxes: np.ndarray, start) -> None:
    """Class masks into ``label`` (K×patch) from the patch's ``atoms``, touching only each class's box.

    ``boxes`` holds every atom value's box in scan coordinates; a class whose atoms' boxes miss the patch is
    skipped (its channel stays untouched zero pages), the others are tested only inside the union of
    their boxes clipped to the patch.
    """
    size = np.asarray(atoms.shape)
    start = np.asarray(start)
    box = {int(r[0]): (r[1:4] - start, r[4:7] - start) for r in boxes}  # patch coordinates
    for k, values in enumerate(label_values):
        lo, hi, vals = size.copy(), np.full(3, -1), []
        for v in values:
            if v not in box:
                continue
            a, b = np.maximum(box[v][0], 0), np.minimum(box[v][1], size - 1)
            if (a <= b).all():
                vals.append(v)
                lo, hi = np.minimum(lo, a), np.maximum(hi, b)
        if vals:
            sl = tuple(slice(int(x), int(y) + 1) for x, y in zip(lo, hi))
            class_mask(atoms[sl], vals, out=label[k][sl])


def class_mask(atoms: np.ndarray, values: Sequence[int], out: np.ndarray) -> np.ndarray:
    """``out`` (uint8) = 1 where ``atoms`` holds one of ``values``: equality tests for a few values (10x
    faster than a look-up table gather), a look-up table for many."""
    if not values:
        return out
    view = out.view(bool)
    if len(values) <= 8:
        np.equal(atoms, values[0], out=view)
        for v in values[1:]:
            view |= atoms == v
    else:
        lut = np.zeros(max(int(atoms.max(initial=0)), max(values)) + 1, dtype=np.uint8)
        lut[list(values)] = 1
        out[...] = lut[atoms]
    return out


def _warm(args) -> str:
    from .cache import cache_folder, write_cache

    it, cache_dir = args
    folder = cache_folder(it, cache_dir)
    if not (folder / "meta.json").exists():
        write_cache(it, folder)
    return str(folder)

