"""``satds ingest``: walk one dataset root with its spec and record every scan in the catalog.

Per scan it records the files, ids, official split, geometry, the source label values present and, per
ontology class the scan annotates, voxel statistics on the source grid. A bad case becomes a
``failures`` row naming dataset, case and file; every other case goes on. Rows are flushed in batches
and the ``datasets`` row is written last, so an interrupted ingest is invisible until re-run, and the
re-run reuses every case whose inputs did not change.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from .. import __version__
from ..catalog import Catalog, new_gen, new_id, now
from ..errors import CaseError, ReadError, SatdsError, SpecError, WorkerDied, is_utf8, printable
from ..labels import AtomLabels, DatasetClasses, read_label_table, resolve_classes
from ..labels.classes import resolve_nnunet_classes
from ..ontology import Ontology, load_ontology
from ..specs import DatasetSpec, get_spec, spec_hash
from ..specs.model import RELEASE
from .discover import CaseFiles
from .nnunet_raw import read_dataset_json
from .read import channel_specs, fingerprint, header_channels, load_channels, load_labels

if TYPE_CHECKING:
    from .roots import Copy

INGEST_VERSION = "1"


@dataclass
class IngestSummary:
    dataset: str
    root: str
    ingest_id: str
    scans: int = 0
    reused: int = 0
    failed: int = 0
    skipped: int = 0
    arrangement: str = RELEASE
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------- per-dataset context
@functools.lru_cache(maxsize=64)
def dataset_classes(key: str, root: str, arrangement: str = RELEASE) -> DatasetClasses:
    """A dataset's label semantics for one root (the release's own label table wins when present)."""
    spec = get_spec(key)
    table = None
    lt = spec.label_table_of(arrangement)
    if lt and lt.format == "nnunet" and root:
        p = Path(root) / lt.file
        if not p.is_file():
            raise SpecError(f"{spec.key}: an nnU-Net folder names its label values in {lt.file}; there is none at {p}, and satds does not guess values")
        try:
            return resolve_nnunet_classes(spec, load_ontology(), read_dataset_json(root))
        except ReadError as e:  # names dataset.json
            raise e.located(dataset=spec.key)
    if lt and lt.format != "nnunet":
        p = Path(root) / lt.file
        if p.exists():
            try:
                table = read_label_table(p, lt.format)
            except ReadError as e:
                e.file = lt.file  # relative to the root, as every failure names its file
                raise e.located(dataset=spec.key)
    return resolve_classes(spec, load_ontology(), table)


def _input_files(case: CaseFiles, root: Path, spec: DatasetSpec | None = None) -> list[Path]:
    out = []
    rels = list(case.all_files)
    lt = spec.label_table_of(case.arrangement) if spec is not None else None
    if lt and (root / lt.file).is_file():
        rels.append(lt.file)  # the release's label table decides what the values mean
    for rel in rels:
        p = root / rel
        out += sorted(x for x in p.iterdir() if x.is_file()) if p.is_dir() else [p]
    return out


def stat_key(spec: DatasetSpec, case: CaseFiles, root: Path, onto_version: str) -> str:
    """Cheap change detector (sizes and mtimes): decides whether ingest must re-read a case."""
    h = hashlib.sha256()
    h.update(f"{INGEST_VERSION}|{spec_hash(spec)}|{onto_version}|{json.dumps(asdict(case), sort_keys=True)}".encode())
    for p in _input_files(case, root, spec):
        try:
            st = p.stat()
            h.update(f"{p.relative_to(root)}|{st.st_size}|{st.st_mtime_ns}".encode())
        except OSError:
            h.update(f"{p}|missing".encode())
    return h.hexdigest()[:24]


def content_hash(spec: DatasetSpec, case: CaseFiles, root: Path, onto_version: str) -> str:
    """Hash of the input files' bytes, the spec and the ontology: what a built scan depends on."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{spec_hash(spec)}|{onto_version}|{json.dumps(asdict(case), sort_keys=True)}".encode())
    for p in _input_files(case, root, spec):
        h.update(str(p.relative_to(root)).encode())
        with open(p, "rb") as f:
            while chunk := f.read(1 << 22):
                h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------------- one case
def annotation_rows(
    labels: AtomLabels, classes: DatasetClasses, onto: Ontology, affine: np.ndarray, voxel_ml: float, scan_id: str, dataset: str
) -> list[dict[str, Any]]:
    """One row per annotated class with voxel statistics in world millimetres."""
    order = classes.all_classes()
    annotated = sorted(labels.annotated, key=lambda c: (order.index(c) if c in order else len(order), c))
    stats = labels.stats(annotated)
    rows = []
    for c in annotated:
        st = stats[c]
        row: dict[str, Any] = {
            "scan_id": scan_id,
            "dataset": dataset,
            "class_id": c,
            "class_name": onto[c].name,
            "source_values": classes.source_keys_of(c, onto, labels.annotated),
            "derived": classes.rule_of(c) not in ("source", "lesions"),
            "rule": classes.rule_of(c),
            "label_values": labels.values_of(c),
            "voxels": st.voxels,
            "volume_ml": st.voxels * voxel_ml,
        }
        if st.voxels:
            row["centroid_mm"] = (affine[:3, :3] @ st.centroid_ijk + affine[:3, 3]).tolist()
            lo, hi = box_mm(affine, st.bbox_lo, st.bbox_hi)
            row["bbox_min_mm"], row["bbox_max_mm"] = lo.tolist(), hi.tolist()
        rows.append(row)
    return rows


def box_mm(affine: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World-axis-aligned box of the voxel centres in index box [lo, hi]."""
    corners = np.array([[a, b, c] for a in (lo[0], hi[0]) for b in (lo[1], hi[1]) for c in (lo[2], hi[2])], dtype=np.float64)
    w = corners @ affine[:3, :3].T + affine[:3, 3]
    return w.min(axis=0), w.max(axis=0)


def ingest_case(key: str, root: str, case: CaseFiles, full: bool = True) -> dict[str, Any]:
    """Read one scan and return its catalog rows (raises CaseError with the location filled in)."""
    try:
        return _ingest_case(key, Path(root), case, full)
    except CaseError as e:
        raise e.located(dataset=key, case=case.case_id)
    except (MemoryError, SatdsError):
        raise
    except Exception as e:  # an unexpected library error on odd input: still one case, still recorded
        raise CaseError(f"{type(e).__name__}: {e}", dataset=key, case=case.case_id, file=case.images[0]) from e


def _ingest_case(key: str, root: Path, case: CaseFiles, full: bool) -> dict[str, Any]:
    spec = get_spec(key)
    onto = load_ontology()
    classes = dataset_classes(key, str(root), case.arrangement)
    # --headers-only: the images' voxels wait for the build (integrity, fingerprint), unless laterality
    # needs the body's midline now.
    channels = None if full or classes.lateral else header_channels(spec, case, root)
    channels = channels or load_channels(spec, case, root)
    ref = channels[0]
    labels = load_labels(spec, classes, onto, case, root, ref)
    names = channel_specs(spec, case)
    scan: dict[str, Any] = {
        "scan_id": case.scan_id,
        "dataset": key,
        "case_id": case.case_id,
        "patient_id": case.patient_id,
        "sat_id": case.sat_id,
        "modality": spec.modality,
        "channels": [n for n, _ in names],
        "channel_modalities": [m for _, m in names],
        "image_paths": list(dict.fromkeys(case.images)),
        "label_paths": ([case.label] if case.label else []) + [case.label_files[k] for k in sorted(case.label_files)],
        "label_kind": label_kind(case) if labels is not None else "none",
        "source_values": labels.sources_present if labels is not None else [],
        "shape": list(ref.spatial_shape),
        "spacing": list(ref.spacing),
        "affine": ref.affine.ravel().tolist(),
        "axcodes": ref.axcodes,
        "dtype": str(ref.meta.get("dtype", ref.array.dtype)),
        "gantry_tilt_deg": ref.meta.get("gantry_tilt_deg"),
        "official_split": case.official_split,
        "fingerprint": fingerprint(channels) if full else None,
        "case_files": json.dumps(asdict(case), sort_keys=True),
        "input_hash": content_hash(spec, case, root, onto.version) if full else None,
        "status": "ingested",
    }
    ann = annotation_rows(labels, classes, onto, ref.affine, ref.voxel_volume_ml, case.scan_id, key) if labels is not None else []
    return {"scan": scan, "annotations": ann, "notes": labels.notes if labels is not None else []}


def label_kind(case: CaseFiles) -> str:
    """How a labelled scan's labels are stored in the arrangement it was read from: one file per class
    (TotalSegmentator's release) or one label map (its nnU-Net copy; a DICOM-SEG)."""
    return "class_files" if case.label_files else "labelmap"


# ---------------------------------------------------------------------- the run
class _Batcher:
    """Collects rows and writes them as part files every ``every`` seconds (and at the end)."""

    def __init__(self, catalog: Catalog, every: float = 5.0):
        self.catalog = catalog
        self.every = every
        self.rows: dict[str, list[dict]] = {"scans": [], "annotations": [], "failures": []}
        self.last = time.monotonic()

    def add(self, table: str, rows: list[dict]) -> None:
        self.rows[table].extend(rows)

    def maybe_flush(self) -> None:
        if time.monotonic() - self.last >= self.every:
            self.flush()

    def flush(self) -> None:
        # Annotations before scans: a scan row commits its generation's annotation rows.
        for t in ("annotations", "failures", "scans"):
            if self.rows[t]:
                self.catalog.write(t, self.rows[t])
                self.rows[t] = []
        self.last = time.monotonic()


def _previous(catalog: Catalog, dataset: str) -> tuple[dict[str, dict], dict[tuple[str, int], list[dict]]]:
    """The newest recorded rows per scan of this dataset, committed or not (for resume/reuse)."""
    if not catalog.parts("scans"):
        return {}, {}
    con = catalog.connect()
    try:
        scans = con.sql(
            "SELECT * FROM _raw_scans WHERE dataset = $d QUALIFY row_number() OVER (PARTITION BY scan_id ORDER BY gen DESC) = 1",
            params={"d": dataset},
        ).to_arrow_table().to_pylist()
        ann = con.sql(
            "SELECT a.* FROM _raw_annotations a JOIN (SELECT scan_id, max(gen) AS gen FROM _raw_scans WHERE dataset = $d GROUP BY scan_id) s USING (scan_id, gen)",
            params={"d": dataset},
        ).to_arrow_table().to_pylist()
    finally:
        con.close()
    by_scan = {r["scan_id"]: r for r in scans}
    by_gen: dict[tuple[str, int], list[dict]] = {}
    for r in ann:
        by_gen.setdefault((r["scan_id"], r["gen"]), []).append(r)
    return by_scan, by_gen


def ingest(
    key: str,
    root: str | os.PathLike,
    catalog: Catalog,
    *,
    workers: int | None = None,
    executor: str = "local",
    full: bool = True,
    arrangement: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    copy: Copy | None = None,
) -> IngestSummary:
    """Ingest dataset ``key`` from ``root`` into ``catalog``; returns what happened.

    ``arrangement`` names one of the spec's arrangements (the publisher's is ``release``); by default the
    one that finds the scans under ``root`` is used. ``copy``: a copy of the release already found under
    ``root`` (:func:`satds.ingest.roots.locate`, as ``satds detect`` does), read as found: ``root`` is not
    searched again, and the copy's arrangement is used.
    """
    from .. import parallel

    spec = get_spec(key)
    root = Path(root).expanduser().resolve()
    onto = load_ontology()
    started = now()
    ingest_id = new_id("ingest")
    summary = IngestSummary(spec.key, str(root), ingest_id)
    batch = _Batcher(catalog)

    def fail(err: CaseError, stage: str = "ingest") -> None:
        err.located(dataset=spec.key)
        err.relative_to(root)  # readers name files by their full path; the error model wants root-relative
        summary.failed += 1
        summary.failures.append(str(err))
        batch.add(
            "failures",
            [
                {
                    "dataset": spec.key,
                    "case": printable(err.case),
                    "scan_id": None,
                    "file": printable(err.file),
                    "stage": stage,
                    "error_type": type(err).__name__,
                    "error": str(err),
                    "ingest_id": ingest_id,
                    "gen": new_gen(),
                    "time": now(),
                }
            ],
        )

    cases: list[CaseFiles] = []
    if not root.is_dir():
        fail(ReadError("dataset root does not exist or is not a folder", dataset=spec.key, file=str(root)))
    elif not is_utf8(str(root)):
        fail(ReadError("the dataset root's path is not valid UTF-8 (shown escaped); rename it or ingest through a symlink with a UTF-8 name", dataset=spec.key, file=str(root)))
    else:
        dataset_classes.cache_clear()
        cases, problems, skipped = [], [], []
        try:
            if copy is None:
                copy = _locate(spec, root, arrangement, summary)
            elif copy.key != spec.key:
                raise ValueError(f"a copy of {copy.key} given to ingest {spec.key}")
            root, summary.arrangement, cases, problems, skipped = _read_copy(spec, root, copy, summary)
        except CaseError as e:  # a release table (labels, splits) that cannot be read: it names the file
            fail(e)
        except SatdsError as e:  # no copy of the release under the root, or several
            fail(CaseError(str(e), dataset=spec.key))
        summary.skipped = len(skipped)
        for p in problems:
            fail(p)
        cases = _with_utf8_names(cases, fail)

    prev_scans, prev_ann = _previous(catalog, spec.key) if cases else ({}, {})
    todo: list[CaseFiles] = []
    hashes: dict[str, str] = {}
    for case in cases:
        hashes[case.scan_id] = stat_key(spec, case, root, onto.version)
        old = prev_scans.get(case.scan_id)
        # Reuse a case whose inputs did not change, unless rows it needs are gone (a quarantined part).
        complete = old is not None and (old.get("label_kind") == "none" or (case.scan_id, old["gen"]) in prev_ann)
        if complete and old.get("stat_key") == hashes[case.scan_id] and (old.get("fingerprint") or not full):
            gen = new_gen()
            for r in prev_ann.get((case.scan_id, old["gen"]), []):
                batch.add("annotations", [{**r, "ingest_id": ingest_id, "gen": gen}])
            batch.add("scans", [{**old, "ingest_id": ingest_id, "gen": gen, "updated_at": now()}])
            summary.reused += 1
            summary.scans += 1
        else:
            todo.append(case)
    done = summary.reused
    total = len(cases)
    if progress:
        progress(done, total)

    task = functools.partial(_task, spec.key, str(root), full)
    for case, ok, res in parallel.run(task, todo, workers=workers, executor=executor):
        if ok:
            gen = new_gen()
            scan = {**res["scan"], "stat_key": hashes[case.scan_id], "ingest_id": ingest_id, "gen": gen, "updated_at": now()}
            batch.add("annotations", [{**r, "ingest_id": ingest_id, "gen": gen} for r in res["annotations"]])
            batch.add("scans", [scan])
            summary.scans += 1
            summary.notes += [f"{case.case_id}: {n}" for n in res["notes"]]
        else:
            err = res if isinstance(res, CaseError) else CaseError(f"{type(res).__name__}: {res}", dataset=spec.key, case=case.case_id, file=case.images[0])
            fail(err.located(dataset=spec.key, case=case.case_id, file=case.images[0] if isinstance(err, WorkerDied) else None))
        done += 1
        if progress:
            progress(done, total)
        batch.maybe_flush()
    batch.flush()

    classes = dataset_classes(spec.key, str(root), summary.arrangement) if root.is_dir() and not (summary.failed and not cases) else None
    if classes is not None:
        catalog.write(
            "dataset_classes",
            [
                {"dataset": spec.key, "class_id": c, "class_name": onto[c].name, "derived": classes.rule_of(c) not in ("source", "lesions"), "rule": classes.rule_of(c), "ingest_id": ingest_id}
                for c in classes.all_classes()
            ],
        )
        summary.notes = classes.notes + summary.notes
    catalog.write(
        "datasets",
        [
            {
                "dataset": spec.key,
                "title": spec.title,
                "modality": spec.modality,
                "region": spec.region,
                "licence": spec.licence,
                "redistributable": spec.redistributable,
                "url": spec.url,
                "root": printable(str(root)),
                "arrangement": summary.arrangement,
                "spec_hash": spec_hash(spec),
                "ingest_id": ingest_id,
                "cases": len({c.case_id for c in cases}),
                "scans": summary.scans,
                "failures": summary.failed,
                "ingested_at": now(),
                "satds_version": __version__,
                "ontology_version": onto.version,
            }
        ],
    )
    catalog.maybe_compact()
    catalog.log_run(ingest_id, f"ingest {spec.key}", {"root": str(root), "arrangement": arrangement, "full": full, "workers": workers}, asdict(summary) | {"failures": summary.failures[:50]}, started)
    return summary


def _locate(spec: DatasetSpec, root: Path, arrangement: str | None, summary: IngestSummary) -> Copy:
    """The copy of the release under or above ``root``; a root holding no copy or several copies of the
    release is a :class:`RootError` saying what was tried and how to choose."""
    from .roots import RootError, locate

    loc = locate(spec, root, arrangement)
    copy = loc.copy
    if loc.ambiguous or copy is None:
        raise RootError(loc.error())
    summary.notes += loc.notes
    return copy


def _read_copy(spec: DatasetSpec, root: Path, copy: Copy, summary: IngestSummary) -> tuple[Path, str, list[CaseFiles], list, list]:
    """(the copy's folder, its arrangement, cases, problems, skipped); a copy whose label table does not
    resolve raises before any case is returned."""
    dataset_classes(spec.key, str(copy.folder), copy.arrangement)  # the copy's label table must resolve first
    summary.root = str(copy.folder)
    if copy.folder != root:
        summary.notes.insert(0, f"release found at {copy.folder} ({copy.arrangement})")
    return copy.folder, copy.arrangement, copy.cases, copy.found.problems, copy.found.skipped


def _task(key: str, root: str, full: bool, case: CaseFiles) -> dict[str, Any]:
    return ingest_case(key, root, case, full)


def _with_utf8_names(cases: list[CaseFiles], fail: Callable[[CaseError], None]) -> list[CaseFiles]:
    """The cases whose file names and ids are valid UTF-8; each other one becomes a failure (the catalog
    stores UTF-8 text: a name from another system's encoding is shown with its bytes escaped)."""
    ok = []
    for case in cases:
        bad = next((n for n in [*case.all_files, case.case_id, case.patient_id, case.scan_id] if n and not is_utf8(n)), None)
        if bad is None:
            ok.append(case)
        else:
            fail(ReadError("the file name is not valid UTF-8 (its bytes are shown escaped); rename it to ingest this case", case=case.case_id, file=bad))
    return ok
