"""CHAOS phantoms: single-slice DICOM folders and PNG masks named the way the release names them.

CT: ``Train_Sets/CT/<n>/DICOM_anon/i0000,0000b.dcm ...`` numbered head to foot (the reverse of position order)
and ``Ground/liver_GT_000.png ...`` with the liver at 255. MR: ``T2SPIR/DICOM_anon/IMG-0002-00001.dcm ...`` and
``T1DUAL/DICOM_anon/InPhase/IMG-0004-00002.dcm`` / ``OutPhase/IMG-0004-00001.dcm`` (the two echoes interleave
their numbers), masks named after their slice (the T1-DUAL ones after the in-phase slices) with the organs'
grey codes. Test-set layouts get images only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...ingest.patterns import fill
from ..generate import to_file_orientation
from ..hooks import writer
from ..writers import write_dicom_series, write_png


@writer("chaos")
def write_chaos_case(spec, layout, root: Path, caps: dict, body, onto) -> None:
    ct = spec.modality == "CT"
    # CT files run head to foot (i0000 is the top slice); MR files foot to head.
    codes = "LPI" if ct else "LPS"
    image, aff = to_file_orientation(body.image, body.affine, codes, False)
    lab = np.zeros(body.shape, dtype=np.uint8)
    for key, mask in body.blobs.items():
        lab[mask] = int(key)
    lab, _ = to_file_orientation(lab, body.affine, codes, False)
    pid = f"CHAOS-{caps['case']}"
    if ct:
        folder = root / fill(layout.match, caps)
        write_dicom_series(folder, image, aff, modality="CT", patient_id=pid, name_pattern="i{i:04d},0000b.dcm")
        names = [f"liver_GT_{k:03d}.png" for k in range(lab.shape[2])]
    elif layout.channels and len(layout.channels) == 2:  # T1-DUAL: in-phase (even numbers) and out-of-phase (odd)
        inphase, outphase = (root / fill(c.file, caps) for c in layout.channels)
        series = "0004"
        _write_renamed(inphase, image, aff, pid, series, lambda n: 2 * n, 1)
        _write_renamed(outphase, image * 0.6 + 20, aff, pid, series, lambda n: 2 * n - 1, 2)
        names = [f"IMG-{series}-{2 * (k + 1):05d}.png" for k in range(lab.shape[2])]
    else:  # T2-SPIR
        folder = root / fill(layout.match, caps)
        write_dicom_series(folder, image, aff, modality="MR", patient_id=pid, name_pattern="IMG-0002-{n:05d}.dcm")
        names = [f"IMG-0002-{k + 1:05d}.png" for k in range(lab.shape[2])]
    if layout.label:
        ground = root / fill(layout.label, caps)
        for k, name in enumerate(names):
            # A PNG holds the slice as displayed: rows along array axis j, columns along axis i.
            write_png(ground / name, lab[:, :, k].T)


def _write_renamed(folder: Path, image, aff, pid: str, series: str, number, series_number: int) -> None:
    paths = write_dicom_series(folder, image, aff, modality="MR", patient_id=pid, series_number=series_number, name_pattern="tmp{i:04d}.dcm")
    for k, p in enumerate(paths):
        p.rename(folder / f"IMG-{series}-{number(k + 1):05d}.dcm")
