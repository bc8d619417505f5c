"""ULS23 (Universal Lesion Segmentation 2023): labels that may be stored as .nii.gz, .nii or zipped."""

from __future__ import annotations

import gzip
import posixpath
import zipfile
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np

from ...errors import CaseError, ReadError
from ...io import Volume, read_volume
from ...labels import LabelPiece
from ..discover import _discover_layout
from ..hooks import hook
from ..patterns import fill


def label_candidates(template_path: str) -> list[str]:
    """The forms a ULS23 label takes, in order of preference: <name>.nii.gz, <name>.nii, <name>.nii.gz.zip."""
    stem = template_path[: -len(".nii.gz")] if template_path.endswith(".nii.gz") else template_path
    return [f"{stem}.nii.gz", f"{stem}.nii", f"{stem}.nii.gz.zip"]


@hook("uls23", "discover")
def uls23_discover(spec, layout, root: Path, cache: dict | None = None) -> list:
    """Scans by the layout's pattern; each label is the first of .nii.gz, .nii, .nii.gz.zip that exists.

    The ULS23 annotation repository stores every label both plainly and zipped, and some copies carry only
    one form, so the label file's name cannot be one template. A scan with none of the three is its error.
    """
    problems: list[CaseError] = []
    cases = _discover_layout(spec, layout.model_copy(update={"hook": None, "label_optional": True}), root, problems, cache)
    out: list = list(problems)
    for cf in cases:
        forms = label_candidates(fill(layout.label, cf.captures))
        found = next((p for p in forms if (root / p).is_file()), None)
        if found is None:
            out.append(CaseError(f"no label in any form ({', '.join(posixpath.basename(p) for p in forms)})", case=cf.case_id, file=forms[0]))
            continue
        cf.label = found
        out.append(cf)
    return out


def read_zipped_nifti(path: Path, rel: str) -> Volume:
    """The one NIfTI inside a zip archive, decoded in memory (nothing is written next to the dataset)."""
    try:
        with zipfile.ZipFile(path) as z:
            names = [n for n in z.namelist() if n.endswith((".nii", ".nii.gz")) and not posixpath.basename(n).startswith(".") and not n.startswith("__MACOSX/")]
            if len(names) != 1:
                raise ReadError(f"expected one NIfTI inside the zip, found {len(names)}: {names[:5]}", file=rel)
            data = z.read(names[0])
        if names[0].endswith(".gz"):
            data = gzip.decompress(data)
        img = nib.Nifti1Image.from_bytes(data)
        return Volume(np.asanyarray(img.dataobj), img.affine, {"format": "nifti", "path": rel, "member": names[0]})
    except ReadError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error, ValueError) as e:
        raise ReadError(f"cannot read the zipped NIfTI ({type(e).__name__}: {e})", file=rel) from e


@hook("uls23", "read_labels")
def uls23_read_labels(case, spec, root: Path, ref: Volume) -> list[LabelPiece]:
    """Read the label in whichever form discovery found, a zip from memory, onto the image grid."""
    from ..read import align_or_fail

    rel = case.label
    vol = read_zipped_nifti(root / rel, rel) if rel.endswith(".zip") else read_volume(root / rel)
    return [LabelPiece(align_or_fail(vol.array, vol.affine, ref, rel), rel)]
