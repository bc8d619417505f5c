"""VerSe phantom: the generic image and mask, plus the centroid file a real ``derivatives`` folder holds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ...ingest.patterns import fill
from ..generate import concrete, to_file_orientation, write_case
from ..hooks import writer


@writer("verse")
def verse_case(spec, layout, root: Path, caps, body, onto) -> None:
    """Write the case, then ``<stem>_seg-subreg_ctd.json``: axis codes of the mask as stored, then one
    ``{label, X, Y, Z}`` per painted vertebra (voxel centroid in that array, one decimal, as VerSe's)."""
    write_case(spec, layout, root, caps, body, onto)
    caps = {**caps, "path": concrete(layout.match, caps)}
    for name, tpl in layout.vars.items():
        caps.setdefault(name, fill(tpl, caps))
    mask_rel = concrete(layout.label, caps)
    ph = spec.phantom
    lab = np.zeros(body.shape, dtype=np.int16)
    for key, m in body.blobs.items():
        lab[m] = int(key)
    arr, aff = to_file_orientation(lab, body.affine, ph.orientation, ph.slice_first)
    import nibabel as nib

    items: list[dict] = [{"direction": list(nib.aff2axcodes(aff))}]
    for v in sorted(int(x) for x in np.unique(arr) if x):
        idx = np.argwhere(arr == v).mean(axis=0)
        items.append({"label": v, "X": round(float(idx[0]), 1), "Y": round(float(idx[1]), 1), "Z": round(float(idx[2]), 1)})
    out = root / mask_rel.replace("_seg-vert_msk.nii.gz", "_seg-subreg_ctd.json")
    out.write_text(json.dumps(items))
    (root / mask_rel.replace("_seg-vert_msk.nii.gz", "_seg-vert_snp.png")).write_bytes(b"\x89PNG\r\n\x1a\n")
