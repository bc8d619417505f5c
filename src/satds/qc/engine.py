"""``satds qc``: previews and automatic checks over the catalog, written to ``qc_flags``.

Two passes. Per scan (in parallel, :mod:`satds.parallel`): read the normalised image and label, write
the preview, test labels against the body mask, find the body midline, and read the source channels for
the intensity checks. Then over the tables: empty/one-voxel classes, volume outliers (collection-wide),
left/right sides (centroids and the midlines from the first pass) and source geometry.

Every row of one run shares ``run_id`` and ``created_at``; the ``qc_flags`` view shows the newest run.
A run restricted to some datasets therefore carries the newest flags of the other datasets over, so the
view stays the whole collection's state. Each built scan gets one ``preview`` info row, so the report
(and anyone querying) finds every preview, flagged or not.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from ..catalog import Catalog, new_id, now
from ..catalog.store import dataset_problems
from .config import QCConfig
from .flags import flag


@dataclass
class QCSummary:
    run_id: str
    out: Path
    scans: int = 0
    previews: int = 0
    failed: int = 0
    carried: int = 0
    severities: dict[str, int] = field(default_factory=dict)
    checks: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class ScanJob:
    scan: dict[str, Any]
    root: str | None
    classes: list[dict[str, Any]]
    preview_path: str | None
    config: dict[str, Any]
    source: bool


def preview_path(out: str | Path, scan_id: str) -> Path:
    parts = scan_id.split("/")
    return Path(out) / "previews" / Path(*parts[:-1], parts[-1] + ".png")


def qc_scan(job: ScanJob) -> dict[str, Any]:
    """The per-scan pass: flags, the preview written and the body midline (world x) of one scan."""
    from .body import air_level, body_mask, midline_x
    from .check_image import outside_body
    from .preview import render_preview
    from .scan import ClassInfo, load_built

    cfg = QCConfig.model_validate(job.config)
    scan = job.scan
    sid, ds = scan["scan_id"], scan["dataset"]
    classes = [ClassInfo(**c) for c in job.classes]
    flags: list[dict[str, Any]] = []
    preview = None
    mid = None
    if scan.get("normalised_image") and Path(scan["normalised_image"]).exists():
        b = load_built(scan)
        level = air_level(b.image, is_ct=b.is_ct, ct_window=b.ct_window, cfg=cfg)
        body = body_mask(b.image, level)
        if level is not None:
            mid = midline_x(body, b.affine)
        if b.label is not None:
            flags += outside_body(b.label, body, b.spacing, classes, cfg, scan_id=sid, dataset=ds, modality=b.modality)
        if job.preview_path:
            info = render_preview(b, classes, job.preview_path, cfg)
            preview = str(info.path)
            shown = sum(e.visible for e in info.legend)
            flags.append(flag("preview", "info", f"preview of {len(info.legend)} class(es), {shown} in the three slices", scan_id=sid, dataset=ds, value=len(info.legend)))
    if job.source and job.root:
        try:
            flags += _source_flags(scan, job.root, cfg)
        except Exception as e:  # noqa: BLE001 - the source may have moved; QC goes on
            flags.append(flag("source_unreadable", "info", f"source files not readable for the intensity checks: {type(e).__name__}: {e}", scan_id=sid, dataset=ds))
    return {"flags": flags, "preview": preview, "midline": mid}


def _source_flags(scan: dict[str, Any], root: str, cfg: QCConfig) -> list[dict[str, Any]]:
    from ..ingest.discover import CaseFiles
    from ..ingest.read import load_channels
    from ..specs import get_spec
    from .check_intensity import intensity

    spec = get_spec(scan["dataset"])
    case = CaseFiles(**json.loads(scan["case_files"]))
    channels = load_channels(spec, case, Path(root))
    mods = list(scan.get("channel_modalities") or [spec.modality] * len(channels))
    names = list(scan.get("channels") or [])
    out = []
    for i, v in enumerate(channels):
        mod = mods[i] if i < len(mods) else spec.modality
        name = (names[i] if i < len(names) else str(i)) if len(channels) > 1 else ""
        out += intensity(v.array, mod, cfg, scan_id=scan["scan_id"], dataset=scan["dataset"], channel=name)
    return out


def _classes_by_scan(ann: pd.DataFrame) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in ann.itertuples(index=False):
        lv = r.label_values
        out.setdefault(r.scan_id, []).append(
            {
                "class_id": r.class_id,
                "name": r.class_name or r.class_id,
                "label_values": [int(v) for v in lv] if lv is not None else [],
                "voxels": int(r.voxels or 0),
                "voxels_target": int(r.voxels_target) if r.voxels_target is not None and not pd.isna(r.voxels_target) else 0,
                "derived": bool(r.derived) if r.derived is not None else False,
            }
        )
    return out


def run_qc(
    catalog: Catalog,
    *,
    datasets: list[str] | None = None,
    out: str | os.PathLike | None = None,
    config: QCConfig | None = None,
    workers: int | None = None,
    executor: str = "local",
    scheduler: str | None = None,
    source: bool = True,
    previews: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> QCSummary:
    from .. import parallel
    from ..ontology import load_ontology
    from .check_geometry import geometry
    from .check_labels import empty_and_tiny, laterality, volume_outliers

    cfg = config or QCConfig()
    out = (Path(out) if out else catalog.root / "qc").expanduser().resolve()  # preview paths are stored: absolute
    started = now()
    t0 = time.monotonic()
    summary = QCSummary(new_id("qc"), out)
    con = catalog.connect()
    try:
        if datasets:
            keys = list(dict.fromkeys(d.lower() for d in datasets))
            problems = dataset_problems(con, keys, catalog.root)
            if problems:
                raise ValueError("; ".join(problems))
            sel = set(keys)
        else:
            sel = {r[0] for r in con.execute("SELECT dataset FROM datasets").fetchall()}
        scans = con.sql(
            """SELECT s.scan_id, s.dataset, s.case_id, s.modality, s.channels, s.channel_modalities, s.case_files,
                      s.spacing, s.affine, s.axcodes, s.normalised_image, s.normalised_label, s.status, d.root
               FROM scans s JOIN datasets d USING (dataset) ORDER BY s.scan_id"""
        ).to_arrow_table().to_pandas()
        ann = con.sql(
            """SELECT scan_id, dataset, class_id, class_name, derived, label_values, voxels, voxels_target,
                      volume_ml, centroid_mm FROM annotations ORDER BY scan_id, class_id"""
        ).to_arrow_table().to_pandas()
        carried = con.sql("SELECT * FROM qc_flags").to_arrow_table().to_pylist() if datasets else []
    finally:
        con.close()
    scans_sel = scans[scans["dataset"].isin(sel)]
    ann_sel = ann[ann["dataset"].isin(sel)]
    classes = _classes_by_scan(ann_sel)
    jobs = []
    for r in scans_sel.to_dict("records"):
        root = r.pop("root", None)
        scan = {k: (list(v) if hasattr(v, "tolist") and not isinstance(v, str) else v) for k, v in r.items() if k in ("scan_id", "dataset", "case_id", "modality", "channels", "channel_modalities", "case_files", "normalised_image", "normalised_label")}
        scan = {k: (None if isinstance(v, float) and pd.isna(v) else v) for k, v in scan.items()}
        jobs.append(ScanJob(scan, root, classes.get(r["scan_id"], []), str(preview_path(out, r["scan_id"])) if previews else None, cfg.model_dump(mode="json"), source))
    summary.scans = len(jobs)
    flags: list[dict[str, Any]] = []
    midlines: dict[str, float | None] = {}
    previews_by_scan: dict[str, str] = {}
    done = 0
    if progress:
        progress(0, len(jobs))
    for job, ok, res in parallel.run(qc_scan, jobs, workers=workers, executor=executor, scheduler=scheduler):
        sid, ds = job.scan["scan_id"], job.scan["dataset"]
        if ok:
            flags += res["flags"]
            midlines[sid] = res["midline"]
            if res["preview"]:
                previews_by_scan[sid] = res["preview"]
        else:
            summary.failed += 1
            flags.append(flag("qc_failed", "error", f"{type(res).__name__}: {res}", scan_id=sid, dataset=ds))
        done += 1
        if progress:
            progress(done, len(jobs))
    onto = load_ontology()
    flags += empty_and_tiny(ann_sel, onto, cfg)
    flags += volume_outliers(ann, cfg, datasets=sel)
    flags += laterality(ann_sel, onto, cfg, midlines)
    flags += geometry(scans_sel, cfg)
    created = now()
    rows = [{**f, "run_id": summary.run_id, "preview": previews_by_scan.get(f["scan_id"]), "created_at": created} for f in flags]
    keep = [{**r, "run_id": summary.run_id, "created_at": created} for r in carried if r["dataset"] not in sel]
    summary.carried = len(keep)
    catalog.write("qc_flags", rows + keep)
    summary.previews = len(previews_by_scan)
    real = [f for f in flags if f["check"] != "preview"]
    summary.severities = dict(Counter(f["severity"] for f in real))
    summary.checks = dict(Counter(f["check"] for f in real))
    summary.seconds = time.monotonic() - t0
    catalog.log_run(
        summary.run_id,
        "qc",
        {**cfg.model_dump(mode="json"), "datasets": sorted(sel), "out": str(out), "source": source, "previews": previews},
        {k: v for k, v in summary.__dict__.items() if k != "out"},
        started,
    )
    return summary
