"""From the catalog to export cases: which scans, under which case ids, split and fold, knowing which classes.

Planning reads only the catalog (no voxels) and collects every problem it finds; loading reads one case's
images and label atoms onto the export grid. Both are shared by the nnU-Net export and the pseudo-label
merge, so the two always agree on case ids and grids.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..catalog import Catalog
from .recipe import Recipe, ResolvedRecipe

EXPORT_VERSION = "1"
_SAFE = re.compile(r"[^A-Za-z0-9.-]+")


def case_id_for(scan_id: str) -> str:
    """A file-name-safe, stable case id: ``msd_liver/liver_0`` → ``msd_liver__liver_0``.

    When the scan id holds other characters, a short hash of it is appended, so different scan ids never
    collapse into one case id.
    """
    base = "__".join(_SAFE.sub("_", p).strip("_") or "x" for p in scan_id.split("/"))
    plain = "__".join(scan_id.split("/"))
    if base != plain:
        base += "_" + hashlib.blake2b(scan_id.encode(), digest_size=3).hexdigest()
    return base


@dataclass
class Unit:
    """One exported image: one scan, or several catalog scans of the same image merged (``members``)."""

    key: str  # the primary scan id
    case_ids: list[str]  # one per channel in the per_channel view, else one
    channel_of: list[int | None]  # the channel each case id holds (None: all channels)
    members: list[dict[str, Any]]  # scan rows (with the dataset root), primary first
    split: str  # train or test (nnU-Net's two sides: the catalog's val split trains)
    group: str
    fold: int | None
    annotated: dict[str, list[str]]  # scan id → every class it contributes (first member wins a class)
    known: list[str]  # recipe classes known from GT (union over members)
    unknown: list[str]  # recipe classes not annotated
    labelled: bool = True
    side: str = "train"  # the catalog's split of the primary scan: train, val or test (the MONAI export's three)

    @property
    def datasets(self) -> list[str]:
        return [m["dataset"] for m in self.members]

    @property
    def scan_ids(self) -> list[str]:
        return [m["scan_id"] for m in self.members]


@dataclass
class ExportPlan:
    recipe: Recipe
    resolved: ResolvedRecipe
    catalog_root: str
    split_id: str | None
    units: list[Unit]
    channel_names: list[str]
    n_folds: int
    datasets: list[dict[str, Any]]  # licence information per dataset
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    pseudo_dir: str | None = None
    # what each channel holds (the recipe's ``channels``, else from the scans): the MONAI datalist's
    # ``modality``; ``channel_names`` are nnU-Net's, ``noNorm`` for the normalised source
    modalities: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def about(self) -> dict[str, str]:
        """The task's ``description``, ``reference`` and ``licence`` lines (dataset.json, the MONAI datalist)."""
        r, rr = self.recipe, self.resolved
        return {
            "description": r.description or f"satds task {r.name}: {', '.join(rr.names)} from {', '.join(r.datasets)}",
            "reference": r.reference or "; ".join(d["url"] or d["dataset"] for d in self.datasets),
            "licence": "; ".join(f"{d['dataset']}: {d['licence'] or 'unknown'}" for d in self.datasets),
        }

    def classes_from(self, unit: Unit) -> dict[str, list[str]]:
        """Member scan → the task classes it supplies (where a merged case's labels come from)."""
        return {s: [c for c in cls if c in self.resolved.value] for s, cls in unit.annotated.items()}

    def train_units(self) -> list[Unit]:
        return [u for u in self.units if u.split == "train"]

    def test_units(self) -> list[Unit]:
        return [u for u in self.units if u.split == "test"]

    def train_case_ids(self) -> list[str]:
        return [c for u in self.train_units() for c in u.case_ids]

    def splits_final(self) -> list[dict[str, list[str]]]:
        """nnU-Net's ``splits_final.json``: fold k validates on the cases whose leakage group is in fold k."""
        out = []
        for k in range(self.n_folds):
            val = sorted(c for u in self.train_units() if u.fold == k for c in u.case_ids)
            train = sorted(c for u in self.train_units() if u.fold != k for c in u.case_ids)
            out.append({"train": train, "val": val})
        return out

    def export_key(self, pseudo_stamp: str = "") -> str:
        """Changes whenever the export would differ: recipe, split, scans' generations, pseudo-labels."""
        h = hashlib.sha256()
        h.update(f"{EXPORT_VERSION}|{self.recipe.hash()}|{self.split_id}|{pseudo_stamp}".encode())
        for u in self.units:
            h.update(json.dumps([u.case_ids, u.split, u.fold, [(m["scan_id"], m["gen"]) for m in u.members]]).encode())
        return h.hexdigest()[:24]


# ---------------------------------------------------------------------- planning
def _rows(con, sql: str, params: dict | None = None) -> list[dict]:
    return con.sql(sql, params=params).to_arrow_table().to_pylist() if params else con.sql(sql).to_arrow_table().to_pylist()


#: nnU-Net's channel name for images it must not normalise again (satds's normalised source).
NO_NORM = "noNorm"


def _channel_name(mods: set[str], names: set[str]) -> str:
    """What a channel holds, from its modalities and channel names over the task's scans."""
    if mods and all(m.upper().startswith("CT") for m in mods):
        return "CT"
    if len(names) == 1:
        return next(iter(names))
    firsts = {m.split()[0] for m in mods}
    return next(iter(firsts)) if len(firsts) == 1 else "mixed"


def plan_export(catalog: Catalog, recipe: Recipe, *, pseudo_dir: str | Path | None = None, for_pseudolabel: bool = False) -> ExportPlan:
    """Everything the export will write, from the catalog alone, with every problem found.

    ``for_pseudolabel``: plan the cases that ``satds pseudolabel`` labels (the pseudo-label folder is not
    needed yet, and a class no dataset annotates is fine: a specialist predicts it).
    """
    from ..specs import get_spec

    resolved = recipe.resolve()
    problems: list[str] = []
    warnings: list[str] = []
    notes: list[str] = []
    con = catalog.connect()
    try:
        ds_rows = {r["dataset"]: r for r in _rows(con, "SELECT * FROM datasets WHERE dataset IN (SELECT unnest($d))", {"d": recipe.datasets})}
        scans = _rows(
            con,
            """SELECT s.scan_id, s.dataset, s.case_id, s.channels, s.channel_modalities, s.shape, s.affine, s.fingerprint,
                      s.normalised_image, s.normalised_label, s.target_shape, s.target_affine, s.case_files, s.gen,
                      s.label_kind, s.status, d.root
               FROM scans s JOIN datasets d USING (dataset) WHERE s.dataset IN (SELECT unnest($d)) ORDER BY s.scan_id""",
            {"d": recipe.datasets},
        )
        ann: dict[str, set[str]] = defaultdict(set)
        for r in _rows(con, "SELECT scan_id, class_id FROM annotations WHERE dataset IN (SELECT unnest($d))", {"d": recipe.datasets}):
            ann[r["scan_id"]].add(r["class_id"])
        splits = {r["scan_id"]: r for r in _rows(con, "SELECT scan_id, split, group_id, split_id FROM splits")}
        folds = {r["scan_id"]: r["fold"] for r in _rows(con, "SELECT scan_id, fold FROM folds WHERE scheme = 'cv' AND role = 'val'")}
        top = con.execute("SELECT max(fold) FROM folds WHERE scheme = 'cv'").fetchall()[0][0]
        n_folds = 0 if top is None else int(top) + 1
    finally:
        con.close()

    for d in recipe.datasets:
        if d not in ds_rows:
            try:
                get_spec(d)
                problems.append(f"dataset {d} is not in the catalog {catalog.root}: run `satds ingest {d} ROOT`")
            except Exception:
                problems.append(f"dataset {d} is neither in the catalog nor a known spec")
    licences = [
        {"dataset": d, "licence": ds_rows[d]["licence"], "redistributable": ds_rows[d]["redistributable"], "url": ds_rows[d]["url"], "title": ds_rows[d]["title"]}
        for d in recipe.datasets
        if d in ds_rows
    ]
    closed = [x for x in licences if x["redistributable"] is False]
    if closed:
        warnings.append(
            "this export contains data whose licence does not allow redistribution; keep the exported folder private: "
            + "; ".join(f"{x['dataset']} ({x['licence'] or 'licence unknown'})" for x in closed)
        )
    for d in recipe.datasets:
        if d in ds_rows and not any(s["dataset"] == d for s in scans):
            problems.append(f"dataset {d} has no scans in the catalog")

    split_ids = {splits[s["scan_id"]]["split_id"] for s in scans if s["scan_id"] in splits}
    split_id = next(iter(split_ids)) if split_ids else None
    missing_split = [s["scan_id"] for s in scans if s["scan_id"] not in splits]
    if missing_split:
        problems.append(f"{len(missing_split)} scan(s) have no split (run `satds split`): {', '.join(missing_split[:5])}" + (" ..." if len(missing_split) > 5 else ""))
    if recipe.source == "normalised":
        unbuilt = [s["scan_id"] for s in scans if not s["normalised_image"] or not Path(s["normalised_image"]).exists()]
        if unbuilt:
            problems.append(f"source: normalised but {len(unbuilt)} scan(s) are not built (run `satds build`): {', '.join(unbuilt[:5])}" + (" ..." if len(unbuilt) > 5 else ""))

    # ---- units: identical images from several datasets become one case (duplicates: merge)
    order = {d: i for i, d in enumerate(recipe.datasets)}
    scans.sort(key=lambda s: (order[s["dataset"]], s["scan_id"]))
    by_print: dict[str, list[dict]] = defaultdict(list)
    for s in scans:
        by_print[s["fingerprint"] or f"scan:{s['scan_id']}"].append(s)
    groups: list[list[dict]] = []
    for fp, members in by_print.items():
        if recipe.duplicates == "keep" or len(members) == 1:
            groups += [[m] for m in members]
            continue
        # merge only members on the primary's grid (the same voxels may carry different headers)
        primary, rest = members[0], members[1:]
        merged = [primary]
        for m in rest:
            why = _grid_differs(primary, m, recipe.source)
            if why:
                warnings.append(f"{m['scan_id']} has the same image as {primary['scan_id']} but {why}; exported as its own case")
                groups.append([m])
            else:
                merged.append(m)
        groups.append(merged)
        if len(merged) > 1:
            notes.append(f"merged identical images {', '.join(x['scan_id'] for x in merged)} into one case")

    rid = set(resolved.ids)
    units: list[Unit] = []
    for members in sorted(groups, key=lambda g: (order[g[0]["dataset"]], g[0]["scan_id"])):
        primary = members[0]
        sp = splits.get(primary["scan_id"])
        if sp is None:
            continue
        sides = {splits[m["scan_id"]]["split"] for m in members if m["scan_id"] in splits}
        if len(sides) > 1:
            problems.append(f"identical image in several splits: {', '.join(m['scan_id'] + ' (' + splits[m['scan_id']]['split'] + ')' for m in members)}")
        split = "test" if sp["split"] == "test" else "train"
        taken: dict[str, list[str]] = {}
        have: set[str] = set()
        for m in members:
            mine = sorted(ann.get(m["scan_id"], set()) - have)
            taken[m["scan_id"]] = mine
            have |= set(mine)
        labelled = bool(have) or any((m["label_kind"] or "none") != "none" for m in members)
        known = [c for c in resolved.ids if c in have]
        unknown = [c for c in resolved.ids if c not in have]
        base = case_id_for(primary["scan_id"])
        n_ch = len(primary["channels"] or [None])
        if recipe.view == "per_channel":
            case_ids = [f"{base}_c{k}" for k in range(n_ch)]
            channel_of: list[int | None] = list(range(n_ch))
        else:
            case_ids, channel_of = [base], [None]
        fold = folds.get(primary["scan_id"]) if split == "train" else None
        side = "test" if split == "test" else ("val" if sp["split"] == "val" else "train")
        u = Unit(primary["scan_id"], case_ids, channel_of, members, split, sp["group_id"], fold, taken, known, unknown, labelled, side)
        if split == "train" and not labelled:
            notes.append(f"{primary['scan_id']}: no labels; left out of training")
            continue
        if split == "train" and fold is None:
            problems.append(f"{primary['scan_id']} is in the training split but in no cross-validation fold (re-run `satds split`)")
        if split == "train" and not (rid & have) and recipe.partial_labels != "pseudo":
            notes.append(f"{primary['scan_id']}: annotates none of the task's classes; every voxel would be ignore or background")
        units.append(u)

    # ---- leakage: one group on one side
    side_of_group: dict[str, set[str]] = defaultdict(set)
    for u in units:
        side_of_group[u.group].add(u.split)
    for g, sides in side_of_group.items():
        if len(sides) > 1:
            problems.append(f"leakage group {g} has cases in both train and test (stale split? re-run `satds split`)")
    fold_of_group: dict[str, set[int]] = defaultdict(set)
    for u in units:
        if u.fold is not None:
            fold_of_group[u.group].add(u.fold)
    for g, fs in fold_of_group.items():
        if len(fs) > 1:
            problems.append(f"leakage group {g} is spread over folds {sorted(fs)}")

    # ---- case ids
    seen: dict[str, str] = {}
    for u in units:
        for c in u.case_ids:
            if c in seen:
                problems.append(f"case id {c} is used by {seen[c]} and {u.key}")
            seen[c] = u.key

    train = [u for u in units if u.split == "train"]
    if scans and not train:
        problems.append("no training cases: every scan is in the test split or unlabelled")

    # ---- classes: each must be learnable from somewhere
    if recipe.partial_labels != "pseudo" and not for_pseudolabel:
        for c in resolved.ids:
            if train and not any(c in u.known for u in train):
                problems.append(f"class {c} is annotated by no training scan of {', '.join(recipe.datasets)}; the model could never learn it")
    if recipe.partial_labels == "background" and not for_pseudolabel:
        partial = [u for u in train if u.unknown]
        for u in partial[:10]:
            problems.append(f"partial_labels: background needs every class annotated, but {u.key} does not annotate {', '.join(u.unknown)} (use ignore, marginal or pseudo)")
        if len(partial) > 10:
            problems.append(f"... and {len(partial) - 10} more scans with unannotated classes")

    # ---- channels
    n_channels = {len(u.members[0]["channels"] or [None]) for u in units}
    described: list[str] = []
    if recipe.view == "multichannel":
        if len(n_channels) > 1:
            problems.append(f"scans have different channel counts {sorted(n_channels)}; use view: per_channel or fewer datasets")
        n = max(n_channels) if n_channels else 1
        if recipe.channels and len(recipe.channels) != n:
            problems.append(f"channels lists {len(recipe.channels)} name(s) but the scans have {n} channel(s)")
        for k in range(n):
            mods = {u.members[0]["channel_modalities"][k] for u in units if len(u.members[0]["channel_modalities"] or []) > k}
            chans = {u.members[0]["channels"][k] for u in units if len(u.members[0]["channels"] or []) > k}
            described.append(_channel_name(mods, chans))
    else:
        if recipe.channels and len(recipe.channels) != 1:
            problems.append("view: per_channel makes single-channel cases; give one channel name")
        described = [_channel_name({m for u in units for m in (u.members[0]["channel_modalities"] or [])}, set())]
    modalities = list(recipe.channels) if recipe.channels else described
    names = list(recipe.channels) if recipe.channels else ([NO_NORM] * len(described) if recipe.source == "normalised" else described)

    # ---- folds
    if train:
        empty = [k for k in range(n_folds) if not any(u.fold == k for u in train)]
        if empty:
            warnings.append(f"cross-validation fold(s) {empty} hold no case of this task (train another fold)")

    plan = ExportPlan(recipe, resolved, str(catalog.root), split_id, units, names, n_folds, licences, problems, warnings, notes, modalities=modalities)
    if recipe.partial_labels == "pseudo" and not for_pseudolabel:
        _check_pseudo(plan, pseudo_dir or recipe.pseudo_labels)
    return plan


def _grid_differs(a: dict, b: dict, source: str) -> str | None:
    from ..geometry import grid_mismatch

    if source == "normalised":
        sa, aa, sb, ab = a["target_shape"], a["target_affine"], b["target_shape"], b["target_affine"]
    else:
        sa, aa, sb, ab = a["shape"], a["affine"], b["shape"], b["affine"]
    if not sa or not sb or not aa or not ab:
        return "its grid is not recorded"
    why = grid_mismatch(sa, np.asarray(aa).reshape(4, 4), sb, np.asarray(ab).reshape(4, 4))
    return f"its grid differs ({why})" if why else None


def _check_pseudo(plan: ExportPlan, pseudo_dir: str | Path | None) -> None:
    from .pseudofiles import PSEUDO_JSON, read_pseudo_index

    if not pseudo_dir:
        plan.problems.append("partial_labels: pseudo needs a pseudo-label folder (recipe pseudo_labels or --pseudo DIR, made by `satds pseudolabel`)")
        return
    d = Path(pseudo_dir)
    if not (d / PSEUDO_JSON).is_file():
        plan.problems.append(f"pseudo-label folder {d} has no {PSEUDO_JSON} (make it with `satds pseudolabel`)")
        return
    idx = read_pseudo_index(d)
    if idx["classes"] != plan.resolved.ids:
        plan.problems.append(f"pseudo-labels in {d} were made for classes {idx['classes']}, not this task's {plan.resolved.ids}")
    missing = [c for c in plan.train_case_ids() if c not in idx["cases"]]
    if missing:
        plan.problems.append(f"{len(missing)} training case(s) have no pseudo-label in {d}: {', '.join(missing[:5])}" + (" ..." if len(missing) > 5 else ""))
    plan.pseudo_dir = str(d.resolve())


# ---------------------------------------------------------------------- loading one unit
@dataclass
class UnitData:
    """One unit on the export grid (RAS voxel order): channel arrays, the merged atom map, what is annotated."""

    images: list[np.ndarray]
    affine: np.ndarray
    atoms: np.ndarray | None  # atom index per voxel
    atom_sets: list[frozenset[str]]
    annotated: frozenset[str]  # every class annotated (union over members)
    modalities: list[str]
    normalised: bool
    notes: list[str] = field(default_factory=list)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.images[0].shape[:3])  # type: ignore[return-value]

    def channel_problems(self, key: str) -> list[str]:
        """Why the unit's channels cannot be exported: a channel off channel 0's grid, NaN/inf voxels."""
        out = []
        for k, img in enumerate(self.images):
            if tuple(img.shape[:3]) != self.shape:
                out.append(f"{key}: channel {k}: shape {tuple(img.shape)} differs from the image's {self.shape}")
            elif np.issubdtype(img.dtype, np.floating) and not np.isfinite(img).all():
                out.append(f"{key}: channel {k} holds NaN/inf voxels")
        return out


def job_problem(key: str, e: BaseException) -> str:
    """The problem line of a failed job: ``key: message`` for a case error, else with the exception's type."""
    from ..errors import CaseError

    return f"{key}: {e}" if isinstance(e, CaseError) else f"{key}: {type(e).__name__}: {e}"


def unit_job(fn):
    """A per-unit export job (run in a worker; ``job.key`` names its case): a bad case becomes a problem line
    naming it, so the export reports every problem at once and writes nothing; any other exception is a bug
    and leaves the worker (:func:`run_unit_jobs` reports it with its type)."""
    import functools

    from ..errors import CaseError

    @functools.wraps(fn)
    def job(j):
        try:
            return fn(j)
        except (CaseError, OSError, ValueError) as e:
            return {"problems": [job_problem(j.key, e)]}

    return job


def run_unit_jobs(fn, jobs: list, workers: int | None = 1, progress: Callable[[int, int], None] | None = None) -> tuple[dict[str, dict], list[str]]:
    """Run ``fn`` over ``jobs`` on satds's process pool; returns each clean job's result by ``job.key``, and
    every problem (the jobs' own, and one line per job that failed, e.g. a worker the system killed)."""
    from .. import parallel

    by_key: dict[str, dict] = {}
    problems: list[str] = []
    for done, (job, ok, res) in enumerate(parallel.run(fn, jobs, workers=workers or 1), start=1):
        if progress:
            progress(done, len(jobs))
        if not ok:
            problems.append(job_problem(job.key, res))
        elif res["problems"]:
            problems += res["problems"]
        else:
            by_key[job.key] = res
    return by_key, problems


def _load_member(row: dict, source: str, with_images: bool):
    """(images, affine, atom array, atom sets, annotated classes) of one scan on its RAS grid."""
    from ..geometry import reorient
    from ..io import read_volume

    if source == "normalised":
        images: list[np.ndarray] = []
        vol = read_volume(row["normalised_image"], ndim=None)
        affine = vol.affine
        if with_images:
            arr = vol.array
            images = [arr] if arr.ndim == 3 else [arr[..., k] for k in range(arr.shape[3])]
            images = [reorient(a, affine, "RAS")[0] for a in images]
        lab = atoms = None
        annotated: frozenset[str] = frozenset()
        if row["normalised_label"]:
            lvol = read_volume(row["normalised_label"])
            meta = json.loads((Path(row["normalised_label"]).parent / "meta.json").read_text())
            atoms = [frozenset(a) for a in meta["atoms"]]
            annotated = frozenset(r["class_id"] for r in meta["annotations"])
            lab = reorient(lvol.array, lvol.affine, "RAS")[0]
        _, affine = reorient(vol.array, affine, "RAS")
        return images, affine, lab, atoms, annotated
    from ..build.task import onto_grid
    from ..ingest.discover import CaseFiles
    from ..ingest.engine import dataset_classes
    from ..ingest.read import load_channels, load_labels
    from ..ontology import load_ontology
    from ..specs import get_spec

    spec = get_spec(row["dataset"])
    case = CaseFiles(**json.loads(row["case_files"]))
    root = Path(row["root"])
    channels = load_channels(spec, case, root)
    ref = channels[0]
    images = [reorient(onto_grid(v, ref) if i else v.array, ref.affine, "RAS")[0] for i, v in enumerate(channels)] if with_images else []
    _, affine = reorient(ref.array, ref.affine, "RAS")
    labels = load_labels(spec, dataset_classes(spec.key, str(root), case.arrangement), load_ontology(), case, root, ref)
    if labels is None:
        return images, affine, None, None, frozenset()
    lab = reorient(labels.array, ref.affine, "RAS")[0]
    return images, affine, lab, list(labels.atoms), frozenset(labels.annotated)


def load_unit(unit: Unit, source: str, *, with_images: bool = True) -> UnitData:
    """Read a unit's images (primary member) and merge its members' labels onto the primary's grid."""
    from ..errors import LabelError
    from ..geometry import align_to
    from ..labels import AtomLabels

    primary = unit.members[0]
    images, affine, lab, atoms, annotated = _load_member(primary, source, with_images)
    notes: list[str] = []
    take0 = set(unit.annotated.get(primary["scan_id"], []))
    if take0 - annotated:
        raise LabelError(f"the catalog lists classes {sorted(take0 - annotated)} for {primary['scan_id']} that its labels no longer hold (re-run ingest/build)")
    if len(unit.members) == 1:
        return UnitData(images, affine, lab, atoms or [frozenset()], frozenset(take0), list(primary["channel_modalities"] or []), source == "normalised", notes)
    if lab is None:
        raise LabelError(f"{primary['scan_id']}: merged case without labels")
    merged = AtomLabels(np.zeros(lab.shape, dtype=np.uint16), [frozenset()])
    all_taken: set[str] = set()
    for k, m in enumerate(unit.members):
        take = set(unit.annotated.get(m["scan_id"], []))
        if not take:
            continue
        if k == 0:
            m_lab, m_atoms = lab, atoms
        else:
            _, m_aff, m_lab, m_atoms, m_ann = _load_member(m, source, False)
            if m_lab is None or take - m_ann:
                raise LabelError(f"the catalog lists classes {sorted(take - m_ann)} for {m['scan_id']} that its labels no longer hold")
            m_lab = align_to(m_lab, m_aff, lab.shape, affine)
        for c in sorted(take):
            lut = np.array([c in a for a in m_atoms], dtype=bool)
            mask = lut[m_lab]
            merged.add_mask(mask, c)
        all_taken |= take
    return UnitData(images, affine, merged.array, list(merged.atoms), frozenset(all_taken), list(primary["channel_modalities"] or []), source == "normalised", notes)
