"""Lay a real scan out as a release of any dataset (its folder names, coding, orientation and dtype).

The real example scans (``satds.resources.realdata_dir()``: ``../shared/realdata``, else the copy vendored in
``satds/_realdata``) carry TotalSegmentator label maps. Writing one of them
in the native layouts of several releases (TotalSegmentator's per-class files, BTCV's label map, KiTS's
slice-first arrays, the Decathlon's float images) checks that satds reads each layout to the same
physical anatomy, and gives ``satds demo`` real scans to show.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..geometry import reorient
from ..io import read_volume
from ..ontology import load_ontology
from ..specs import get_spec
from ..specs.model import RELEASE
from .generate import Body, _write_extra, arrangement_case, extra_files, label_values, write_case


def ts_classes(realdata: Path, seg_name: str) -> dict[int, str]:
    """TotalSegmentator id → class name for one of the example label maps."""
    maps = json.loads((realdata / "classmaps.json").read_text())
    key = "total_mr" if "_mr" in seg_name else "total"
    return {int(k): v for k, v in maps[key].items()}


def write_real_as(
    key: str, root: str | Path, image: str | Path, seg: str | Path, names: dict[int, str], caps: dict[str, str], arrangement: str = RELEASE
) -> dict[str, int]:
    """Write ``image`` + ``seg`` as one case of dataset ``key`` under ``root`` (in one of the spec's
    arrangements); returns voxels per spec label key.

    Each spec label entry gets the union of the TotalSegmentator classes that make up its ontology
    class (e.g. KiTS's "kidney" ← kidney_left ∪ kidney_right); entries with no counterpart stay empty.
    """
    spec = get_spec(key)
    onto = load_ontology()
    img = read_volume(image)
    lab = read_volume(seg)
    arr, aff = reorient(np.asarray(img.array), img.affine, "RAS")
    larr, laff = reorient(np.asarray(lab.array), lab.affine, "RAS")
    if not np.allclose(aff, laff, atol=1e-3) or arr.shape != larr.shape:
        raise ValueError("the example label map is not on its image's grid")
    by_concept: dict[str, list[int]] = {}
    for value, name in names.items():
        c = onto.try_resolve(name)
        if c is not None:
            by_concept.setdefault(c.id, []).append(value)
    present = set(by_concept)
    blobs: dict[str, np.ndarray] = {}
    counts: dict[str, int] = {}
    for e in spec.labels:
        ids = {onto.resolve(c).id for c in e.classes}
        if not ids:
            continue
        leaves: set[str] = set()
        for c in ids:
            if c in present:
                leaves.add(c)
            else:
                try:
                    leaves |= onto.leaves_of(c, present)
                except Exception:
                    pass
        values = [v for c in leaves for v in by_concept.get(c, [])]
        if values:
            mask = np.isin(larr, values)
            if mask.any():
                blobs[str(e.value)] = mask
                counts[str(e.value)] = int(mask.sum())
    # Paint organs before the lesions they contain, as a release's label map holds them.
    def is_lesion(k: str) -> bool:
        e = next(x for x in spec.labels if str(x.value) == k)
        return any(onto.resolve(c).kind == "lesion" for c in e.classes)

    ordered = dict(sorted(blobs.items(), key=lambda kv: is_lesion(kv[0])))
    body = Body(tuple(arr.shape), aff, arr.astype(np.float32), ordered)
    layout, caps = arrangement_case(spec, caps, arrangement)
    write_case(spec, layout, Path(root), caps, body, onto, label_values(spec, arrangement))
    for rel, content in extra_files(spec, arrangement, onto).items():
        _write_extra(Path(root) / rel, content)
    return counts


#: TotalSegmentator vertebra names → the VerSe/CTSpine1K coding 1-25 (C1-C7, T1-T12, L1-L6).
VERSE_CODE = {f"vertebrae_C{i}": i for i in range(1, 8)} | {f"vertebrae_T{i}": 7 + i for i in range(1, 13)} | {f"vertebrae_L{i}": 19 + i for i in range(1, 6)}


def write_real_dicom_as_hnscc(realdata: Path, root: str | Path, patient: str = "HN_P001") -> Path:
    """The real DICOM series as CTSpine1K's HNSCC source case (TCIA folder names from Path.csv).

    Its label is ``seg_dicom_total`` (stored y-flipped against the DICOM pixel array) recoded to the
    VerSe vertebra values, placed where the official label download puts it.
    """
    import nibabel as nib
    import pydicom

    from ..ingest.quirks.ctspine1k import path_csv, read_path_csv

    root = Path(root)
    ref = read_path_csv(path_csv(root))[patient]
    series = root / "TCIA" / "HNSCC-3DCT-RT" / patient / ref.study / ref.series
    series.mkdir(parents=True, exist_ok=True)
    for f in sorted((realdata / "ct_dicom").iterdir()):
        ds = pydicom.dcmread(f)
        ds.PatientID, ds.SeriesNumber, ds.SeriesDescription = patient, ref.number, ref.description
        ds.save_as(series / f.name)
    names = json.loads((realdata / "classmaps.json").read_text())["total"]
    seg = nib.load(realdata / "seg_dicom_total.nii.gz")
    src = np.asarray(seg.dataobj)
    lab = np.zeros(src.shape, np.uint8)
    for value, name in names.items():
        if name in VERSE_CODE:
            lab[src == int(value)] = VERSE_CODE[name]
    out = root / "CTSpine1K_labels" / "HNSCC-3DCT-RT" / f"{patient}_seg.nii.gz"
    out.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(lab, seg.affine), out)
    return root
