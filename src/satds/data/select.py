"""Which scans and which classes: a selection over the built catalog, with every class's status per scan.

Pure catalog work (DuckDB, no voxels, no torch): :func:`select_scans` turns a request (split, fold,
dataset keys, a SQL condition over ``scans``, class names) into :class:`ScanItem` rows that carry what a
loader needs: the normalised files, the grid, and per requested class its status (``coverage``: present,
absent, unknown) and the label atoms whose union is the class (``annotations.label_values``). Bad requests
raise one :class:`~satds.errors.DataError` naming what to fix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..errors import DataError, OntologyError

#: Class status codes, as stored in ``class_status`` tensors and MONAI datalists.
PRESENT, ABSENT, UNKNOWN = 1, 0, -1
STATUS_CODES = {"present": PRESENT, "absent": ABSENT, "unknown": UNKNOWN}
STATUS_NAMES = {v: k for k, v in STATUS_CODES.items()}


def coverage_status(con, scan_ids: Sequence[str], class_ids: Sequence[str]) -> dict[tuple[str, str], str]:
    """``(scan_id, class_id) → present | absent | unknown`` from the catalog's ``coverage`` view, on an open
    connection (the one place that reads per-scan class status; the exports' ``class_status.json`` too)."""
    if not scan_ids or not class_ids:
        return {}
    rows = con.sql(
        "SELECT scan_id, class_id, status FROM coverage WHERE scan_id IN (SELECT unnest($s)) AND class_id IN (SELECT unnest($c))",
        params={"s": list(scan_ids), "c": list(class_ids)},
    ).fetchall()
    return {(s, c): st for s, c, st in rows}


@dataclass(frozen=True)
class Classes:
    """The requested classes, resolved through the ontology, in request order."""

    ids: tuple[str, ...]
    names: tuple[str, ...]  # preferred names (the SAT-style text prompt)
    synonyms: tuple[tuple[str, ...], ...]

    def __len__(self) -> int:
        return len(self.ids)


def resolve_classes(names: Sequence[str], onto=None) -> Classes:
    """Ontology ids for names, synonyms or ids; every unknown or repeated name in one :class:`DataError`."""
    from ..ontology import load_ontology

    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    if not names:
        raise DataError("no classes requested: give ontology names, synonyms or ids (e.g. classes=['liver', 'spleen'])")
    onto = onto or load_ontology()
    problems: list[str] = []
    ids: list[str] = []
    first: dict[str, str] = {}
    for n in names:
        try:
            c = onto.resolve(n)
        except OntologyError as e:
            problems.append(str(e))
            continue
        if c.id in first:
            problems.append(f"{n!r} and {first[c.id]!r} are the same class {c.id!r}; list it once")
            continue
        first[c.id] = n
        ids.append(c.id)
    if problems:
        raise DataError("bad class list: " + "; ".join(problems))
    return Classes(tuple(ids), tuple(onto[c].name for c in ids), tuple(tuple(onto[c].synonyms) for c in ids))


@dataclass
class ScanItem:
    """One built scan, ready to read: files, grid, and per requested class its status and label atoms."""

    scan_id: str
    dataset: str
    case_id: str
    patient_id: str | None
    split: str | None
    fold: int | None
    image: Path  # normalised image (.nii.gz, float32, channels on the 4th axis)
    label: Path | None  # normalised label atoms (.nii.gz)
    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]
    affine: list[list[float]]  # 4x4, RAS+ mm
    channels: list[str]
    modalities: list[str]
    build_hash: str
    source_files: list[str]
    status: list[int]  # per requested class: PRESENT, ABSENT or UNKNOWN
    label_values: list[list[int]]  # per requested class: the atoms whose union is the class (empty when unknown)
    voxels: list[int | None]  # per requested class: voxels on the built grid (annotations.voxels_target)

    @property
    def n_channels(self) -> int:
        return max(1, len(self.channels))


@dataclass
class Selection:
    catalog_root: Path
    classes: Classes
    items: list[ScanItem]
    request: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.items)


def _resolve_path(p: str | None, root: Path) -> Path | None:
    """Catalog paths are absolute today; a relative one is taken relative to the catalog root."""
    if not p:
        return None
    q = Path(p)
    return q if q.is_absolute() else root / q


def _as_list(v) -> list | None:
    if v is None:
        return None
    if isinstance(v, str):
        return [x.strip() for x in v.split(",") if x.strip()]
    return list(v)


def _describe(request: dict[str, Any]) -> str:
    parts = [f"{k}={v!r}" for k, v in request.items() if v is not None and k != "classes"]
    return ", ".join(parts) or "no filter"


def select_scans(
    catalog,
    classes: Sequence[str] | Classes,
    *,
    split: str | Sequence[str] | None = None,
    fold: int | None = None,
    fold_role: str = "train",
    datasets: str | Sequence[str] | None = None,
    where: str | None = None,
) -> Selection:
    """The built scans matching every given filter, with the requested classes' status and atoms.

    - ``split``: ``train``, ``val`` and/or ``test`` (the catalog's ``splits``);
    - ``fold`` with ``fold_role``: the grouped cross-validation fold ``k`` of ``satds split``: ``train``
      gives the scans of every other fold, ``val`` the scans held out in fold ``k``;
    - ``datasets``: dataset keys;
    - ``where``: any DuckDB condition over the ``scans`` view (``"modality = 'CT' AND target_shape[3] >= 20"``).
    """
    from ..catalog import Catalog

    cat = catalog if isinstance(catalog, Catalog) else Catalog(catalog)
    cls = classes if isinstance(classes, Classes) else resolve_classes(classes)
    split_l = _as_list(split)
    ds_l = [d.lower() for d in _as_list(datasets) or []] or None
    request = {"split": split_l, "fold": fold, "fold_role": fold_role if fold is not None else None, "datasets": ds_l, "where": where}
    if fold_role not in ("train", "val"):
        raise DataError(f"fold_role must be 'train' or 'val', not {fold_role!r}")
    bad_split = [s for s in split_l or [] if s not in ("train", "val", "test")]
    if bad_split:
        raise DataError(f"split {bad_split} is not one of train, val, test")
    if not cat.exists():
        raise DataError(f"no catalog at {cat.root}: run `satds ingest KEY --root DIR` and `satds build` first (or pass the catalog's folder)")

    from ..catalog.store import restrict_files

    con = cat.connect()
    restrict_files(con, cat.root)  # ``where`` is SQL: like `satds query`, it reaches the catalog's folder only
    try:
        n_scans = con.execute("SELECT count(*) FROM scans").fetchall()[0][0]
        if n_scans == 0:
            raise DataError(f"the catalog {cat.root} holds no scans: run `satds ingest KEY --root DIR`, then `satds build`")
        if split_l is not None or fold is not None:
            if con.execute("SELECT count(*) FROM splits").fetchall()[0][0] == 0:
                raise DataError(f"the catalog {cat.root} has no splits yet: run `satds split` (or select without split/fold)")
        if fold is not None:
            n_folds = con.execute("SELECT max(fold) FROM folds WHERE scheme = 'cv'").fetchall()[0][0]
            if n_folds is None or not 0 <= int(fold) <= int(n_folds):
                raise DataError(f"fold {fold} does not exist: the catalog's split has cross-validation folds 0..{n_folds} (re-run `satds split --folds N`)")
        if ds_l:
            known = {r[0] for r in con.execute("SELECT DISTINCT dataset FROM scans").fetchall()}
            missing = [d for d in ds_l if d not in known]
            if missing:
                raise DataError(f"dataset(s) {missing} are not in the catalog {cat.root} (it holds {', '.join(sorted(known))}); run `satds ingest` for them")

        conds = ["TRUE"]
        params: dict[str, Any] = {}
        if ds_l:
            conds.append("s.dataset IN (SELECT unnest($ds))")
            params["ds"] = ds_l
        if split_l:
            conds.append("sp.split IN (SELECT unnest($sp))")
            params["sp"] = split_l
        if fold is not None:
            conds.append("f.fold = $fold" if fold_role == "val" else "f.fold IS NOT NULL AND f.fold <> $fold")
            params["fold"] = int(fold)
        if where:
            conds.append(f"s.scan_id IN (SELECT scan_id FROM scans WHERE {where})")
        sql = f"""
            SELECT s.scan_id, s.dataset, s.case_id, s.patient_id, s.channels, s.channel_modalities, s.image_paths,
                   s.label_paths, s.normalised_image, s.normalised_label, s.target_shape, s.target_spacing,
                   s.target_affine, s.build_hash, s.label_kind, d.root, sp.split, f.fold
            FROM scans s JOIN datasets d USING (dataset)
            LEFT JOIN splits sp USING (scan_id)
            LEFT JOIN (SELECT scan_id, fold FROM folds WHERE scheme = 'cv' AND role = 'val') f USING (scan_id)
            WHERE {' AND '.join(conds)}
            ORDER BY s.scan_id"""
        try:
            rows = con.sql(sql, params=params or None).to_arrow_table().to_pylist()
        except Exception as e:  # a bad WHERE: DuckDB's parser/binder message says what
            if where:
                raise DataError(f"where={where!r} is not a valid condition over the scans view: {e}") from None
            raise
        if not rows:
            raise DataError(f"no scan matches the selection ({_describe(request)}); the catalog has {_overview(con)}")
        ids = [r["scan_id"] for r in rows]
        cov = coverage_status(con, ids, cls.ids)
        ann = con.sql(
            "SELECT scan_id, class_id, label_values, voxels_target FROM annotations WHERE scan_id IN (SELECT unnest($s)) AND class_id IN (SELECT unnest($c))",
            params={"s": ids, "c": list(cls.ids)},
        ).fetchall()
        annotators = con.sql(
            "SELECT class_id, list(DISTINCT dataset ORDER BY dataset) FROM dataset_classes WHERE class_id IN (SELECT unnest($c)) GROUP BY class_id",
            params={"c": list(cls.ids)},
        ).fetchall()
    finally:
        con.close()

    status = {k: STATUS_CODES[st] for k, st in cov.items()}
    atoms = {(s, c): (list(v or []), vt) for s, c, v, vt in ann}
    # ---- every class must be annotated by some selected scan
    who = dict(annotators)
    never = [c for c in cls.ids if all(status.get((r["scan_id"], c), UNKNOWN) == UNKNOWN for r in rows)]
    if never:
        sel_ds = sorted({r["dataset"] for r in rows})
        msgs = []
        for c in never:
            name = cls.names[cls.ids.index(c)]
            others = who.get(c) or []
            hint = f"datasets that annotate it: {', '.join(others)}" if others else "no dataset in the catalog annotates it"
            msgs.append(f"{name!r} ({c}): {hint}")
        raise DataError(
            f"class(es) annotated by none of the selected datasets ({', '.join(sel_ds)}): " + "; ".join(msgs)
            + ". Drop the class or select a dataset that annotates it."
        )
    # ---- every selected scan must be built
    croot = cat.root
    unbuilt = []
    items: list[ScanItem] = []
    for r in rows:
        img = _resolve_path(r["normalised_image"], croot)
        lab = _resolve_path(r["normalised_label"], croot)
        st = [status.get((r["scan_id"], c), UNKNOWN) for c in cls.ids]
        needs_label = any(s != UNKNOWN for s in st) and any(atoms.get((r["scan_id"], c), ([], 0))[0] for c in cls.ids)
        if img is None or not img.exists() or (needs_label and (lab is None or not lab.exists())) or not r["build_hash"]:
            unbuilt.append(r["scan_id"])
            continue
        root = Path(r["root"] or ".")
        aff = r["target_affine"]
        items.append(
            ScanItem(
                scan_id=r["scan_id"],
                dataset=r["dataset"],
                case_id=r["case_id"],
                patient_id=r["patient_id"],
                split=r["split"],
                fold=r["fold"],
                image=img,
                label=lab if lab is not None and lab.exists() else None,
                shape=tuple(int(x) for x in r["target_shape"]),
                spacing=tuple(float(x) for x in r["target_spacing"]),
                affine=[list(map(float, aff[4 * i : 4 * i + 4])) for i in range(4)],
                channels=list(r["channels"] or []),
                modalities=list(r["channel_modalities"] or []),
                build_hash=r["build_hash"],
                source_files=[str(root / p) for p in (r["image_paths"] or []) + (r["label_paths"] or [])],
                status=st,
                label_values=[atoms.get((r["scan_id"], c), ([], None))[0] for c in cls.ids],
                voxels=[atoms.get((r["scan_id"], c), ([], None))[1] for c in cls.ids],
            )
        )
    if unbuilt:
        raise DataError(
            f"{len(unbuilt)} of {len(rows)} selected scan(s) are not built (or their files are gone): "
            + ", ".join(unbuilt[:5]) + (" ..." if len(unbuilt) > 5 else "") + f"; run `satds build --catalog {cat.root}`"
        )
    return Selection(croot, cls, items, {**request, "classes": list(cls.ids)})


def _overview(con) -> str:
    """A one-line summary of what the catalog holds, for empty-selection messages."""
    ds = con.execute("SELECT dataset, count(*) FROM scans GROUP BY ALL ORDER BY 1").fetchall()
    sp = con.execute("SELECT split, count(*) FROM splits GROUP BY ALL ORDER BY 1").fetchall()
    out = "scans per dataset: " + ", ".join(f"{d} {n}" for d, n in ds)
    if sp:
        out += "; per split: " + ", ".join(f"{s} {n}" for s, n in sp)
    return out
