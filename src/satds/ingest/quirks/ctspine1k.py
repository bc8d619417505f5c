"""CTSpine1K from its sources: TCIA DICOM series chosen by ``Path.csv``, plus the official label download.

The release's COLONOG and HNSCC-3DCT-RT volumes are conversions of one DICOM series per patient, named in
``Path.csv`` as ``<PatientID>/<study folder>/<series folder>`` in the folder names of the NBIA downloader
of 2021 (``4.000000-Coloprone  1.0  B30f-0.4.2``: series number, description, UID tail). A user with the
TCIA downloads and the label files (``<id>_seg.nii.gz``) has no release layout to match, and newer NBIA
Data Retriever versions name folders differently (``NA`` for empty fields, or bare UIDs), so the series is
found by patient id, series number and description (DICOM header first, folder name as fallback). MSD-T10
cases take ``liver_N.nii.gz`` from Decathlon Task03 and COVID-19 cases the TCIA NIfTI ``<id minus _ct>.nii.gz``.
The label's grid is then checked against the image at ingest (a mismatch fails that case, naming both).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from ...errors import CaseError
from ...resources import specs_dir
from ..discover import CaseFiles
from ..hooks import hook
from ..patterns import fill, norm
from ..walk import walk

SHIPPED = "data/ctspine1k"
# <number>.000000-<description>-<UID tail>, the description optional ("4.000000-53738"); a name without the tail last.
_SERIES_DIR = (re.compile(r"^(\d+)(?:\.\d+)?-(?:(.*?)-)?[\d.]+$"), re.compile(r"^(\d+)(?:\.\d+)?-(.*)$"))


@dataclass(frozen=True)
class SeriesRef:
    patient: str
    study: str
    series: str  # the series folder name as written in Path.csv
    number: int
    description: str


def parse_series_dir(name: str) -> tuple[int, str] | None:
    """(series number, description) from an NBIA series folder name; ``NA`` (newer NBIA) means empty."""
    m = _SERIES_DIR[0].match(name) or _SERIES_DIR[1].match(name)
    if not m:
        return None
    desc = m.group(2) or ""
    desc = re.sub(r"^NA-", "", desc) if desc != "NA" else ""
    return int(m.group(1)), desc


def read_path_csv(path: Path) -> dict[str, SeriesRef]:
    """Patient id → the series Path.csv selects (CRLF and blank lines tolerated)."""
    out: dict[str, SeriesRef] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line:
            continue
        patient, study, series = line.split("/", 2)
        parsed = parse_series_dir(series)
        if parsed is None:
            raise ValueError(f"{path.name}: cannot read series number from {series!r}")
        out[patient] = SeriesRef(patient, study, series, parsed[0], parsed[1])
    return out


def path_csv(root: Path) -> Path:
    own = root / "Path.csv"
    return own if own.is_file() else specs_dir() / SHIPPED / "Path.csv"


def _headers(folder: Path, every: bool) -> list[tuple[str | None, int | None, str | None]]:
    """(SeriesInstanceUID, SeriesNumber, SeriesDescription) of the series in ``folder``: of the first DICOM
    file only, or (``every``) of every file, one entry per series (None where a header lacks the number or
    description)."""
    import pydicom

    out: dict[str | None, tuple[str | None, int | None, str | None]] = {}
    for f in sorted(folder.iterdir()):
        if not f.is_file() or f.name.startswith("."):
            continue
        try:
            ds = pydicom.dcmread(f, stop_before_pixels=True, specific_tags=["SeriesInstanceUID", "SeriesNumber", "SeriesDescription"])
        except Exception:
            continue
        uid = str(ds.get("SeriesInstanceUID", "") or "")  # "" where anonymisation emptied it (GDCM's id then)
        num = ds.get("SeriesNumber")
        desc = str(ds.get("SeriesDescription")) if ds.get("SeriesDescription") else None
        out.setdefault(uid, (uid, int(num) if num not in (None, "") else None, desc))
        if not every:
            break
    return list(out.values())


def _describes(ref: SeriesRef, number: int | None, desc: str | None) -> bool:
    if number != ref.number:
        return False
    if not ref.description or not desc:
        return True
    a, b = norm(ref.description), norm(desc)
    return a.startswith(b) or b.startswith(a)  # NBIA folder names truncate long descriptions


def find_series(patient_dir: Path, ref: SeriesRef, every: bool = False) -> list[tuple[Path, str | None]]:
    """(folder, SeriesInstanceUID) of the series under a patient folder that are ``ref``'s series (header,
    else folder name). By default one header per folder; ``every`` reads every file's header, for folders
    that hold several series (another series may sort first)."""
    hits = []
    for rel, _dirs, files in walk(patient_dir):
        if not files:
            continue
        folder = Path(patient_dir) / rel
        parsed = parse_series_dir(folder.name)
        for uid, number, desc in _headers(folder, every) or [(None, None, None)]:
            if parsed is not None:
                number = parsed[0] if number is None else number
                desc = desc or parsed[1]
            if _describes(ref, number, desc):
                hits.append((folder, uid))
    if len(hits) > 1:  # the same number and description twice (two studies): Path.csv's own folder names decide
        exact = [h for h in hits if h[0].name == ref.series and h[0].parent.name == ref.study]
        hits = exact or hits
    return hits


def sub_source(case: str, refs: dict[str, SeriesRef]) -> str | None:
    if case in refs:
        return "HNSCC-3DCT-RT" if case.startswith("HN_") else "COLONOG"
    if re.fullmatch(r"liver_\d+", case):
        return "MSD-T10"
    if re.fullmatch(r"volume-covid19-A-\d+(?:_\d+)?_ct", case):
        return "COVID-19"
    return None


@hook("ctspine1k_sources", "discover")
def discover_sources(spec, layout, root: Path, cache: dict | None = None):
    """Scans from the label files found under ``root``: each label's image from its source (module docstring)."""
    root = Path(root)
    refs = read_path_csv(path_csv(root))
    labels: dict[str, list[str]] = {}
    niftis: dict[str, list[str]] = {}
    patients: dict[str, list[Path]] = {}
    for rel_dir, _dirs, filenames in walk(root, root, cache):
        name = rel_dir.rstrip("/").rsplit("/", 1)[-1]
        if name in refs:
            patients.setdefault(name, []).append(root / rel_dir)
        for f in filenames:
            if f.endswith("_seg.nii.gz"):
                labels.setdefault(f[: -len("_seg.nii.gz")], []).append(rel_dir + f)
            elif f.endswith(".nii.gz"):
                niftis.setdefault(f, []).append(rel_dir + f)
    cases, problems = [], []
    for case in sorted(labels):
        label = labels[case][0]

        def fail(msg: str, file: str = label) -> None:
            problems.append(CaseError(msg, dataset=spec.key, case=case, file=file))

        if len(labels[case]) > 1:
            fail(f"label file found {len(labels[case])} times: {labels[case][:3]}")
            continue
        sub = sub_source(case, refs)
        if sub is None:
            fail("not a CTSpine1K case id (not in Path.csv, not liver_N, not volume-covid19-A-NNNN[_N]_ct)")
            continue
        if case in refs:
            ref = refs[case]
            hits = [h for d in patients.get(case, []) for h in find_series(d, ref)]
            if not hits:  # a folder holding several series, the wanted one not first: look at every file
                hits = [h for d in patients.get(case, []) for h in find_series(d, ref, every=True)]
            where = f"{case}/{ref.study}/{ref.series}"
            if not hits:
                fail(f"DICOM series {ref.number} {ref.description!r} of patient {case} (Path.csv: {where!r}) not found under the root", where)
                continue
            if len(hits) > 1:
                fail(f"{len(hits)} DICOM series match series {ref.number} {ref.description!r}: {[str(h[0].relative_to(root)) for h in hits[:3]]}", where)
                continue
            image = str(hits[0][0].relative_to(root)).replace(os.sep, "/")
            series_uid = hits[0][1]
        else:
            name = f"{case}.nii.gz" if sub == "MSD-T10" else f"{case[: -len('_ct')]}.nii.gz"
            found = niftis.get(name, [])
            if len(found) != 1:
                fail(f"image {name} {'not found' if not found else f'found {len(found)} times'} under the root", name)
                continue
            image = found[0]
            series_uid = None
        caps = {"case": case, "sub": sub, "path": label}
        case_id = fill(spec.case_id, caps)
        cf = CaseFiles(spec.key, layout.name, caps, case_id, fill(spec.patient_id, caps), f"{spec.key}/{case_id}", [image], [None], label=label)
        if series_uid is not None:
            cf.extra["series_uid"] = series_uid  # the reader picks it out of a folder holding several series
        cases.append(cf)
    return cases, problems
