"""BrainPTM 2021: one case's files live in two trees, the T1 and the whole-brain mask in sheba75_data_train/case_N
and the tract masks in sheba75_tracts_train/case_N, which one label-file template cannot write."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..generate import _cast, to_file_orientation
from ..hooks import writer
from ..writers import write_volume


@writer("brainptm")
def brainptm_writer(spec, layout, root: Path, caps, body, onto) -> None:
    ph = spec.phantom
    case = caps["case"]

    def put(rel: str, array: np.ndarray, dtype: str) -> None:
        arr, aff = to_file_orientation(array, body.affine, ph.orientation, False)
        write_volume(root / rel, _cast(arr, dtype), aff)

    put(f"sheba75_data_train/{case}/T1.nii.gz", body.image, ph.dtype)
    for e in spec.labels:
        key = str(e.value)
        mask = body.blobs.get(key)
        if mask is None:
            continue  # absent for this case: the release has no file
        folder = "sheba75_data_train" if key == "brain_mask" else "sheba75_tracts_train"
        put(f"{folder}/{case}/{key}.nii.gz", mask.astype(np.uint8), ph.label_dtype)
