"""Benchmark: DuckDB over a catalog at SAT-DS scale (22k scans, ~300k annotation rows).

Writes synthetic rows through the catalog's own writer (as ingest batches would: many part files), then
times opening the views and a group-by over dataset x class, cold and warm, and after compaction.

    .venv/bin/python bench/bench_catalog.py [--scans 22186] [--parts 200]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from satds.catalog import Catalog, new_gen, now
from satds.ontology import load_ontology

QUERY = """
SELECT dataset, class_name, count(*) AS scans, avg(volume_ml) AS mean_ml, sum(voxels) AS voxels
FROM annotations GROUP BY dataset, class_name ORDER BY dataset, class_name
"""


def fill(cat: Catalog, n_scans: int, n_parts: int, seed: int = 0) -> int:
    rng = np.random.default_rng(seed)
    onto = load_ontology()
    concepts = list(onto.concepts.values())
    datasets = [f"dataset_{i:02d}" for i in range(72)]
    ds_classes = {d: [concepts[j] for j in rng.choice(len(concepts), size=int(rng.integers(1, 30)), replace=False)] for d in datasets}
    per_part = int(np.ceil(n_scans / n_parts))
    total = 0
    t = now()
    for p in range(n_parts):
        scans, anns = [], []
        for i in range(p * per_part, min(n_scans, (p + 1) * per_part)):
            d = datasets[i % len(datasets)]
            gen = new_gen()
            sid = f"{d}/case_{i:05d}"
            scans.append({"scan_id": sid, "dataset": d, "case_id": f"case_{i:05d}", "patient_id": f"p{i}", "modality": "CT", "status": "built", "ingest_id": f"ingest-{d}", "gen": gen, "updated_at": t})
            for c in ds_classes[d]:
                v = int(rng.integers(0, 2_000_000))
                anns.append({"scan_id": sid, "dataset": d, "class_id": c.id, "class_name": c.name, "derived": False, "rule": "source", "voxels": v, "volume_ml": v * 0.6 / 1000, "voxels_target": v // 5, "volume_ml_target": v * 0.6 / 1000, "ingest_id": f"ingest-{d}", "gen": gen})
        cat.write("annotations", anns)
        cat.write("scans", scans)
        total += len(anns)
    cat.write("datasets", [{"dataset": d, "ingest_id": f"ingest-{d}", "ingested_at": t} for d in datasets])
    return total


def timed(cat: Catalog, repeat: int = 5) -> tuple[float, float, int]:
    t0 = time.perf_counter()
    con = cat.connect()
    t_open = time.perf_counter() - t0
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        rows = con.execute(QUERY).fetchall()
        times.append(time.perf_counter() - t)
    con.close()
    return t_open, min(times), len(rows)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scans", type=int, default=22186)
    ap.add_argument("--parts", type=int, default=200)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        cat = Catalog(Path(d) / "catalog")
        t = time.perf_counter()
        n = fill(cat, args.scans, args.parts)
        print(f"{args.scans} scans, {n} annotation rows in {args.parts} parts per table, written in {time.perf_counter() - t:.1f} s")
        t_open, t_q, groups = timed(cat)
        print(f"{args.parts} parts: open views {t_open * 1000:.0f} ms, group-by dataset x class ({groups} groups) {t_q * 1000:.0f} ms (best of 5)")
        for table in ("annotations", "scans"):
            cat.compact(table)
        t_open, t_q, groups = timed(cat)
        print(f"compacted: open views {t_open * 1000:.0f} ms, group-by dataset x class ({groups} groups) {t_q * 1000:.0f} ms (best of 5)")


if __name__ == "__main__":
    main()
