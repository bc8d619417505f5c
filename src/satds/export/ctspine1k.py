"""``satds export ctspine1k``: the CTSpine1K release, as distributed, from ingested sources.

Layout (the Hugging Face mirror's): ``raw_data/volumes/<SUB>/<id>.nii.gz`` and
``raw_data/labels/<SUB>/<id>_seg.nii.gz`` for SUB in COLONOG, HNSCC-3DCT-RT, MSD-T10, COVID-19, plus the
official ``data_split.txt`` (verbatim, CRLF kept; also under ``metadata/``), ``Path.csv``, a licence notice
and the citation.

Labels are the official annotation files, copied byte for byte (satds cannot regenerate them). Images
are copied byte for byte when they are NIfTI on the label's grid; DICOM series (COLONOG, HNSCC) and
images whose voxel order differs from the label's are written as int16 NIfTI on the label's exact grid
(same shape and affine). Bit-identical images to the authors' unknown DICOM converter are not promised;
equal geometry with the labels is, and every mismatch is reported rather than resampled.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..catalog import Catalog
from ..errors import ExportError
from ..geometry import align_to, grid_mismatch
from ..io import read_volume, write_nifti
from ..io.atomic import atomic_path
from ..resources import specs_dir

SUBS = ("COLONOG", "HNSCC-3DCT-RT", "MSD-T10", "COVID-19")
SHIPPED = specs_dir() / "data" / "ctspine1k"
LICENCE = """CTSpine1K is released under CC BY-NC-SA (the README states it for every sub-dataset; no version
number is given). Its images come from TCIA collections (CT COLONOGRAPHY, HNSCC-3DCT-RT, CT Images in
COVID-19; each under its own TCIA terms) and the Medical Segmentation Decathlon (CC BY-SA 4.0).
Non-commercial use only; share alike; cite the dataset and the sources.
"""
CITATION = """Deng Y, Wang C, Hui Y, Li Q, Li J, Luo S, Sun M, Quan Q, Yang S, Hao Y, Liu P, Xiao H, Zhao C, Wu X,
Zhou SK. CTSpine1K: A Large-Scale Dataset for Spinal Vertebrae Segmentation in Computed Tomography.
arXiv:2105.14711 (2021).
"""


@dataclass
class ReleaseReport:
    out: Path
    written: dict[str, int] = field(default_factory=dict)  # SUB → cases
    sections: dict[str, int] = field(default_factory=dict)  # data_split section → cases written
    converted: int = 0  # images written from DICOM or re-laid on the label's grid
    copied: int = 0  # images copied byte for byte
    missing: list[str] = field(default_factory=list)  # data_split names with no ingested scan
    problems: list[str] = field(default_factory=list)


def read_sections(path: Path) -> dict[str, str]:
    """File name → section of ``data_split.txt`` (CRLF and blank lines tolerated)."""
    out, section = {}, None
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line:
            continue
        if line.endswith(":"):
            section = line[:-1]
        elif section:
            out[line] = section
    return out


def _release_file(roots: list[Path], name: str) -> Path:
    for r in roots:
        for cand in (r / name, r / "metadata" / name):
            if cand.is_file():
                return cand
    return SHIPPED / name


def export_ctspine1k(catalog: Catalog, out: str | Path, *, strict: bool = False) -> ReleaseReport:
    """Write the release under ``out`` from the catalog's ``ctspine1k`` / ``ctspine1k_sources`` scans."""
    out = Path(out)
    con = catalog.connect()
    try:
        rows = con.sql(
            "SELECT s.scan_id, s.dataset, s.case_id, s.case_files, d.root FROM scans s JOIN datasets d USING (dataset) "
            "WHERE s.dataset IN ('ctspine1k', 'ctspine1k_sources') ORDER BY s.dataset, s.case_id"
        ).to_arrow_table().to_pylist()
    finally:
        con.close()
    if not rows:
        raise ExportError("no CTSpine1K scans in the catalog: `satds ingest ctspine1k --root ...` (release) or `satds ingest ctspine1k_sources --root ...` (sources) first")
    # One scan per case: the release's own files win over the sources' copies of the same case.
    chosen: dict[str, dict] = {}
    for r in rows:
        if r["case_id"] not in chosen or r["dataset"] == "ctspine1k":
            chosen[r["case_id"]] = r
    roots = sorted({Path(r["root"]) for r in chosen.values()})
    split_file = _release_file(roots, "data_split.txt")
    sections = read_sections(split_file)
    report = ReleaseReport(out)
    for case, r in sorted(chosen.items()):
        cf = json.loads(r["case_files"])
        sub = cf["captures"].get("sub")
        if sub not in SUBS:
            report.problems.append(f"{r['scan_id']}: unknown sub-source {sub!r}")
            continue
        root = Path(r["root"])
        label_src = root / cf["label"]
        image_src = root / cf["images"][0]
        vol_dst = out / "raw_data" / "volumes" / sub / f"{case}.nii.gz"
        lab_dst = out / "raw_data" / "labels" / sub / f"{case}_seg.nii.gz"
        try:
            lab = read_volume(label_src)
            values = sorted(int(v) for v in np.unique(lab.array))
            if values and (values[0] < 0 or values[-1] > 25):
                report.problems.append(f"{case}: label values {values} outside 0-25 ({cf['label']})")
            img = read_volume(image_src, series_uid=cf.get("extra", {}).get("series_uid"))
            why = grid_mismatch(lab.spatial_shape, lab.affine, img.spatial_shape, img.affine)
            if why:
                report.problems.append(f"{case}: image and label grids differ ({why}); not exported")
                continue
            same_file_geometry = img.spatial_shape == lab.spatial_shape and np.allclose(img.affine, lab.affine, atol=1e-3)
            if same_file_geometry and image_src.name.endswith(".nii.gz") and image_src.is_file():
                _copy(image_src, vol_dst)
                report.copied += 1
            else:
                arr = align_to(img.array, img.affine, lab.spatial_shape, lab.affine)
                write_nifti(vol_dst, np.asarray(arr).astype(np.int16) if np.issubdtype(arr.dtype, np.integer) or _integral(arr) else arr, lab.affine)
                report.converted += 1
            _copy(label_src, lab_dst)
        except Exception as e:  # one case never stops the release; it is reported
            report.problems.append(f"{case}: {e}")
            continue
        report.written[sub] = report.written.get(sub, 0) + 1
        sec = sections.get(f"{case}.nii.gz")
        if sec is None:
            report.problems.append(f"{case}: not in data_split.txt")
        else:
            report.sections[sec] = report.sections.get(sec, 0) + 1
    for extra in ("data_split.txt", "Path.csv"):
        src = _release_file(roots, extra)
        _copy(src, out / extra)
        if extra == "data_split.txt":
            _copy(src, out / "metadata" / extra)
    (out / "LICENSE.txt").write_text(LICENCE)
    (out / "CITATION.txt").write_text(CITATION)
    written = {f"{c}.nii.gz" for c in chosen}
    report.missing = sorted(n for n in sections if n not in written)
    (out / "satds_export.json").write_text(
        json.dumps(
            {
                "written": report.written,
                "sections": report.sections,
                "missing_from_data_split": len(report.missing),
                "problems": report.problems,
                "section_counts_expected": dict(Counter(sections.values())),
            },
            indent=1,
        )
    )
    if strict and (report.missing or report.problems):
        raise ExportError(f"CTSpine1K release incomplete: {len(report.missing)} cases missing, {len(report.problems)} problems (see {out / 'satds_export.json'})")
    return report


def _integral(a: np.ndarray) -> bool:
    return bool(np.all(np.mod(a, 1) == 0)) and a.min(initial=0) >= -32768 and a.max(initial=0) <= 32767


def _copy(src: Path, dst: Path) -> None:
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)
