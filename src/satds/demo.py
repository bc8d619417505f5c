"""``satds demo``: the whole pipeline on an embedded default that needs nothing downloaded.

Phantom releases of the universal-33 sources and a few more (tiny, faithful copies of their native
layouts: DICOM series, slice-first arrays, 4D channels, per-class mask files), plus the real CT/MR scans
(TotalSegmentator's example scans: the project's ``../shared/realdata``, else the copy vendored in
``satds/_realdata``) laid out as releases (one real CT appears in two releases, so the split must group it). Then ingest, build, split, export the universal33 nnU-Net task,
query, QC and the HTML report; the last line printed is the report's path.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from .catalog import Catalog

#: Phantom releases: the seven universal-33 sources, plus multi-channel MRI and a DICOM+PNG release.
DEMO_DATASETS = ["btcv", "msd_liver", "msd_spleen", "msd_pancreas", "kits19", "ctpelvic1k", "ctspine1k_sources", "msd_prostate", "chaos_ct"]
# ctspine1k (the release) is written from ctspine1k_sources by `satds export ctspine1k`, then ingested.

QUERIES = {
    "Volume of liver by dataset (ml, source grid)": """
        SELECT dataset, count(*) AS scans, round(avg(volume_ml), 1) AS mean_ml, round(avg(volume_ml_target), 1) AS mean_ml_1x1x3
        FROM annotations WHERE class_name = 'liver' AND voxels > 0 GROUP BY ALL ORDER BY dataset""",
    "How many scans annotate each vertebra (present or absent)": """
        SELECT class_name, count(*) AS scans, count(*) FILTER (WHERE voxels > 0) AS present
        FROM annotations WHERE class_name LIKE '%vertebrae % (%' GROUP BY ALL ORDER BY min(class_id)""",
    "Label coverage of the universal-33 organs": """
        SELECT class_name, status, count(*) AS scans FROM coverage
        WHERE class_name IN ('liver', 'spleen', 'pancreas', 'left kidney', 'right kidney')
        GROUP BY ALL ORDER BY class_name, status""",
}


def _table(con, title: str, sql: str) -> Table:
    df = con.sql(sql).df()
    t = Table(title=title, title_justify="left")
    for c in df.columns:
        t.add_column(str(c))
    for row in df.itertuples(index=False):
        t.add_row(*[escape(str(v)) for v in row])
    return t


def add_real_scans(data: Path, console: Console | None = None) -> list[tuple[str, Path]]:
    """Lay the real example scans out as cases of releases under ``data`` (joining the phantom releases).

    The CT becomes a TotalSegmentator subject *and* a BTCV case (one image in two releases: the split must
    group them), the MR a TotalSegmentator MRI subject, the DICOM series a CTSpine1K HNSCC source case.
    Returns the releases touched. The scans come from :func:`satds.resources.realdata_dir`: the shared folder's
    copy when present, else the one vendored in the package, so a fresh clone shows real anatomy too.
    """
    from .phantoms.realdata import ts_classes, write_real_as, write_real_dicom_as_hnscc
    from .resources import realdata_dir

    rd = realdata_dir() / "totalsegmentator-examples"
    ct, seg = rd / "ct_small.nii.gz", rd / "seg_small_total.nii.gz"
    mr, mseg = rd / "mr_small.nii.gz", rd / "seg_small_total_mr.nii.gz"
    write_real_as("totalsegmentator", data / "totalsegmentator", ct, seg, ts_classes(rd, seg.name), {"case": "s9001"})
    write_real_as("btcv", data / "btcv", ct, seg, ts_classes(rd, seg.name), {"num": "0041"})
    write_real_as("totalsegmentator_mri", data / "totalsegmentator_mri", mr, mseg, ts_classes(rd, mseg.name), {"case": "s9002"})
    write_real_dicom_as_hnscc(rd, data / "ctspine1k_sources")
    touched = [("totalsegmentator", data / "totalsegmentator"), ("btcv", data / "btcv"), ("totalsegmentator_mri", data / "totalsegmentator_mri"), ("ctspine1k_sources", data / "ctspine1k_sources")]
    if console:
        console.print(f"  real scans from {escape(str(rd))}", highlight=False)
        for key, root in touched:
            console.print(f"  real scan added to {key:<20} → {escape(str(root))}")
    return touched


def prepare(out: Path, *, workers: int | None = None, console: Console | None = None, real: bool = True) -> "Catalog":
    """Releases (phantoms + real scans), ingest, the CTSpine1K release written from its sources, build, split."""
    from .build import build
    from .catalog import Catalog
    from .export.ctspine1k import export_ctspine1k
    from .ingest import ingest
    from .phantoms import generate
    from .split import run_split

    console = console or Console(quiet=True)
    data = out / "downloads"
    cat = Catalog(out / "catalog")
    console.rule("[bold]1. releases: phantoms of native layouts, and the real example scans")
    releases = {key: generate(key, data / key) for key in DEMO_DATASETS}
    for key, root in releases.items():
        console.print(f"  phantom {key:<22} → {escape(str(root))}")
    if real:
        for key, root in add_real_scans(data, console):
            releases[key] = root

    console.rule("[bold]2. ingest (native layouts → catalog)")
    for key, root in releases.items():
        s = ingest(key, root, cat, workers=workers)
        console.print(f"  {key:<22} {s.scans:>2} scans" + (f", [red]{s.failed} failed[/red]" if s.failed else ""))
    rel = export_ctspine1k(cat, data / "CTSpine1K")
    s = ingest("ctspine1k", data / "CTSpine1K", cat, workers=workers)
    console.print(f"  ctspine1k              {s.scans:>2} scans: the release written by `satds export ctspine1k` from its sources ({rel.converted} DICOM series converted), then ingested")

    console.rule("[bold]3. build (RAS, 1x1x3 mm, crop, CT/MRI intensity, statistics)")
    b = build(cat, workers=workers)
    console.print(f"  {b.built} built, {b.skipped} up to date, {b.failed} failed in {b.seconds:.1f} s")

    console.rule("[bold]4. split (patients, identical images, declared overlaps: no leakage)")
    sp = run_split(cat)
    t = Table(title="scans per split", title_justify="left")
    for c in ("dataset", "train", "val", "test"):
        t.add_column(c)
    for ds, c in sorted(sp.counts.items()):
        t.add_row(ds, str(c.get("train", 0)), str(c.get("val", 0)), str(c.get("test", 0)))
    console.print(t)
    for g, members in sorted(sp.cross_groups.items()):
        console.print(f"  group {escape(str(g))} spans datasets (one side): {escape(', '.join(members))}", highlight=False)
    return cat


def run_demo(out: Path, *, workers: int | None = None, console: Console | None = None, fresh: bool = True) -> Path:
    console = console or Console()
    out = Path(out)
    if fresh and out.exists():
        shutil.rmtree(out)
    t0 = time.monotonic()
    cat = prepare(out, workers=workers, console=console)

    console.rule("[bold]5. export universal33 (nnU-Net v2)")
    raw = out / "nnUNet_raw"
    try:
        from .export.nnunet import export_nnunet
        from .export.recipe import find_recipe

        res = export_nnunet(cat, find_recipe("universal33"), raw, workers=workers)
        n_tr = len(list((res.folder / "labelsTr").glob("*.nii.gz")))
        n_ts = len(list((res.folder / "imagesTs").glob("*_0000.nii.gz")))
        console.print(f"  {escape(str(res.folder))}: {n_tr} training cases, {n_ts} test cases, 33 classes + ignore", highlight=False)
        for w in res.warnings[:5]:
            console.print(f"  [dim]note: {escape(str(w))}[/dim]", highlight=False)
    except Exception as e:  # the demo goes on; the message says why
        console.print(f"  [yellow]export skipped:[/yellow] {escape(str(e))}", highlight=False)
    console.print(f"  train it: satds train --task universal33 --root {escape(str(out / 'nnunet'))} --device cuda", highlight=False)

    console.rule("[bold]6. query (DuckDB over the catalog)")
    con = cat.connect()
    for title, sql in QUERIES.items():
        console.print(_table(con, title, sql))
    console.print(f"catalog: {escape(str(cat.root))}   (try: satds query --catalog {escape(str(cat.root))} \"SELECT * FROM scans\")", highlight=False)

    console.rule("[bold]7. QC (previews + checks) and report")
    from .qc import run_qc
    from .qc.report import write_report

    q = run_qc(cat, workers=workers)
    sev = ", ".join(f"{q.severities.get(k, 0)} {k}" for k in ("error", "warning", "info"))
    console.print(f"  {q.previews} previews in {escape(str(q.out / 'previews'))}; flags: {sev}")
    report = write_report(cat, out / "report.html")
    console.print(f"done in {time.monotonic() - t0:.0f} s")
    console.print(f"report: {escape(str(report.resolve()))}", highlight=False, soft_wrap=True)
    return out
