"""``satds build``: normalise every ingested scan, incrementally, on a process pool or a Dask cluster.

A scan is rebuilt only when its ``build_hash`` changes: the content hash of its source files, its spec
and the ontology version (all in the scan's ``input_hash``) plus the build configuration. A scan whose
outputs and sidecar already carry the wanted hash (a run killed after writing them) is recovered from the
sidecar without recomputation. Rows are written in batches; a scan's ``scans`` row commits it.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..catalog import Catalog, new_gen, new_id, now
from ..catalog.store import dataset_problems
from ..errors import CaseError
from .config import BUILD_VERSION, BuildConfig
from .task import BuildJob, build_scan, scan_folder


@dataclass
class BuildSummary:
    build_id: str
    built: int = 0
    skipped: int = 0
    recovered: int = 0
    failed: int = 0
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0


def build_hash(scan: dict, cfg: BuildConfig) -> str:
    return hashlib.sha256(f"{BUILD_VERSION}|{scan.get('input_hash') or scan.get('stat_key')}|{cfg.hash()}".encode()).hexdigest()[:24]


def _recover(folder: Path, want: str) -> dict | None:
    meta = folder / "meta.json"
    if not meta.exists():
        return None
    try:
        m = json.loads(meta.read_text())
    except (OSError, ValueError):
        return None
    if m.get("build_hash") != want:
        return None
    up = m["update"]
    if not Path(up["normalised_image"]).is_absolute():
        return None  # written before paths were stored absolute: rebuild
    if not Path(up["normalised_image"]).exists() or (up.get("normalised_label") and not Path(up["normalised_label"]).exists()):
        return None
    return {"update": up, "annotations": m["annotations"]}


def build(
    catalog: Catalog,
    config: BuildConfig | None = None,
    *,
    datasets: list[str] | None = None,
    out_dir: str | os.PathLike | None = None,
    workers: int | None = None,
    executor: str = "local",
    scheduler: str | None = None,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> BuildSummary:
    from .. import parallel

    from ..errors import SatdsError

    cfg = config or BuildConfig()
    if not catalog.exists():
        raise SatdsError(f"no catalog at {catalog.root} (satds ingest creates one)")
    # Paths stored in the catalog are absolute: a catalog must read the same from any working folder.
    out = (Path(out_dir) if out_dir else catalog.root / "normalised").expanduser().resolve()
    started = now()
    t0 = time.monotonic()
    summary = BuildSummary(new_id("build"))
    con = catalog.connect()
    try:
        where, params = "", None
        if datasets:
            keys = list(dict.fromkeys(d.lower() for d in datasets))
            problems = dataset_problems(con, keys, catalog.root)
            if problems:
                raise SatdsError("; ".join(problems))
            where, params = "WHERE s.dataset IN (SELECT unnest($ds))", {"ds": keys}
        rel = con.sql(f"SELECT s.*, d.root FROM scans s JOIN datasets d USING (dataset) {where} ORDER BY s.scan_id", params=params)
        scans = rel.to_arrow_table().to_pylist()
    finally:
        con.close()

    pending: dict[str, list[dict]] = {"annotations": [], "scans": [], "failures": []}
    last_flush = time.monotonic()

    def flush() -> None:
        nonlocal last_flush
        for t in ("annotations", "failures", "scans"):
            if pending[t]:
                catalog.write(t, pending[t])
                pending[t] = []
        last_flush = time.monotonic()

    def commit(scan: dict, result: dict) -> None:
        gen = new_gen()
        base = {k: v for k, v in scan.items() if k != "root"}
        pending["annotations"].extend({**r, "ingest_id": scan["ingest_id"], "gen": gen} for r in result["annotations"])
        pending["scans"].append({**base, **result["update"], "gen": gen, "updated_at": now()})

    jobs: list[BuildJob] = []
    for scan in scans:
        want = build_hash(scan, cfg)
        folder = scan_folder(out, scan["scan_id"])
        if not force and scan.get("build_hash") == want and scan.get("normalised_image") and Path(scan["normalised_image"]).exists():
            summary.skipped += 1
            continue
        rec = None if force else _recover(folder, want)
        if rec is not None:
            commit(scan, rec)
            summary.recovered += 1
            continue
        jobs.append(BuildJob({k: v for k, v in scan.items() if k != "root"}, scan["root"], str(out), cfg.model_dump(mode="json"), want))
    done = summary.skipped + summary.recovered
    total = len(scans)
    if progress:
        progress(done, total)
    by_id = {s["scan_id"]: s for s in scans}
    for job, ok, res in parallel.run(build_scan, jobs, workers=workers, executor=executor, scheduler=scheduler):
        scan = by_id[job.scan["scan_id"]]
        if ok:
            commit(scan, res)
            summary.built += 1
        else:
            err = res.located(dataset=scan["dataset"], case=scan["case_id"]) if isinstance(res, CaseError) else CaseError(f"{type(res).__name__}: {res}", dataset=scan["dataset"], case=scan["case_id"])
            err.relative_to(scan["root"])
            summary.failed += 1
            summary.failures.append(str(err))
            pending["failures"].append(
                {
                    "dataset": scan["dataset"],
                    "case": scan["case_id"],
                    "scan_id": scan["scan_id"],
                    "file": err.file,
                    "stage": "build",
                    "error_type": type(err).__name__,
                    "error": str(err),
                    "ingest_id": scan["ingest_id"],
                    "gen": new_gen(),
                    "time": now(),
                }
            )
        done += 1
        if progress:
            progress(done, total)
        if time.monotonic() - last_flush > 5.0:
            flush()
    flush()
    summary.seconds = time.monotonic() - t0
    catalog.maybe_compact()
    catalog.log_run(summary.build_id, "build", {**cfg.model_dump(mode="json"), "datasets": datasets, "workers": workers, "executor": executor}, {k: v for k, v in summary.__dict__.items() if k != "failures"} | {"failures": summary.failures[:50]}, started)
    return summary
