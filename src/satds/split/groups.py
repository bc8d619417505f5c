"""Leakage groups: scans that must land on the same side of any split.

Two scans are joined when they share a patient within a dataset, share image content (any channel's
fingerprint: the same voxels in canonical orientation, whatever the file format), or when a spec
declares the overlap (CTSpine1K's MSD-T10 volumes are MSD Liver images; the TotalSegmentator subsets
share subjects). Groups are the connected components of those links.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field

from ..errors import SatdsError
from ..ingest.patterns import fill
from ..specs import get_spec


@dataclass
class Groups:
    group_of: dict[str, str]  # scan_id → group id
    members: dict[str, list[str]]  # group id → scan ids (sorted)
    reasons: dict[str, set[str]] = field(default_factory=dict)  # group id → why its scans are linked

    def cross_dataset(self, dataset_of: dict[str, str]) -> dict[str, list[str]]:
        return {g: m for g, m in self.members.items() if len({dataset_of[s] for s in m}) > 1}


class _UnionFind:
    def __init__(self, items):
        self.parent = {x: x for x in items}

    def find(self, x):
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a, b) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return False
        if rb < ra:
            ra, rb = rb, ra
        self.parent[rb] = ra
        return True


def group_id(members: list[str]) -> str:
    return "g-" + hashlib.blake2b(min(members).encode(), digest_size=5).hexdigest()


def make_groups(scans: list[dict]) -> Groups:
    """``scans``: rows with scan_id, dataset, case_id, patient_id, fingerprint, case_files (json)."""
    import json

    ids = [s["scan_id"] for s in scans]
    uf = _UnionFind(ids)
    links: list[tuple[str, str, str]] = []
    by_patient: dict[tuple[str, str], list[str]] = defaultdict(list)
    by_print: dict[str, list[str]] = defaultdict(list)
    by_case: dict[tuple[str, str], list[str]] = defaultdict(list)
    for s in scans:
        by_patient[(s["dataset"], s["patient_id"])].append(s["scan_id"])
        by_case[(s["dataset"], s["case_id"])].append(s["scan_id"])
        for fp in (s.get("fingerprint") or "").split(","):
            if fp:
                by_print[fp].append(s["scan_id"])
    for (ds, pid), members in by_patient.items():
        links += [(members[0], m, f"same patient {pid} in {ds}") for m in members[1:]]
    for fp, members in by_print.items():
        links += [(members[0], m, "identical image content") for m in members[1:]]
    specs: dict = {}
    for s in scans:
        if s["dataset"] not in specs:
            try:
                specs[s["dataset"]] = get_spec(s["dataset"])
            except SatdsError:  # a dataset whose spec is gone: only patients and fingerprints link it
                specs[s["dataset"]] = None
        spec = specs[s["dataset"]]
        if spec is None or not spec.overlaps:
            continue
        caps = json.loads(s["case_files"])["captures"] if s.get("case_files") else {"case": s["case_id"]}
        caps.setdefault("case", s["case_id"])
        for ov in spec.overlaps:
            if ov.case is None:
                continue
            try:
                other = fill(ov.case, caps)
            except Exception:
                continue
            for m in by_case.get((ov.dataset, other), []):
                if m != s["scan_id"]:  # a family-wide overlap list may name the spec itself
                    links.append((s["scan_id"], m, f"declared {ov.relation} with {ov.dataset}"))
    reasons_by_pair = []
    for a, b, why in links:
        uf.union(a, b)
        reasons_by_pair.append((a, why))
    comps: dict[str, list[str]] = defaultdict(list)
    for sid in ids:
        comps[uf.find(sid)].append(sid)
    group_of: dict[str, str] = {}
    members: dict[str, list[str]] = {}
    for root, m in comps.items():
        m.sort()
        g = group_id(m)
        members[g] = m
        for sid in m:
            group_of[sid] = g
    reasons: dict[str, set[str]] = defaultdict(set)
    for a, why in reasons_by_pair:
        reasons[group_of[a]].add(why)
    return Groups(group_of, members, dict(reasons))
