"""Read one scan's channels and labels (shared by ingest and build)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import CaseError, GeometryError, LabelError, ReadError
from ..geometry import affine_from_axcodes, align_to
from ..io import Volume, read_volume
from ..labels import AtomLabels, DatasetClasses, LabelPiece, compose
from ..labels.laterality import midline_from_image
from ..ontology import Ontology
from ..specs.model import DatasetSpec, Layout
from .discover import CaseFiles
from .hooks import get_hook


def layout_of(spec: DatasetSpec, case: CaseFiles) -> Layout:
    return next(lay for lay in spec.layouts_of(case.arrangement) if lay.name == case.layout)


def channel_specs(spec: DatasetSpec, case: CaseFiles) -> list[tuple[str, str]]:
    """(name, modality string) per channel: ``CT``, ``MRI T2``, ``PET SUV``."""
    lay = layout_of(spec, case)
    if not lay.channels:
        return [(spec.modality, spec.modality)]
    return [(c.name, f"{c.modality} {c.sequence}" if c.sequence else c.modality) for c in lay.channels]


def with_default_geometry(vol: Volume, lay: Layout) -> Volume:
    """A volume read without geometry (raw ``.npy``) placed by the layout's ``default_geometry``."""
    if vol.meta.get("geometry") == "missing" and lay.default_geometry is not None:
        g = lay.default_geometry
        return Volume(vol.array, affine_from_axcodes(g.orientation, g.spacing), {**vol.meta, "geometry": "default"})
    return vol


def load_channels(spec: DatasetSpec, case: CaseFiles, root: Path) -> list[Volume]:
    """The scan's channels as volumes; channel 0 defines the scan's grid."""
    lay = layout_of(spec, case)
    hook = get_hook(lay.hook, "read_image")
    if hook:
        return [shift_intensity(v, lay.intensity_offset) for v in hook(case, spec, root)]
    cache: dict[str, Volume] = {}
    out = []
    for path, idx in zip(case.images, case.channel_index):
        if path not in cache:
            try:
                cache[path] = with_default_geometry(read_volume(root / path, ndim=None, series_uid=case.extra.get("series_uid")), lay)
            except CaseError as e:
                raise e.relative_to(root)  # failures name files relative to the dataset root
        vol = cache[path]
        if vol.meta.get("nonfinite"):
            raise ReadError(f"image holds {vol.meta['nonfinite']} NaN/inf voxels", file=path)
        if idx is not None:
            if vol.array.ndim != 4 or idx >= vol.array.shape[3]:
                raise GeometryError(f"channel index {idx} needs a 4D image; found shape {vol.shape}", file=path)
            vol = Volume(vol.array[..., idx], vol.affine, {**vol.meta, "channel_index": idx})
        elif vol.array.ndim != 3:
            raise GeometryError(f"expected a 3D image, found shape {vol.shape} (a 4D file needs channel indices in the spec)", file=path)
        out.append(shift_intensity(vol, lay.intensity_offset))
    return out


def shift_intensity(vol: Volume, offset: float) -> Volume:
    """``vol`` with ``offset`` added to every voxel (the layout's ``intensity_offset``; 0 returns it as is).

    Integer data stays integer (int32, so uint16 storage cannot wrap); anything else becomes float32.
    """
    if not offset:
        return vol
    a = vol.array
    if np.issubdtype(a.dtype, np.integer) and float(offset).is_integer():
        shifted = a.astype(np.int32) + np.int32(offset)
    else:
        shifted = a.astype(np.float32) + np.float32(offset)
    return Volume(shifted, vol.affine, {**vol.meta, "intensity_offset": float(offset)})


def header_channels(spec: DatasetSpec, case: CaseFiles, root: Path) -> list[Volume] | None:
    """Channel 0 as a voxel-less Volume (geometry from the header only), or None when the format needs a full read.

    For ``satds ingest --headers-only``: labels are still read (they give the statistics), images are not.
    """
    from ..io import file_kind, read_header

    lay = layout_of(spec, case)
    path = root / case.images[0]
    if lay.hook or lay.default_geometry or lay.intensity_offset or file_kind(path) not in ("nifti", "itk"):
        return None
    shape, affine, dtype = read_header(path)
    idx = case.channel_index[0]
    if len(shape) == 4 and idx is not None:
        shape = shape[:3]
    if len(shape) != 3:
        return None  # let the full reader give its error
    empty = np.broadcast_to(np.zeros((), dtype=np.dtype(dtype) if dtype in np.sctypeDict else np.float32), shape)
    return [Volume(empty, affine, {"format": "header", "path": str(path), "dtype": dtype})]


def _label_pieces(spec: DatasetSpec, case: CaseFiles, root: Path, ref: Volume) -> list[LabelPiece]:
    lay = layout_of(spec, case)
    hook = get_hook(lay.hook, "read_labels")
    if hook:
        return hook(case, spec, root, ref)
    items: list[tuple[str, str | None]] = []
    if case.label:
        items.append((case.label, None))
    items += [(p, k) for k, p in case.label_files.items()]
    pieces = []
    for path, key in items:
        vol = with_default_geometry(read_volume(root / path, ndim=None), lay)
        arr = vol.array
        if arr.ndim == 4 and key is None and vol.meta.get("segments"):
            # A layered Slicer segmentation: each layer is its own label map.
            for layer in range(arr.shape[3]):
                pieces.append(LabelPiece(align_or_fail(arr[..., layer], vol.affine, ref, path), path))
            continue
        if arr.ndim != 3:
            raise GeometryError(f"expected a 3D label map, found shape {vol.shape}", file=path)
        pieces.append(LabelPiece(align_or_fail(arr, vol.affine, ref, path), path, key))
    return pieces


def align_or_fail(arr: np.ndarray, affine: np.ndarray, ref: Volume, path: str) -> np.ndarray:
    """A mask on its image's grid. For a DICOM series resampled for its gantry tilt, a mask on the grid
    of the stored (sheared) slices follows the image's resampling; any other grid is an error."""
    from ..io.dicom_geometry import follow_tilt, stored_grid

    try:
        return align_to(arr, affine, ref.spatial_shape, ref.affine)
    except GeometryError as e:
        why = e.message.split(": ", 1)[-1]
    tilt = ref.meta.get("gantry_tilt_deg")
    if tilt is not None:
        shape, sheared = stored_grid(ref)
        try:
            return follow_tilt(align_to(arr, affine, shape, sheared), ref)
        except GeometryError:
            why += (
                f"; the image is a DICOM series with a gantry tilt of {tilt:g} degrees, resampled onto an orthogonal"
                " grid as dcm2niix does, and the mask is on neither that grid nor the series' own sheared grid"
            )
    raise GeometryError(f"mask is not on its image's grid: {why}", file=path) from None


def midline(spec: DatasetSpec, ref: Volume) -> float | None:
    """World x of the body centre, for splitting bilateral classes (None when the image is blank)."""
    arr = ref.array
    if spec.modality == "CT":
        m = midline_from_image(arr, ref.affine, -500.0)
    else:
        hi = float(np.percentile(arr, 99)) if arr.size else 0.0
        m = midline_from_image(arr, ref.affine, 0.1 * hi) if hi > 0 else None
    return m


def load_labels(
    spec: DatasetSpec, classes: DatasetClasses, onto: Ontology, case: CaseFiles, root: Path, ref: Volume
) -> AtomLabels | None:
    """The scan's classes as an atom map on the reference channel's grid (None when unlabelled)."""
    pieces = _label_pieces(spec, case, root, ref)
    if not pieces:
        return None
    missing = set(case.missing_label_keys) if layout_of(spec, case).missing_class_files == "unknown" else set()
    mid = midline(spec, ref) if classes.lateral else None
    try:
        return compose(pieces, classes, onto, ref.spatial_shape, ref.affine, midline_x=mid, missing=missing)
    except (LabelError, CaseError):
        raise
    except OverflowError as e:
        raise LabelError(str(e)) from e


def fingerprint(channels: list[Volume]) -> str:
    """Content hash per channel of the voxels in canonical (RAS) order as float32.

    Independent of file format, dtype and axis order, so the same image in two releases gets the same
    hash. Several channels give a sorted, comma-separated list: scans sharing any channel are grouped.
    """
    import hashlib

    from ..geometry import reorient

    out = []
    for v in channels:
        arr, _ = reorient(v.array, v.affine, "RAS")
        h = hashlib.blake2b(digest_size=16)
        h.update(str(arr.shape[:3]).encode())
        # Chunk along the last axis to bound the float32 copy.
        for k in range(0, arr.shape[2], 32):
            h.update(np.ascontiguousarray(arr[:, :, k : k + 32], dtype=np.float32).tobytes())
        out.append(h.hexdigest())
    return ",".join(sorted(set(out)))
