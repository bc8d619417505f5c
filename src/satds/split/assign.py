"""Splits and folds over leakage groups: official splits honoured, the rest seeded and reproducible."""

from __future__ import annotations

import hashlib
import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from .groups import Groups, make_groups


@dataclass
class SplitResult:
    split_of: dict[str, str]  # scan_id → train / val / test
    reason_of: dict[str, str]
    groups: Groups
    conflicts: list[str] = field(default_factory=list)  # official splits overridden to avoid a leak


def _rank(seed: int, gid: str) -> str:
    return hashlib.sha256(f"{seed}:{gid}".encode()).hexdigest()


def official_datasets(scans: list[dict]) -> set[str]:
    """Datasets whose official splits carry information: they use a test (or validation) split."""
    by_ds: dict[str, set[str]] = defaultdict(set)
    for s in scans:
        by_ds[s["dataset"]].add(s.get("official_split") or "unknown")
    return {d for d, v in by_ds.items() if v & {"test", "validation"} and "train" in v}


def assign_splits(scans: list[dict], *, train_fraction: float = 0.8, val_fraction: float = 0.0, seed: int = 0, groups: Groups | None = None) -> SplitResult:
    """One split per scan; every group entirely on one side.

    Groups holding an official test scan go to test (a test image must never be trained on, even when
    another dataset's copy of it is labelled train); groups of datasets with official train/test splits
    follow them; the rest are ranked by a seeded hash of their group id and cut per home dataset (the
    dataset of the group's first scan) at ``train_fraction``. ``val_fraction`` of the training groups
    become ``val``.
    """
    groups = groups or make_groups(scans)
    by_id = {s["scan_id"]: s for s in scans}
    official = official_datasets(scans)
    split_of: dict[str, str] = {}
    reason_of: dict[str, str] = {}
    conflicts: list[str] = []
    free: dict[str, list[str]] = defaultdict(list)  # home dataset → group ids
    for gid, members in groups.members.items():
        offs = {by_id[m]["official_split"] for m in members if by_id[m]["dataset"] in official}
        if "test" in offs or "validation" in offs:
            side = "test"
            why = "official test split" if offs <= {"test", "validation"} else "official test split of a shared image"
            if "train" in offs:
                conflicts.append(f"{gid}: official train and test both claim {members}; placed in test")
        elif "train" in offs:
            side, why = "train", "official train split"
        else:
            free[by_id[members[0]]["dataset"]].append(gid)
            continue
        for m in members:
            split_of[m] = side
            reason_of[m] = why
    for ds, gids in free.items():
        gids.sort(key=lambda g: _rank(seed, g))
        n_train = math.ceil(train_fraction * len(gids) - 1e-9)
        if len(gids) > 1 and n_train == len(gids) and train_fraction < 1:
            n_train -= 1  # keep at least one test group per dataset
        n_val = round(val_fraction * n_train)
        for i, g in enumerate(gids):
            side = "val" if i < n_val else ("train" if i < n_train else "test")
            for m in groups.members[g]:
                split_of[m] = side
                reason_of[m] = f"seeded {train_fraction:g} split (seed {seed})"
    return SplitResult(split_of, reason_of, groups, conflicts)


def cv_folds(scans: list[dict], split: SplitResult, k: int = 5, seed: int = 0) -> list[dict]:
    """Grouped k-fold over the training scans (val scans included): rows (scheme, fold, scan_id, role)."""
    train = [s for s in scans if split.split_of[s["scan_id"]] in ("train", "val")]
    by_ds: dict[str, list[str]] = defaultdict(list)
    seen = set()
    for s in train:
        g = split.groups.group_of[s["scan_id"]]
        if g not in seen:
            seen.add(g)
            by_ds[s["dataset"]].append(g)
    fold_of: dict[str, int] = {}
    offset = 0
    for ds in sorted(by_ds):
        gids = sorted(by_ds[ds], key=lambda g: _rank(seed, g))
        for i, g in enumerate(gids):
            fold_of[g] = (i + offset) % k
        offset += len(gids)  # spread small datasets over different folds
    rows = []
    for s in train:
        g = split.groups.group_of[s["scan_id"]]
        rows.append({"scheme": "cv", "fold": fold_of[g], "scan_id": s["scan_id"], "dataset": s["dataset"], "role": "val", "group_id": g})
    return rows


def lodo_folds(scans: list[dict], split: SplitResult) -> list[dict]:
    """Leave-one-dataset-out: fold d holds out dataset d, and excludes other datasets' copies of its images."""
    datasets = sorted({s["dataset"] for s in scans})
    rows = []
    ds_of = {s["scan_id"]: s["dataset"] for s in scans}
    for fold, ds in enumerate(datasets):
        held = {s["scan_id"] for s in scans if s["dataset"] == ds}
        held_groups = {split.groups.group_of[x] for x in held}
        for g in sorted(held_groups):
            for m in split.groups.members[g]:
                role = "val" if m in held else "exclude"
                rows.append({"scheme": "lodo", "fold": fold, "scan_id": m, "dataset": ds_of[m], "role": role, "group_id": g})
    return rows


# ---------------------------------------------------------------------- SAT-DS split files
@dataclass
class SatImport:
    split_of: dict[str, str]
    matched: dict[str, int]  # dataset → scans matched
    unmatched: dict[str, int]  # dataset → scans of ours without an entry in SAT's file
    missing_files: list[str]
    leaks: list[str]  # groups with scans on both sides
    ambiguous: list[str]  # SAT ids listed in both train and test


def load_sat_splits(folder: str | Path, scans: list[dict], groups: Groups) -> SatImport:
    """Map SAT-DS's published split files (keyed by SAT's patient ids) onto the catalog's scans."""
    from ..errors import SatdsError
    from ..specs import get_spec

    folder = Path(folder)
    split_of: dict[str, str] = {}
    matched: dict[str, int] = defaultdict(int)
    unmatched: dict[str, int] = defaultdict(int)
    missing: list[str] = []
    ambiguous: list[str] = []
    files: dict[str, dict] = {}
    for s in scans:
        try:
            name = get_spec(s["dataset"]).sat_key
        except SatdsError:
            name = None
        if not name or not s.get("sat_id"):
            unmatched[s["dataset"]] += 1
            continue
        if name not in files:
            p = folder / f"{name}.json"
            if not p.exists():
                files[name] = {}
                missing.append(p.name)
            else:
                d = json.loads(p.read_text())
                table: dict[str, str] = {}
                for side in ("test", "val", "train"):  # test first: an id listed twice is kept out of training
                    for x in d.get(side, []):
                        if x in table and table[x] != side:
                            ambiguous.append(f"{name}: {x} listed in {table[x]} and {side}")
                            continue
                        table[x] = "val" if side == "val" else side
                files[name] = table
        side = files[name].get(s["sat_id"])
        if side is None:
            unmatched[s["dataset"]] += 1
        else:
            split_of[s["scan_id"]] = side
            matched[s["dataset"]] += 1
    leaks = []
    for g, members in groups.members.items():
        sides = {split_of[m] for m in members if m in split_of}
        if "test" in sides and sides & {"train", "val"}:
            listed = ", ".join(f"{m} ({split_of.get(m, '-')})" for m in members)
            leaks.append(f"{g}: {listed}")
    return SatImport(split_of, dict(matched), dict(unmatched), missing, leaks, ambiguous)
