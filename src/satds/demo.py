"""``satds demo``: the whole pipeline on an embedded default that needs nothing downloaded.

Phantom releases of several datasets (tiny, faithful copies of their native layouts) plus, when the
project's ``../shared/realdata`` is present, the real CT/MR scans laid out as releases; then ingest,
build, split, query, QC and the HTML report, printing what a user would look at; the last line printed
is the report's path.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

DEMO_DATASETS = ["msd_liver", "msd_spleen", "msd_pancreas", "kits23"]

QUERIES = {
    "Volume of each class by dataset (ml, source grid)": """
        SELECT dataset, class_name, count(*) AS scans, round(avg(volume_ml), 2) AS mean_ml,
               round(avg(volume_ml_target), 2) AS mean_ml_target
        FROM annotations WHERE voxels > 0 GROUP BY ALL ORDER BY dataset, class_name""",
    "Label coverage (present / absent / unknown) for a few classes": """
        SELECT class_name, status, count(*) AS scans FROM coverage
        WHERE class_name IN ('liver', 'spleen', 'pancreas', 'kidney', 'left kidney')
        GROUP BY ALL ORDER BY class_name, status""",
    "Split sizes": "SELECT dataset, split, count(*) AS scans FROM splits GROUP BY ALL ORDER BY dataset, split",
}


def run_demo(out: Path, *, workers: int | None = None, console: Console | None = None, fresh: bool = True) -> Path:
    from .build import build
    from .catalog import Catalog
    from .ingest import ingest
    from .phantoms import generate
    from .split import run_split

    console = console or Console()
    out = Path(out)
    if fresh and out.exists():
        shutil.rmtree(out)
    data = out / "downloads"
    cat = Catalog(out / "catalog")
    t0 = time.monotonic()
    console.rule("[bold]1. phantom releases")
    for key in DEMO_DATASETS:
        root = generate(key, data / key)
        console.print(f"  {key:<14} → {root}")
    console.rule("[bold]2. ingest (native layouts → catalog)")
    for key in DEMO_DATASETS:
        s = ingest(key, data / key, cat, workers=workers)
        console.print(f"  {key:<14} {s.scans} scans" + (f", {s.failed} failed" if s.failed else ""))
    console.rule("[bold]3. build (RAS, 1x1x3 mm, crop, intensity)")
    b = build(cat, workers=workers)
    console.print(f"  {b.built} built, {b.skipped} up to date, {b.failed} failed in {b.seconds:.1f} s")
    console.rule("[bold]4. split (patient groups, no leakage)")
    sp = run_split(cat)
    console.print(f"  {len(sp.cross_groups)} groups span datasets; each lies on one side")
    console.rule("[bold]5. query (DuckDB over the catalog)")
    con = cat.connect()
    for title, sql in QUERIES.items():
        df = con.sql(sql).df()
        t = Table(title=title, title_justify="left")
        for c in df.columns:
            t.add_column(str(c))
        for row in df.itertuples(index=False):
            t.add_row(*[str(v) for v in row])
        console.print(t)
    console.print(f"\ncatalog: {cat.root}   (try: satds query --catalog {cat.root} \"SELECT * FROM scans\")")
    console.rule("[bold]6. QC (previews + checks) and report")
    from .qc import run_qc
    from .qc.report import write_report

    q = run_qc(cat, workers=workers)
    sev = ", ".join(f"{q.severities.get(k, 0)} {k}" for k in ("error", "warning", "info"))
    console.print(f"  {q.previews} previews in {q.out / 'previews'}; flags: {sev}")
    report = write_report(cat, out / "report.html")
    console.print(f"done in {time.monotonic() - t0:.0f} s")
    console.print(f"report: {report.resolve()}", highlight=False, soft_wrap=True)
    return out
