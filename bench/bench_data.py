"""Benchmark: samples per second of ``satds.data`` against MONAI's ``LoadImaged`` pipeline, in one run.

Input: ``bench_build``'s synthetic CT (512×512×400 int16 at 0.78×0.78×1 mm, 30 classes), 4 copies, taken
through the real ``satds ingest`` and ``satds build`` (1×1×3 mm: ~400×400×133 float32 per scan, 30 label
classes). Both loaders read the same built files:

- MONAI: ``monai.data.Dataset`` with ``LoadImaged`` + ``EnsureChannelFirstd`` on the normalised
  ``image.nii.gz``/``label.nii.gz`` (whole volumes), plus ``RandCropByPosNegLabeld`` (128³, pos 1 : neg 2,
  i.e. a third foreground-centred, as nnU-Net) for patches;
- satds: ``CatalogDataset`` (whole volumes; 128³ patches with ``foreground=0.33``), which also turns the
  label atoms into 30 class masks, through its ``.npy`` cache (warm: written by a first pass, timed
  separately) and without it (``cache=False``, reading the same ``.nii.gz``).

Each loader runs through a torch ``DataLoader`` (batch 1) with 0 and with 2 worker processes; the figure is
samples per second after one warm-up sample. Ratios are against MONAI in the same configuration.

    .venv/bin/python bench/bench_data.py [--out DIR (default: satds-bench-data in the system temp folder)] [--small]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import bench_build as bb  # noqa: E402  (the synthetic CT, its spec and class names)

N_SCANS = 4
PATCH = (128, 128, 128)


def make_catalog(work: Path):
    from satds.build import BuildConfig, build
    from satds.catalog import Catalog
    from satds.ingest import ingest

    specs = work / "specs"
    specs.mkdir(parents=True, exist_ok=True)
    os.environ["SATDS_SPEC_PATH"] = str(specs)
    names = bb.organ_names(bb.N_CLASSES)
    (specs / "bench_ct.yaml").write_text(bb.SPEC % ", ".join(f"{i + 1}: {json.dumps(n)}" for i, n in enumerate(names)))
    root = work / f"data{N_SCANS}"
    cat = Catalog(work / "catalog")
    if not (root / f"images/case_{N_SCANS - 1:03d}.nii.gz").exists():
        print(f"writing {N_SCANS} synthetic CTs {bb.SHAPE} ...", flush=True)
        bb.make_volume(root, N_SCANS)
    if not cat.root.exists():
        ingest("bench_ct", root, cat, workers=2, full=False)
    s = build(cat, BuildConfig(spacing=bb.TARGET), workers=2)
    assert s.failed == 0, s.failures
    return cat, names


def rate(loader, n: int) -> float:
    """Samples per second over ``n`` samples after one warm-up sample (the loader is re-iterated as needed)."""
    it = iter(loader)
    next(it)
    got, t = 0, time.perf_counter()
    while got < n:
        try:
            batch = next(it)
        except StopIteration:
            it = iter(loader)
            continue
        got += len(batch["image"])
    return n / (time.perf_counter() - t)


def main() -> None:
    import numpy as np
    import torch

    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(Path(tempfile.gettempdir()) / "satds-bench-data"))
    ap.add_argument("--small", action="store_true", help="256x256x200 source volumes, for a quick check")
    ap.add_argument("--workers", default="0,2", help="DataLoader worker counts to measure")
    args = ap.parse_args()
    work = Path(args.out)
    work.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    cat, names = make_catalog(work)

    from monai.data import Dataset as MonaiDataset
    from monai.transforms import Compose, EnsureChannelFirstd, LoadImaged, RandCropByPosNegLabeld, SpatialPadd

    from satds.data import CatalogDataset, collate
    from satds.data.cache import cache_folder

    whole = CatalogDataset(cat, names)
    it0 = whole.items[0]
    print(f"{len(whole)} built scans of {'x'.join(map(str, it0.shape))} voxels (float32 image {np.prod(it0.shape) * 4 / 1e6:.0f} MB), {len(names)} classes; patches {PATCH}")
    for it in whole.items:  # start cold: the first pass writes the cache, timed on its own
        shutil.rmtree(cache_folder(it), ignore_errors=True)
    t = time.perf_counter()
    written = whole.prepare_cache(workers=1)
    cold = (time.perf_counter() - t) / max(written, 1)
    print(f"cache: written on first use, {cold:.2f} s per scan (read .nii.gz, write .npy + foreground locations)")

    files = [{"image": str(it.image), "label": str(it.label)} for it in whole.items]
    keys = ["image", "label"]
    monai_whole = Compose([LoadImaged(keys), EnsureChannelFirstd(keys)])
    monai_patch = Compose([LoadImaged(keys), EnsureChannelFirstd(keys), SpatialPadd(keys, PATCH), RandCropByPosNegLabeld(keys, "label", PATCH, pos=1, neg=2, num_samples=1)])
    from monai.data import DataLoader as MonaiLoader

    results: dict[str, dict[int, float]] = {}
    for w in [int(x) for x in args.workers.split(",")]:
        kw = dict(batch_size=1, num_workers=w, persistent_workers=w > 0)
        configs = {
            "MONAI whole volumes": (MonaiLoader(MonaiDataset(files, monai_whole), **kw), 6),
            "satds whole volumes (cache)": (torch.utils.data.DataLoader(CatalogDataset(cat, names), collate_fn=collate, **kw), 12),
            "satds whole volumes (.nii.gz)": (torch.utils.data.DataLoader(CatalogDataset(cat, names, cache=False), collate_fn=collate, **kw), 6),
            "MONAI 128³ patches": (MonaiLoader(MonaiDataset(files, monai_patch), **kw), 6),
            "satds 128³ patches (cache)": (torch.utils.data.DataLoader(CatalogDataset(cat, names, patch_size=PATCH, seed=0), collate_fn=collate, shuffle=True, **kw), 200),
            "satds 128³ patches (.nii.gz)": (torch.utils.data.DataLoader(CatalogDataset(cat, names, patch_size=PATCH, cache=False), collate_fn=collate, **kw), 6),
        }
        for name, (loader, n) in configs.items():
            results.setdefault(name, {})[w] = rate(loader, n)
            print(f"  workers={w}  {name:32s} {results[name][w]:8.2f} samples/s", flush=True)
    print("\nratios against MONAI in the same configuration:")
    for w in results["MONAI whole volumes"]:
        mw, mp = results["MONAI whole volumes"][w], results["MONAI 128³ patches"][w]
        print(
            f"  workers={w}: whole volumes {results['satds whole volumes (cache)'][w] / mw:.1f}x (cache), {results['satds whole volumes (.nii.gz)'][w] / mw:.1f}x (.nii.gz); "
            f"128³ patches {results['satds 128³ patches (cache)'][w] / mp:.1f}x (cache; goal ≥ 5x), {results['satds 128³ patches (.nii.gz)'][w] / mp:.1f}x (.nii.gz)"
        )


if __name__ == "__main__":
    main()
