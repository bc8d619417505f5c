"""``satds split``: compute leakage groups, splits and folds from the catalog and store them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..catalog import Catalog, new_id, now
from .assign import SatImport, SplitResult, assign_splits, cv_folds, load_sat_splits, lodo_folds
from .groups import make_groups


@dataclass
class SplitSummary:
    split_id: str
    counts: dict[str, dict[str, int]]  # dataset → split → scans
    cross_groups: dict[str, list[str]]  # groups spanning datasets
    conflicts: list[str] = field(default_factory=list)
    sat: SatImport | None = None


def scan_rows(catalog: Catalog) -> list[dict]:
    con = catalog.connect()
    try:
        return con.sql("SELECT scan_id, dataset, case_id, patient_id, sat_id, fingerprint, official_split, case_files FROM scans ORDER BY scan_id").to_arrow_table().to_pylist()
    finally:
        con.close()


def run_split(
    catalog: Catalog,
    *,
    train_fraction: float = 0.8,
    val_fraction: float = 0.0,
    seed: int = 0,
    folds: int = 5,
    from_sat_ds: str | Path | None = None,
    keep_leaks: bool = False,
) -> SplitSummary:
    scans = scan_rows(catalog)
    groups = make_groups(scans)
    result: SplitResult = assign_splits(scans, train_fraction=train_fraction, val_fraction=val_fraction, seed=seed, groups=groups)
    sat = None
    if from_sat_ds:
        sat = load_sat_splits(from_sat_ds, scans, groups)
        for sid, side in sat.split_of.items():
            result.split_of[sid] = side
            result.reason_of[sid] = "SAT-DS published split"
        if not keep_leaks:
            for g, members in groups.members.items():
                sides = {result.split_of[m] for m in members}
                if "test" in sides and len(sides) > 1:
                    for m in members:
                        result.split_of[m] = "test"
                        result.reason_of[m] = "moved to test: its image or patient is in SAT-DS's test split elsewhere"
    split_id = new_id("split")
    t = now()
    rows = [
        {"split_id": split_id, "scan_id": s["scan_id"], "dataset": s["dataset"], "split": result.split_of[s["scan_id"]], "group_id": groups.group_of[s["scan_id"]], "reason": result.reason_of[s["scan_id"]], "created_at": t}
        for s in scans
    ]
    fold_rows = cv_folds(scans, result, k=folds, seed=seed) + lodo_folds(scans, result) if scans else []
    catalog.write("folds", [{"split_id": split_id, **r} for r in fold_rows])
    catalog.write("splits", rows)
    counts: dict[str, dict[str, int]] = {}
    for r in rows:
        counts.setdefault(r["dataset"], {}).setdefault(r["split"], 0)
        counts[r["dataset"]][r["split"]] += 1
    ds_of = {s["scan_id"]: s["dataset"] for s in scans}
    catalog.log_run(split_id, "split", {"train_fraction": train_fraction, "val_fraction": val_fraction, "seed": seed, "folds": folds, "from_sat_ds": str(from_sat_ds) if from_sat_ds else None}, {"counts": counts, "conflicts": result.conflicts}, t)
    return SplitSummary(split_id, counts, groups.cross_dataset(ds_of), result.conflicts, sat)
