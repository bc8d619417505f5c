"""NSCLC-Radiomics with the PleThora thoracic cavity and pleural effusion masks (TCIA).

Two things the spec's patterns cannot say:

- Each patient folder of the TCIA download holds several DICOM series (the CT, an RTSTRUCT, sometimes a SEG) in
  folders whose names (``0.000000-NA-82046``, ``1.000000-NA-91799``) do not tell which is the CT, so discovery
  reads each series' Modality.
- TCIA's note on PleThora: the NIfTI masks "use the RPI orientation, but the original DICOM files are oriented
  using the RAI convention", so viewers that trust the mask header misplace them. The masks' voxels are stored in
  ITK RPI order (nibabel LAS: columns right to left, rows posterior to anterior, slices inferior to superior) on the
  CT's own grid, the order dcm2niix gives the CT (SAT-DS pairs the arrays with dcm2niix's affine). So the mask
  geometry is taken from the CT, reordered to RPI, and the NIfTI header is not trusted.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import CaseError, GeometryError
from ...geometry import align_to, reorient
from ...io import Volume
from ...labels import LabelPiece
from ..discover import CaseFiles, case_files
from ..hooks import hook
from ..patterns import compile_pattern, find

#: ITK's "RPI" (axes run from Right, from Posterior, from Inferior) in nibabel's axis codes.
MASK_AXCODES = "LAS"


def _modality(series_dir: Path) -> str | None:
    import pydicom

    for f in sorted(series_dir.iterdir()):
        if f.is_file() and not f.name.startswith("."):
            try:
                return str(pydicom.dcmread(f, stop_before_pixels=True, specific_tags=["Modality"]).get("Modality", ""))
            except Exception:
                continue  # not DICOM: SAT-DS's dcm2niix .nii/.json and concat_label.nii.gz sit beside the slices
    return None


def ct_series(patient_dir: Path) -> list[Path]:
    """The CT series folders (patient/study/series/) of one TCIA patient folder."""
    out = []
    for study in sorted(p for p in patient_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for series in sorted(p for p in study.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if _modality(series) == "CT":
                out.append(series)
    return out


@hook("nsclc_plethora", "discover")
def discover_plethora(spec, layout, root: Path, cache: dict | None = None) -> list[CaseFiles]:
    """One scan per patient with a PleThora mask: the patient's CT series plus its mask files."""
    out = []
    for rel, caps in find(root, compile_pattern(layout.match), (), cache):
        case = caps["case"]
        if not ((root / "Thoracic_Cavities" / case).is_dir() or (root / "Effusions" / case).is_dir()):
            continue  # a NSCLC-Radiomics patient PleThora did not annotate
        series = ct_series(root / rel)
        if len(series) != 1:
            found = ", ".join(s.name for s in series) or "none"
            out.append(CaseError(f"expected one CT series in the patient folder, found {found}", dataset=spec.key, case=case, file=rel))
            continue
        image = str(series[0].relative_to(root)).replace("\\", "/")
        caps = {**caps, "path": image}
        try:
            out.append(case_files(spec, layout, root, image, caps, case, f"{spec.key}/{case}", cache))
        except CaseError as e:
            out.append(e.located(dataset=spec.key, case=case))
    return out


def mask_grid(ct: Volume) -> tuple[tuple[int, int, int], np.ndarray]:
    """Shape and RAS affine of the CT grid with its voxels in RPI order: where PleThora's mask voxels lie."""
    view, aff = reorient(np.empty(ct.spatial_shape, dtype=np.uint8), ct.affine, MASK_AXCODES)
    return tuple(int(s) for s in view.shape), aff


@hook("nsclc_plethora", "read_labels")
def read_plethora(case: CaseFiles, spec, root: Path, image: Volume) -> list[LabelPiece]:
    """The mask arrays as stored, placed on the CT in RPI voxel order (their NIfTI header is not used).

    For a CT acquired with a tilted gantry (resampled onto an orthogonal grid by the reader), a mask with the
    shape of the stored slices (dcm2niix's uncorrected output) lies on those slices: it is placed there and
    follows the image's resampling; a mask with the corrected grid's shape (dcm2niix's ``_Tilt``) lies on it.
    """
    import nibabel as nib

    from ...io.dicom_geometry import follow_tilt, stored_grid

    grids = [(*mask_grid(image), False)]
    tilt = image.meta.get("gantry_tilt_deg")
    if tilt is not None:
        s_shape, s_aff = stored_grid(image)
        view, aff = reorient(np.empty(s_shape, dtype=np.uint8), s_aff, MASK_AXCODES)
        grids.append((tuple(int(n) for n in view.shape), aff, True))
    pieces = []
    for key, rel in case.label_files.items():
        arr = np.asarray(nib.load(str(root / rel)).dataobj)
        while arr.ndim > 3 and arr.shape[-1] == 1:
            arr = arr[..., 0]
        grid = next((g for g in grids if tuple(arr.shape) == g[0]), None)
        if grid is None:
            shapes = " or ".join(str(g[0]) for g in grids)
            why = f" (the CT has a gantry tilt of {tilt:g} degrees: corrected grid or stored slices)" if tilt is not None else ""
            raise GeometryError(f"mask shape {tuple(arr.shape)} is not the CT's {shapes} (columns, rows, slices){why}", file=rel)
        shape, aff, stored = grid
        if stored:
            s_shape, s_aff = stored_grid(image)
            pieces.append(LabelPiece(follow_tilt(align_to(arr, aff, s_shape, s_aff), image), rel, key))
        else:
            pieces.append(LabelPiece(align_to(arr, aff, image.spatial_shape, image.affine), rel, key))
    return pieces
