"""TCIA collections released as DICOM: CT series plus DICOM-SEG objects that reference them.

A TCIA download (NBIA Data Retriever) holds one folder per series under <patient>/<study>/. A scan is a
DICOM-SEG paired with the CT series it references; the SEG usually stores only the segmented slices, each
frame with its own position, so it is placed onto the CT grid by physical position, never by index.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from ...errors import CaseError, GeometryError, ReadError
from ...io import Volume
from ...labels import LabelPiece
from ..discover import CaseFiles
from ..hooks import hook
from ..patterns import fill
from ..walk import walk

SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
_TAGS = ["Modality", "SOPClassUID", "SeriesInstanceUID", "StudyInstanceUID", "PatientID", "ReferencedSeriesSequence"]


def _header(path: Path):
    import pydicom

    try:
        return pydicom.dcmread(str(path), stop_before_pixels=True, specific_tags=_TAGS)
    except Exception:  # not DICOM (README, metadata.csv, LICENSE): not part of any series
        return None


def index_series(root: Path) -> tuple[dict[str, dict], list[dict]]:
    """(image series by SeriesInstanceUID, SEG instances) from one header read per series folder (every
    file of a SEG folder). TCIA puts each series in its own folder."""
    series: dict[str, dict] = {}
    segs: list[dict] = []
    for rel, _dirs, files in walk(root):
        rel_dir = rel.rstrip("/") or "."
        for name in files:
            ds = _header(Path(root) / rel / name)
            if ds is None or "SeriesInstanceUID" not in ds:
                continue
            info = {"patient": str(ds.get("PatientID", "")), "study": str(ds.get("StudyInstanceUID", "")), "series": str(ds.SeriesInstanceUID)}
            if ds.get("Modality") == "SEG" or str(ds.get("SOPClassUID", "")) == SEG_SOP_CLASS:
                refs = [str(r.SeriesInstanceUID) for r in ds.get("ReferencedSeriesSequence", []) if "SeriesInstanceUID" in r]
                segs.append({**info, "file": f"{rel_dir}/{name}" if rel_dir != "." else name, "refs": refs})
                continue
            series.setdefault(info["series"], {**info, "dir": rel_dir, "modality": str(ds.get("Modality", ""))})
            break  # one header per image series folder is enough
    return series, segs


@hook("tcia_dicom_seg", "discover")
def tcia_seg_discover(spec, layout, root: Path) -> list:
    """One scan per DICOM-SEG: its image is the series it references (ReferencedSeriesSequence), found by
    SeriesInstanceUID anywhere under the root; without a reference, the study's only image series.

    Captures for the spec's templates: patient (PatientID), study (StudyInstanceUID), study5 (its last five
    digits, as TCIA names study folders), seg_series (the SEG's SeriesInstanceUID).
    """
    series, segs = index_series(root)
    by_study: dict[str, list[dict]] = defaultdict(list)
    for s in series.values():
        by_study[s["study"]].append(s)
    out: list = []
    for seg in sorted(segs, key=lambda s: s["file"]):
        caps = {"patient": seg["patient"], "study": seg["study"], "study5": seg["study"][-5:], "seg_series": seg["series"], "path": seg["file"]}
        case_id = fill(spec.case_id, caps)
        if seg["refs"]:
            refs = [series[r] for r in dict.fromkeys(seg["refs"]) if r in series]
            why = f"it references series {seg['refs']}, none of them under the root"
        else:
            refs = by_study.get(seg["study"], [])
            why = "it references no series and its study has no image series"
        if len(refs) != 1:
            why = why if not refs else f"{len(refs)} image series match: {[r['dir'] for r in refs]}"
            out.append(CaseError(f"cannot pair the DICOM-SEG with its image series: {why}", case=case_id, file=seg["file"]))
            continue
        img = refs[0]
        cf = CaseFiles(spec.key, layout.name, caps, case_id, fill(spec.patient_id, caps), f"{spec.key}/{case_id}", [img["dir"]], [None], label=seg["file"])
        cf.extra["series_uid"] = img["series"]
        cf.sat_id = fill(spec.sat_id, caps) if spec.sat_id is not None else None
        out.append(cf)
    return out


def _group(frame, shared, name: str):
    """A functional group item from the frame's own groups, else from the shared ones."""
    for fg in (frame, shared):
        if fg is not None and name in fg:
            return fg[name].value[0]
    raise ReadError(f"DICOM-SEG lacks {name}")


def seg_on_grid(ds, ref: Volume, rel: str) -> dict[int, np.ndarray]:
    """Segment number → boolean mask on ``ref``'s grid, each frame placed by its ImagePositionPatient.

    A frame whose pixels do not fall on the reference grid's voxel centres (another pixel spacing, a tilt,
    a shift of part of a voxel), or that lies outside it, is a GeometryError naming the file.
    """
    try:
        frames = np.asarray(ds.pixel_array)
    except Exception as e:
        raise ReadError(f"cannot decode the DICOM-SEG pixel data ({type(e).__name__}: {e})", file=rel) from e
    n = int(getattr(ds, "NumberOfFrames", 1) or 1)
    frames = frames.reshape(n, int(ds.Rows), int(ds.Columns))
    if str(getattr(ds, "SegmentationType", "BINARY")).upper() == "FRACTIONAL":
        frames = frames.astype(np.float64) >= float(getattr(ds, "MaximumFractionalValue", 255)) / 2.0
    else:
        frames = frames != 0
    shared = ds.SharedFunctionalGroupsSequence[0] if "SharedFunctionalGroupsSequence" in ds else None
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame is None or len(per_frame) != n:
        raise ReadError(f"DICOM-SEG has {n} frames but {0 if per_frame is None else len(per_frame)} per-frame groups", file=rel)
    inv = np.linalg.inv(ref.affine)
    shape = np.asarray(ref.spatial_shape)
    lps_to_ras = np.array([-1.0, -1.0, 1.0])
    out: dict[int, np.ndarray] = {}
    for i, fg in enumerate(per_frame):
        rows, cols = np.nonzero(frames[i])
        try:
            seg_no = int(_group(fg, shared, "SegmentIdentificationSequence").ReferencedSegmentNumber)
            iop = np.asarray(_group(fg, shared, "PlaneOrientationSequence").ImageOrientationPatient, dtype=np.float64)
            spacing = np.asarray(_group(fg, shared, "PixelMeasuresSequence").PixelSpacing, dtype=np.float64)
            ipp = np.asarray(fg.PlanePositionSequence[0].ImagePositionPatient, dtype=np.float64)
        except (ReadError, AttributeError, IndexError, KeyError) as e:
            raise ReadError(f"DICOM-SEG frame {i + 1}: incomplete geometry ({e})", file=rel) from None
        if not rows.size:
            continue
        # Pixel (r, c) sits at ipp + c * column spacing * row direction + r * row spacing * column direction (LPS).
        step_c = inv[:3, :3] @ (iop[:3] * spacing[1] * lps_to_ras)
        step_r = inv[:3, :3] @ (iop[3:] * spacing[0] * lps_to_ras)
        origin = inv[:3, :3] @ (ipp * lps_to_ras) + inv[:3, 3]
        for name, step in (("column", step_c), ("row", step_r)):
            unit = np.zeros(3)
            unit[np.argmax(np.abs(step))] = np.sign(step[np.argmax(np.abs(step))])
            if np.abs(step - unit).max() > 0.01:
                raise GeometryError(f"DICOM-SEG frame {i + 1}: one {name} step is {np.round(step, 3).tolist()} voxels of the image, not one voxel along an axis (another pixel spacing or orientation)", file=rel)
        ijk = origin + cols[:, None] * step_c + rows[:, None] * step_r
        idx = np.rint(ijk)
        off = float(np.abs(ijk - idx).max())
        if off > 0.05:
            raise GeometryError(f"DICOM-SEG frame {i + 1} lies {off:.2f} voxel off the image's voxel centres", file=rel)
        idx = idx.astype(np.int64)
        if (idx < 0).any() or (idx >= shape).any():
            raise GeometryError(f"DICOM-SEG frame {i + 1} reaches outside the image grid {tuple(int(s) for s in shape)}", file=rel)
        mask = out.setdefault(seg_no, np.zeros(ref.spatial_shape, dtype=bool))
        mask[idx[:, 0], idx[:, 1], idx[:, 2]] = True
    return out


def _frame_of_reference(folder: Path) -> str | None:
    import pydicom

    for f in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
        try:
            return str(pydicom.dcmread(str(f), stop_before_pixels=True, specific_tags=["FrameOfReferenceUID"]).get("FrameOfReferenceUID", "")) or None
        except Exception:
            continue
    return None


@hook("tcia_dicom_seg", "read_labels")
def tcia_seg_read_labels(case, spec, root: Path, ref: Volume) -> list[LabelPiece]:
    """The SEG's segments on the CT grid: one label piece per segment, valued with its segment number."""
    import pydicom

    rel = case.label
    try:
        ds = pydicom.dcmread(str(root / rel))
    except Exception as e:
        raise ReadError(f"cannot read DICOM-SEG ({type(e).__name__}: {e})", file=rel) from e
    ref_for = _frame_of_reference(root / case.images[0])
    if ref_for and "FrameOfReferenceUID" in ds and str(ds.FrameOfReferenceUID) != ref_for:
        raise GeometryError(f"DICOM-SEG frame of reference {ds.FrameOfReferenceUID} differs from its image's {ref_for}", file=rel)
    masks = seg_on_grid(ds, ref, rel)
    if not masks:
        return [LabelPiece(np.zeros(ref.spatial_shape, dtype=np.uint16), rel)]
    return [LabelPiece(m.astype(np.uint16) * np.uint16(no), rel) for no, m in sorted(masks.items())]
