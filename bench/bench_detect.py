"""Benchmark: ``satds detect`` on a folder of downloads of ~100k files, against a plain ``os.walk`` of it.

Writes empty files named and nested as the releases are (detect reads names only, so their content does
not matter): TotalSegmentator (per-class masks), AbdomenAtlas (label map + per-class masks), BraTS-GLI,
AbdomenCT-1K, the ten Decathlon tasks, KiTS19 as an nnU-Net raw folder, plus unrelated files. Then times,
in the same run, a plain ``os.walk`` listing every name (the floor for any tool that looks at the tree) and
``detect`` (walk + index + every spec's arrangements + resolving each found release's cases), best of N.

    .venv/bin/python bench/bench_detect.py [--files 100000] [--repeat 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path


def touch(paths: list[Path]) -> None:
    for p in paths:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.touch()


def build(root: Path, target: int) -> int:
    """A download folder of about ``target`` files; returns the number written."""
    from satds.specs import get_spec

    files: list[Path] = []
    ts_labels = [str(e.value) for e in get_spec("totalsegmentator").labels]
    atlas = root / "AbdomenAtlas1.1Mini"
    # Budget: TotalSegmentator ~55 %, AbdomenAtlas ~27 %, the rest fixed-size releases and clutter.
    n_ts = max(1, int(target * 0.55) // (len(ts_labels) + 1))
    for i in range(n_ts):
        case = root / "downloads" / "Totalsegmentator_dataset_v201" / f"s{i:04d}"
        files += [case / "ct.nii.gz"] + [case / "segmentations" / f"{n}.nii.gz" for n in ts_labels]
    organs = ["aorta", "gall_bladder", "kidney_left", "kidney_right", "liver", "pancreas", "postcava", "spleen", "stomach"] + [f"structure_{k:02d}" for k in range(16)]
    n_atlas = max(1, int(target * 0.27) // (len(organs) + 2))
    for i in range(n_atlas):
        case = atlas / f"BDMAP_{i + 1:08d}"
        files += [case / "ct.nii.gz", case / "combined_labels.nii.gz"] + [case / "segmentations" / f"{o}.nii.gz" for o in organs]
    for i in range(1251):
        case = root / "brats" / "ASNR-MICCAI-BraTS2023-GLI-Challenge-TrainingData" / f"BraTS-GLI-{i:05d}-000"
        files += [case / f"{case.name}-{s}.nii.gz" for s in ("t1n", "t1c", "t2w", "t2f", "seg")]
    for i in range(1, 1001):
        part = (i - 1) // 400 + 1
        files += [root / "AbdomenCT-1K" / f"AbdomenCT-1K-ImagePart{part}" / f"Case_{i:05d}_0000.nii.gz", root / "AbdomenCT-1K" / "Mask" / f"Case_{i:05d}.nii.gz"]
    tasks = {"Task03_Liver": "liver_{}", "Task09_Spleen": "spleen_{}", "Task07_Pancreas": "pancreas_{:03d}", "Task06_Lung": "lung_{:03d}", "Task08_HepaticVessel": "hepaticvessel_{:03d}",
             "Task10_Colon": "colon_{:03d}", "Task04_Hippocampus": "hippocampus_{:03d}", "Task02_Heart": "la_{:03d}", "Task05_Prostate": "prostate_{:02d}", "Task01_BrainTumour": "BRATS_{:03d}"}
    for task, name in tasks.items():
        base = root / "decathlon" / task
        files.append(base / "dataset.json")
        for i in range(120):
            files += [base / "imagesTr" / f"{name.format(i)}.nii.gz", base / "labelsTr" / f"{name.format(i)}.nii.gz"]
        files += [base / "imagesTs" / f"{name.format(i)}.nii.gz" for i in range(120, 180)]
    nn = root / "nnUNet_raw" / "Dataset040_KiTS"
    files.append(nn / "dataset.json")
    for i in range(210):
        files += [nn / "imagesTr" / f"case_{i:05d}_0000.nii.gz", nn / "labelsTr" / f"case_{i:05d}.nii.gz"]
    n_clutter = max(0, target - len(files))
    files += [root / "papers" / f"topic_{i % 50}" / f"paper_{i}.pdf" for i in range(n_clutter)]
    touch(files)
    (nn / "dataset.json").write_text('{"channel_names": {"0": "CT"}, "labels": {"background": 0, "Kidney": 1, "Tumor": 2}, "file_ending": ".nii.gz"}')
    return len(files)


def plain_walk(root: Path) -> int:
    n = 0
    for _, _, names in os.walk(root, followlinks=True):
        n += len(names)
    return n


def best(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep", type=Path, default=None, help="write the tree here and keep it")
    args = ap.parse_args()

    from satds.ingest.detect import detect

    root = args.keep or Path(tempfile.mkdtemp(prefix="satds-detect-bench-"))
    try:
        t0 = time.perf_counter()
        n = build(root, args.files)
        print(f"tree: {n} files under {root} (written in {time.perf_counter() - t0:.1f} s)")
        t_walk, listed = best(lambda: plain_walk(root), args.repeat)
        t_detect, found = best(lambda: detect(root), args.repeat)
        print(f"os.walk (names only):  {t_walk:.2f} s  ({listed} files)")
        print(f"satds detect:          {t_detect:.2f} s  ({len(found.index.files)} files, {len(found.index.dirs)} folders)")
        print(f"ratio detect / os.walk: {t_detect / t_walk:.1f}x")
        for d in found.found:
            c = d.copy
            what = "AMBIGUOUS" if d.ambiguous else f"{c.arrangement}, {c.scans} scans ({c.labelled} labelled) at {found.index.where(c.anchor)}"
            print(f"  {d.key}: {what}" + (f"; views: {', '.join(d.views)}" if d.views else ""))
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
