"""Tiny but faithful copies of a release's native layout, written from its spec.

The spec's layout says where files go, its labels say which values or mask files exist, and its
``phantom`` block says what the release looks like on disk (orientation, dtype, slice-first arrays,
extra files such as ``dataset.json``, macOS junk). Anatomy is schematic but physical: a body ellipsoid,
one blob per source label, left structures on the patient's left (from the affine), lesions inside
their organ, bilateral classes (``lateralize``) as two blobs, one per side.
"""

from __future__ import annotations

import csv
import io
import json
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..ingest.patterns import fill
from ..ontology import Ontology, load_ontology
from ..specs import DatasetSpec, get_spec
from ..specs.model import NNUNET, NNUNET_ENDING, RELEASE, Layout
from .writers import write_dicom_series, write_volume

APPLE_DOUBLE = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        "


@dataclass
class Body:
    """A schematic patient in canonical RAS voxel order on the phantom grid."""

    shape: tuple[int, int, int]
    affine: np.ndarray
    image: np.ndarray
    blobs: dict[str, np.ndarray] = field(default_factory=dict)  # source key → mask (RAS order)


def ras_affine(shape, spacing) -> np.ndarray:
    aff = np.diag([*spacing, 1.0])
    aff[:3, 3] = -(np.asarray(shape) - 1) / 2.0 * np.asarray(spacing)  # centred on the world origin
    return aff


def _ellipsoid(shape, centre, radii) -> np.ndarray:
    g = np.ogrid[tuple(slice(0, s) for s in shape)]
    return sum(((g[i] - centre[i]) / max(radii[i], 0.5)) ** 2 for i in range(3)) <= 1.0


def _cells(shape, size: int) -> list[tuple[int, int, int]]:
    """Centres of a regular grid of cells inside the body (RAS voxel order)."""
    out = []
    for i in range(size // 2 + 2, shape[0] - size // 2 - 2, size):
        for j in range(size // 2 + 2, shape[1] - size // 2 - 2, size):
            for k in range(size // 2 + 1, shape[2] - size // 2 - 1, size):
                c = np.array([i, j, k])
                # The whole blob (radius about size / 2) must lie inside the body ellipsoid.
                if (((c - (np.asarray(shape) - 1) / 2) / np.maximum(np.asarray(shape) / 2.15 - size / 2.0 - 0.5, 1.0)) ** 2).sum() <= 1:
                    out.append((i, j, k))
    return out


def make_body(spec: DatasetSpec, onto: Ontology, case_caps: dict[str, str], seed: int, absent: set[str]) -> Body:
    """Draw the anatomy for one case: image intensities and one mask per painted source key."""
    ph = spec.phantom
    shape = tuple(int(s) for s in ph.shape)
    # Seeded by dataset and case: two releases' phantoms never share an image by accident (a shared image
    # would be a real leak that the split must group).
    rng = np.random.default_rng([seed, zlib.crc32(spec.key.encode())])
    affine = ras_affine(shape, ph.spacing)
    modality = spec.modality
    body = _ellipsoid(shape, (np.asarray(shape) - 1) / 2, np.asarray(shape) / 2.15)
    if modality == "CT":
        image = np.where(body, 40.0, -1000.0) + rng.normal(0, 8, shape)
    else:
        image = np.where(body, 300.0, 0.0) + np.abs(rng.normal(0, 10, shape)) * body
    entries = [e for e in spec.labels if e.classes]
    lateral = {onto.resolve(n).id for n in spec.lateralize}
    organs = {e_cls for e in entries for e_cls in (onto.resolve(c).id for c in e.classes) if onto[e_cls].kind == "anatomy"}
    # Organs first, lesions after (painted inside their organ so a label map keeps both).
    def is_lesion_inside(e) -> str | None:
        for c in e.classes:
            con = onto.resolve(c)
            if con.kind == "lesion" and con.located_in in organs:
                return con.located_in
        return None

    # The largest cell size that still fits every blob (bilateral classes need two cells).
    need = len(entries) + len(lateral) + 2
    size = 8
    while size > 3 and len(_cells(shape, size)) < 2 * need:
        size -= 1
    cells = _cells(shape, size)
    mid = (shape[0] - 1) / 2.0
    left_cells = [c for c in cells if c[0] < mid - 1]
    right_cells = [c for c in cells if c[0] > mid + 1]
    centre_cells = sorted(cells, key=lambda c: abs(c[0] - mid))
    used: set[tuple[int, int, int]] = set()

    def take(pool):
        for c in pool:
            if c not in used:
                used.add(c)
                return c
        raise ValueError(f"{spec.key}: phantom grid too small for {len(entries)} labels; enlarge phantom.shape")

    organ_blob: dict[str, list[np.ndarray]] = {}
    lesion_count: dict[str, int] = {}
    blobs: dict[str, np.ndarray] = {}
    r = max(1.0, size / 2.0 - 0.6)
    for e in sorted(entries, key=lambda e: is_lesion_inside(e) is not None):
        key = str(e.value)
        if key in absent:
            continue
        ids = [onto.resolve(c).id for c in e.classes]
        sides = {onto[c].laterality for c in ids} - {None}
        host = is_lesion_inside(e)
        mask = np.zeros(shape, dtype=bool)
        if host and host in organ_blob:
            # A small lesion inside the host organ, at its own spot (leaves host voxels around it).
            cen, rad = organ_blob[host][0]
            n_in = lesion_count.get(host, 0)
            lesion_count[host] = n_in + 1
            shift = np.array([(-1) ** n_in * rad[0] / 2.5, 0.0, (n_in // 2) * rad[2] / 2.5])
            mask |= _ellipsoid(shape, cen + shift, np.maximum(rad / 3.0, 0.6))
        else:
            centres = []
            if any(c in lateral for c in ids):
                centres = [take(left_cells), take(right_cells)]
            elif "left" in sides:
                centres = [take(left_cells)]
            elif "right" in sides:
                centres = [take(right_cells)]
            else:
                centres = [take(centre_cells)]
            for cen in centres:
                jitter = rng.uniform(-0.3, 0.3, 3)
                rad = np.array([r, r, r]) * rng.uniform(0.85, 1.0, 3)
                cen = np.asarray(cen, dtype=float) + jitter
                mask |= _ellipsoid(shape, cen, rad)
                for c in ids:
                    organ_blob.setdefault(c, []).append((cen, rad))
        blobs[key] = mask
        bump = {"CT": 80.0, "MRI": 150.0, "PET": 2000.0}[modality] * (1 + (hash(key) % 5) / 5)
        image[mask] += bump
    return Body(shape, affine, image.astype(np.float32), blobs)


def to_file_orientation(array: np.ndarray, affine: np.ndarray, codes: str, slice_first: bool) -> tuple[np.ndarray, np.ndarray]:
    """Reorient a RAS array to the release's axis codes (and slice-first order) with a matching affine."""
    from ..geometry import reorient

    arr, aff = reorient(array, affine, codes)
    if slice_first:
        perm = (2, 1, 0) + tuple(range(3, arr.ndim))
        arr = np.transpose(arr, perm)
        p = np.eye(4)
        p[:3, :3] = np.eye(3)[:, [2, 1, 0]]
        aff = aff @ p
    return np.ascontiguousarray(arr) if arr.ndim == 3 else arr, aff


def _cast(array: np.ndarray, dtype: str) -> np.ndarray:
    dt = np.dtype(dtype)
    if np.issubdtype(dt, np.integer):
        info = np.iinfo(dt)
        return np.clip(np.rint(array), info.min, info.max).astype(dt)
    return array.astype(dt)


def _write_extra(path: Path, content: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        path.write_text(content)
    elif path.suffix == ".json":
        path.write_text(json.dumps(content, indent=2))
    elif path.suffix == ".pkl" and isinstance(content, list):
        # An nnU-Net v1 splits_final.pkl: folds as OrderedDicts of numpy string arrays, as nnU-Net v1 saves them.
        import collections
        import pickle

        folds = [collections.OrderedDict((k, np.array(v)) for k, v in fold.items()) for fold in content]
        path.write_bytes(pickle.dumps(folds, protocol=3))
    elif path.suffix in (".csv", ".tsv") and isinstance(content, list):
        buf = io.StringIO()
        sep = ";" if path.name == "meta.csv" and content and content[0].get("_sep") == ";" else ("\t" if path.suffix == ".tsv" else ",")
        rows = [{k: v for k, v in r.items() if k != "_sep"} for r in content]
        w = csv.DictWriter(buf, fieldnames=list(rows[0]), delimiter=sep)
        w.writeheader()
        w.writerows(rows)
        path.write_text(buf.getvalue())
    else:
        import yaml

        path.write_text(yaml.safe_dump(content))


def concrete(template: str, caps: dict[str, str]) -> str:
    """A path for a template with captures filled; search wildcards become the simplest match (``**/``: none)."""
    return fill(template.replace("**/", "").replace("*", "").replace("?", "x"), caps)


def write_case(
    spec: DatasetSpec, layout: Layout, root: Path, caps: dict[str, str], body: Body, onto: Ontology, values: dict[str, int] | None = None
) -> None:
    """Write one case's image(s) and label(s) at the paths the layout expects.

    A phantom case may give ``_image`` / ``_label``: the paths to write when the layout's templates are
    searches (``**/``) that a real release resolves in several ways (e.g. an NBIA DICOM folder name).
    ``values`` maps label keys to the values of a label map written for a spec of per-class files (an
    nnU-Net copy).
    """
    ph = spec.phantom
    caps = dict(caps)
    image_override = caps.pop("_image", None)
    label_override = caps.pop("_label", None)
    caps.setdefault("path", concrete(layout.match, caps))
    for name, tpl in layout.vars.items():
        caps.setdefault(name, fill(tpl, caps))
    image_rel = image_override or concrete(layout.image or layout.match, caps)
    # Channels: the main image (3D, or 4D when channels index into it) and any per-channel files.
    chan = layout.channels or []
    indexed = [c for c in chan if c.index is not None and not c.file]
    # Stored values: physical values minus the layout's intensity offset (KiPA22 stores HU + 1024).
    stored = body.image - np.float32(layout.intensity_offset)

    def variant(i: int) -> np.ndarray:
        return stored if i == 0 else stored * (1.0 + 0.25 * i) + 5 * i

    if layout.image_is_dicom:
        arr, aff = to_file_orientation(stored, body.affine, ph.orientation, False)
        write_dicom_series(root / image_rel, arr, aff, modality="CT" if spec.modality == "CT" else "MR", patient_id=caps.get("patient", caps.get("case", "ANON")), name_pattern=ph.dicom_name)
    elif indexed:
        stack = np.stack([variant(c.index) for c in sorted(indexed, key=lambda c: c.index)], axis=-1)
        arr, aff = to_file_orientation(stack, body.affine, ph.orientation, ph.slice_first)
        write_volume(root / image_rel, _cast(arr, ph.dtype), aff)
    elif not chan or any(c.file is None for c in chan):
        arr, aff = to_file_orientation(stored, body.affine, ph.orientation, ph.slice_first)
        write_volume(root / image_rel, _cast(arr, ph.dtype), aff)
    for i, c in enumerate(chan):
        if c.file:
            arr, aff = to_file_orientation(variant(i), body.affine, ph.orientation, ph.slice_first)
            write_volume(root / concrete(c.file, caps), _cast(arr, ph.dtype), aff)
    # Labels (none for a case the release ships without them).
    if caps.get("case") in ph.unlabelled:
        return
    if layout.label:
        lab = np.zeros(body.shape, dtype=np.int64)
        # Organs first then lesions: later blobs overwrite, as a release's label map would.
        for key, mask in body.blobs.items():
            v = next((e.value for e in spec.labels if str(e.value) == key), key)
            lab[mask] = values[key] if values is not None else 1 if v == "nonzero" else int(v)
        arr, aff = to_file_orientation(lab, body.affine, ph.orientation, ph.slice_first)
        write_volume(root / (label_override or concrete(layout.label, caps)), _cast(arr, ph.label_dtype), aff)
    elif layout.label_files:
        for e in spec.labels:
            key = str(e.value)
            mask = body.blobs.get(key)
            if mask is None and key in ph.absent.get(caps.get("case", ""), []):
                continue  # the release lacks this file for this case
            mask = np.zeros(body.shape, dtype=bool) if mask is None else mask
            arr, aff = to_file_orientation(mask.astype(np.uint8), body.affine, ph.orientation, ph.slice_first)
            write_volume(root / fill(layout.label_files, {**caps, "name": key}), _cast(arr, ph.label_dtype), aff)


def arrangement_case(spec: DatasetSpec, caps: dict[str, str], arrangement: str = RELEASE) -> tuple[Layout, dict[str, str]]:
    """The layout a phantom case is written with in one arrangement, and its captures there.

    Cases name their layout (``_layout``, default: the first); an alternative arrangement uses its layout
    of the same name (or its first). The release-only path overrides (``_image``, ``_label``, ``path``)
    are dropped there: the arrangement's own templates place the files.
    """
    caps = dict(caps)
    layout_name = caps.pop("_layout", spec.layout[0].name)
    layouts = spec.layouts_of(arrangement)
    if arrangement != RELEASE:
        for k in ("_image", "_label", "path"):
            caps.pop(k, None)
    if arrangement == NNUNET and spec.nnunet is not None:
        caps[NNUNET_ENDING] = ".nii.gz"
    # An nnU-Net folder may merge several of the publisher's folders into one layout ("train+validation").
    layout = next((lay for lay in layouts if lay.name == layout_name or layout_name in lay.name.split("+")), None)
    if layout is None:
        if arrangement == RELEASE or len(layouts) > 1:
            raise ValueError(f"{spec.key}: phantom case names layout {layout_name!r}, which arrangement {arrangement!r} lacks")
        layout = layouts[0]
    return layout, caps


def generate(key: str, root: str | Path, *, seed: int = 0, arrangement: str = RELEASE) -> Path:
    """Write the phantom release of dataset ``key`` under ``root`` (in one of its arrangements); returns ``root``.

    Every arrangement gets the same cases with the same anatomy (the body depends on the dataset, the case
    and the seed only), so ingesting any of them must give the same catalog rows.
    """
    spec = get_spec(key)
    onto = load_ontology()
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    from . import hooks as phantom_hooks

    nnunet = arrangement == NNUNET and spec.nnunet is not None
    writer = phantom_hooks.get(spec.phantom.hook) if spec.phantom.hook and not nnunet else None
    values = label_values(spec, arrangement)
    for n, raw in enumerate(spec.phantom.cases):
        layout, caps = arrangement_case(spec, raw, arrangement)
        absent = set(spec.phantom.absent.get(caps.get("case", ""), []))
        body = make_body(spec, onto, caps, seed + n, absent)
        if writer:
            writer(spec, layout, root, caps, body, onto)
        else:
            write_case(spec, layout, root, caps, body, onto, values)
    for rel, content in extra_files(spec, arrangement, onto).items():
        _write_extra(root / rel, content)
    for rel in spec.phantom.junk if arrangement == RELEASE else []:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(APPLE_DOUBLE if p.name.startswith("._") else b"")
    return root


def extra_files(spec: DatasetSpec, arrangement: str, onto: Ontology) -> dict[str, Any]:
    """The files besides the scans that a copy in ``arrangement`` carries (dataset.json, meta.csv, ...)."""
    if arrangement == NNUNET and spec.nnunet is not None:
        return {"dataset.json": nnunet_dataset_json(spec, onto)}
    alt = spec.arrangement(arrangement)
    return alt.phantom_files if alt is not None and alt.phantom_files is not None else spec.phantom.files


def label_values(spec: DatasetSpec, arrangement: str) -> dict[str, int] | None:
    """Label key → value of the label maps a copy in ``arrangement`` writes (None: the spec's own values)."""
    return nnunet_values(spec) if arrangement == NNUNET and spec.nnunet is not None else None


# ---------------------------------------------------------------------- nnU-Net copies
def nnunet_values(spec: DatasetSpec) -> dict[str, int]:
    """Label key → value in an nnU-Net copy's label maps: a label map's own values; per-class files numbered
    1.. in the spec's order (as TotalSegmentator's conversion numbers its class files)."""
    if spec.label_kind == "class_files":
        return {str(e.value): i for i, e in enumerate(spec.labels, start=1)}
    return {str(e.value): 1 if e.value == "nonzero" else int(e.value) for e in spec.labels}


def nnunet_name(spec: DatasetSpec, onto: Ontology, entry) -> str:
    """The name an nnU-Net conversion gives a label: the release's own name, a class file's name, else the
    ontology's name of its one class (or the value itself)."""
    if entry.source:
        return entry.source
    if spec.label_kind == "class_files" or len(entry.classes) != 1:
        return str(entry.value)
    return onto.resolve(entry.classes[0]).name


def nnunet_dataset_json(spec: DatasetSpec, onto: Ontology) -> dict:
    """dataset.json as nnU-Net v2's conversions write it: channel_names, labels {name: value}, file_ending."""
    values = nnunet_values(spec)
    lay = spec.layout[0]
    channels = [c.name for c in lay.channels] or [spec.modality]
    labels = {"background": 0}
    for e in spec.labels:
        labels[nnunet_name(spec, onto, e)] = values[str(e.value)]
    return {
        "name": spec.key,
        "channel_names": {str(i): n for i, n in enumerate(channels)},
        "labels": labels,
        "numTraining": len(spec.phantom.cases),
        "file_ending": ".nii.gz",
    }
