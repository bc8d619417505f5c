"""TCIA collections released as DICOM: CT series plus DICOM-SEG objects that reference them.

A TCIA download (NBIA Data Retriever) holds one folder per series under <patient>/<study>/. A scan is a
DICOM-SEG paired with the CT series it references; the SEG usually stores only the segmented slices, each
frame with its own position, so it is placed onto the CT grid by physical position, never by index.

Segments are matched to the spec's labels by identity (SegmentLabel or the SegmentedPropertyTypeCode, the
entries' ``segment`` or ``source``), never by segment number alone: a SEG whose segments come in another
order still lands each on its own class. BINARY, FRACTIONAL and LABELMAP (DICOM 2024: one frame holds every
segment, valued by segment number) SEGs are read.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import CaseError, GeometryError, LabelError, ReadError
from ...io import Volume
from ...labels import LabelPiece
from ..discover import CaseFiles
from ..hooks import hook
from ..patterns import compile_pattern, fill, find, norm
from ..walk import walk

SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
LABELMAP_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.7"
SEG_TYPES = ("BINARY", "FRACTIONAL", "LABELMAP")
_TAGS = ["Modality", "SOPClassUID", "SeriesInstanceUID", "StudyInstanceUID", "PatientID", "ReferencedSeriesSequence"]


def _header(path: Path):
    import pydicom

    try:
        return pydicom.dcmread(str(path), stop_before_pixels=True, specific_tags=_TAGS)
    except Exception:  # not DICOM (README, metadata.csv, LICENSE): not part of any series
        return None


def index_series(root: Path, layout, cache: dict | None = None) -> tuple[dict[str, dict], list[dict]]:
    """(image series by SeriesInstanceUID, SEG instances) from the headers of the files in the series
    folders the layout's ``match`` finds (and below them); nothing else under ``root`` is opened (the
    release's anchor is often a folder of many downloads).

    TCIA puts each series in its own folder, but a user's copy may hold several series in one folder
    (two CT series of a case, a SEG among the slices), so every file there is looked at: a header read
    stops before the pixels and costs far less than the ingest's own read of each slice.
    """
    series: dict[str, dict] = {}
    segs: list[dict] = []
    root = Path(root)
    folders = [rel for rel, _ in find(root, compile_pattern(layout.match), layout.exclude, cache)]
    listed = [(rel, files) for folder in folders for rel, _dirs, files in walk(root, root / folder, cache)]
    for rel, files in dict(listed).items():  # a folder once, though a `**/` pattern may match one inside another
        rel_dir = rel.rstrip("/") or "."
        for name in files:
            ds = _header(root / rel / name)
            if ds is None or "SeriesInstanceUID" not in ds:
                continue
            info = {"patient": str(ds.get("PatientID", "")), "study": str(ds.get("StudyInstanceUID", "")), "series": str(ds.SeriesInstanceUID)}
            if ds.get("Modality") == "SEG" or str(ds.get("SOPClassUID", "")) in (SEG_SOP_CLASS, LABELMAP_SOP_CLASS):
                refs = [str(r.SeriesInstanceUID) for r in ds.get("ReferencedSeriesSequence", []) if "SeriesInstanceUID" in r]
                segs.append({**info, "file": f"{rel_dir}/{name}" if rel_dir != "." else name, "refs": refs})
                continue
            series.setdefault(info["series"], {**info, "dir": rel_dir, "modality": str(ds.get("Modality", ""))})
    return series, segs


@hook("tcia_dicom_seg", "discover")
def tcia_seg_discover(spec, layout, root: Path, cache: dict | None = None) -> list:
    """One scan per DICOM-SEG: its image is the series it references (ReferencedSeriesSequence), found by
    SeriesInstanceUID among the release's series folders; without a reference, the study's only image series.

    Captures for the spec's templates: patient (PatientID), study (StudyInstanceUID), study5 (its last five
    digits, as TCIA names study folders), seg_series (the SEG's SeriesInstanceUID).
    """
    series, segs = index_series(root, layout, cache)
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


def seg_type(ds, rel: str) -> str:
    """BINARY, FRACTIONAL or LABELMAP; anything else is a ReadError naming the type."""
    kind = str(getattr(ds, "SegmentationType", "") or "BINARY").upper()
    if kind not in SEG_TYPES:
        raise ReadError(f"unsupported SEG type {kind} (satds reads {', '.join(SEG_TYPES)})", file=rel)
    return kind


def seg_on_grid(ds, ref: Volume, rel: str) -> dict[int, np.ndarray]:
    """Segment number → boolean mask on ``ref``'s grid, each frame placed by its ImagePositionPatient.

    A frame whose pixels do not fall on the reference grid's voxel centres (another pixel spacing, a tilt,
    a shift of part of a voxel), or that lies outside it, is a GeometryError naming the file. The grid is
    ``ref``'s own, or for a series resampled for its gantry tilt the grid of its stored slices, the masks
    then following the image's resampling. A LABELMAP frame holds every segment, valued by its number.
    """
    from ...io.dicom_geometry import follow_tilt, stored_grid

    kind = seg_type(ds, rel)
    try:
        frames = np.asarray(ds.pixel_array)
    except Exception as e:
        raise ReadError(f"cannot decode the DICOM-SEG pixel data ({type(e).__name__}: {e})", file=rel) from e
    n = int(getattr(ds, "NumberOfFrames", 1) or 1)
    frames = frames.reshape(n, int(ds.Rows), int(ds.Columns))
    if kind == "FRACTIONAL":
        frames = frames.astype(np.float64) >= float(getattr(ds, "MaximumFractionalValue", 255)) / 2.0
    elif kind == "BINARY":
        frames = frames != 0
    shared = ds.SharedFunctionalGroupsSequence[0] if "SharedFunctionalGroupsSequence" in ds else None
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame is None or len(per_frame) != n:
        raise ReadError(f"DICOM-SEG has {n} frames but {0 if per_frame is None else len(per_frame)} per-frame groups", file=rel)
    grid_shape, grid_affine = stored_grid(ref)
    inv = np.linalg.inv(grid_affine)
    shape = np.asarray(grid_shape)
    lps_to_ras = np.array([-1.0, -1.0, 1.0])
    out: dict[int, np.ndarray] = {}
    for i, fg in enumerate(per_frame):
        rows, cols = np.nonzero(frames[i])
        try:
            seg_no = None if kind == "LABELMAP" else int(_group(fg, shared, "SegmentIdentificationSequence").ReferencedSegmentNumber)
            iop = np.asarray(_group(fg, shared, "PlaneOrientationSequence").ImageOrientationPatient, dtype=np.float64)
            spacing = np.asarray(_group(fg, shared, "PixelMeasuresSequence").PixelSpacing, dtype=np.float64)
            ipp = np.asarray(fg.PlanePositionSequence[0].ImagePositionPatient, dtype=np.float64)
        except ReadError as e:
            raise ReadError(f"DICOM-SEG frame {i + 1}: {e.message}", file=rel) from None
        except (AttributeError, IndexError, KeyError) as e:
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
        values = frames[i][rows, cols]
        for no in ([seg_no] if seg_no is not None else [int(v) for v in np.unique(values)]):
            sel = slice(None) if seg_no is not None else values == no
            mask = out.setdefault(no, np.zeros(grid_shape, dtype=bool))
            mask[idx[sel, 0], idx[sel, 1], idx[sel, 2]] = True
    return {no: follow_tilt(m, ref) for no, m in out.items()}


# ---------------------------------------------------------------------- segment identity
def _code(text: str) -> str:
    return re.sub(r"\s", "", str(text)).lower()


@dataclass(frozen=True)
class Segment:
    """One item of the SEG's SegmentSequence: its number, label and property type code."""

    number: int
    label: str
    code: str  # "SCT:10200004" (scheme:value), "" when absent
    meaning: str

    def names(self) -> set[str]:
        return {x for x in (norm(self.label), norm(self.meaning)) if x} | ({_code(self.code)} if self.code else set())

    def __str__(self) -> str:
        code = f" ({self.code} {self.meaning})" if self.code else ""
        return f"segment {self.number} {self.label!r}{code}"


def segments_of(ds, rel: str) -> list[Segment]:
    """The SEG's declared segments (a LABELMAP's background, segment 0, left out)."""
    out = []
    for item in ds.get("SegmentSequence", []):
        if "SegmentNumber" not in item:
            raise ReadError("DICOM-SEG segment without a SegmentNumber", file=rel)
        no = int(item.SegmentNumber)
        if no == 0:
            continue
        code, meaning = "", ""
        typ = item.get("SegmentedPropertyTypeCodeSequence")
        if typ:
            t = typ[0]
            code = f"{t.get('CodingSchemeDesignator', '')}:{t.get('CodeValue', '') or t.get('LongCodeValue', '') or t.get('URNCodeValue', '')}"
            meaning = str(t.get("CodeMeaning", ""))
        out.append(Segment(no, str(item.get("SegmentLabel", "")), code if code != ":" else "", meaning))
    numbers = [s.number for s in out]
    if len(set(numbers)) != len(numbers):
        raise ReadError(f"DICOM-SEG declares segment numbers twice: {sorted(numbers)}", file=rel)
    return out


def match_segments(segments: list[Segment], spec, rel: str) -> dict[int, tuple[str, str | None]]:
    """Segment number → (the spec's label key, a note where its number is not the spec's value).

    A segment is the spec entry whose ``segment`` names (else its ``source``) match its SegmentLabel, its
    property type's CodeMeaning or its code. No match: the entry with its number if that entry names no
    identity, else a ``nonzero`` entry; otherwise the segment is unknown. An unknown segment, or one that
    matches two entries, is a LabelError naming it.
    """
    entries = list(spec.labels)

    def ids(e) -> list[str]:
        return list(e.segment) or ([e.source] if e.source else [])

    def hits(e, seg: Segment) -> bool:
        names = seg.names()
        return any((_code(x) if ":" in x else norm(x)) in names for x in ids(e))

    nonzero = next((e for e in entries if str(e.value) == "nonzero"), None)
    out: dict[int, tuple[str, str | None]] = {}
    for seg in segments:
        cands = [e for e in entries if hits(e, seg)]
        if len(cands) > 1:
            raise LabelError(f"{seg} matches several labels of the spec ({[str(e.value) for e in cands]}): ambiguous", file=rel)
        if cands:
            e = cands[0]
            note = None
            if str(e.value) not in ("nonzero", str(seg.number)):
                note = f"{seg} is label {e.value} in the spec: matched by its name, not its number"
            out[seg.number] = (str(e.value), note)
            continue
        by_number = next((e for e in entries if str(e.value) == str(seg.number)), None)
        if by_number is not None and not ids(by_number):
            out[seg.number] = (str(seg.number), f"{seg} matched by its number (the spec names no segment label for it)")
        elif nonzero is not None:
            out[seg.number] = ("nonzero", None)
        else:
            known = [f"{e.value}: {ids(e)}" for e in entries if ids(e)]
            raise LabelError(f"{seg} is none of the spec's segments (known: {known})", file=rel)
    return out


def _frame_of_reference(folder: Path, series_uid: str | None) -> str | None:
    """FrameOfReferenceUID of the image series ``series_uid`` in ``folder`` (the folder may hold others)."""
    import pydicom

    for f in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
        try:
            ds = pydicom.dcmread(str(f), stop_before_pixels=True, specific_tags=["SeriesInstanceUID", "FrameOfReferenceUID"])
        except Exception:
            continue
        if series_uid is None or str(ds.get("SeriesInstanceUID", "")) == series_uid:
            return str(ds.get("FrameOfReferenceUID", "")) or None
    return None


@hook("tcia_dicom_seg", "read_labels")
def tcia_seg_read_labels(case, spec, root: Path, ref: Volume) -> list[LabelPiece]:
    """The SEG's segments on the CT grid: one label piece per declared segment, keyed by the spec label it
    is (matched by identity, :func:`match_segments`); segments of one label are joined."""
    import pydicom

    rel = case.label
    try:
        ds = pydicom.dcmread(str(root / rel))
    except Exception as e:
        raise ReadError(f"cannot read DICOM-SEG ({type(e).__name__}: {e})", file=rel) from e
    ref_for = _frame_of_reference(root / case.images[0], case.extra.get("series_uid"))
    if ref_for and "FrameOfReferenceUID" in ds and str(ds.FrameOfReferenceUID) != ref_for:
        raise GeometryError(f"DICOM-SEG frame of reference {ds.FrameOfReferenceUID} differs from its image's {ref_for}", file=rel)
    segments = segments_of(ds, rel)
    keys = match_segments(segments, spec, rel)
    masks = seg_on_grid(ds, ref, rel)
    undeclared = sorted(set(masks) - set(keys))
    if undeclared:
        raise ReadError(f"DICOM-SEG frames hold segment(s) {undeclared} that its SegmentSequence does not declare", file=rel)
    pieces: dict[str, LabelPiece] = {}
    for seg in segments:
        key, note = keys[seg.number]
        mask = masks.get(seg.number)
        piece = pieces.setdefault(key, LabelPiece(np.zeros(ref.spatial_shape, dtype=np.uint8), rel, key))
        if mask is not None:
            piece.array[mask] = 1
        if note:
            piece.notes.append(note)
    return list(pieces.values())
