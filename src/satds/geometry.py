"""Pure geometry on ``(array, affine)``: orientation, grid identity, respacing grids, laterality.

Everything here works in RAS+ world millimetres (see :class:`satds.io.Volume`) and never moves data by
array index alone: two arrays are combined only after their affines say where each voxel lies.
"""

from __future__ import annotations

from dataclasses import dataclass

import nibabel.orientations as nio
import numpy as np

from .errors import GeometryError

#: Grid identity tolerance, as a fraction of the smallest voxel spacing: corner voxel centres of two
#: grids may differ by this much (header float rounding, DICOM→NIfTI conversions) and still be one grid.
GRID_TOLERANCE = 0.1


def affine_problem(affine) -> str | None:
    """Why an affine cannot place voxels in the world (None when it can).

    NaN/inf entries, a zero voxel spacing or parallel voxel axes would otherwise surface as a library's
    own words ("SVD did not converge", "Unable to find out axis nan") far from the file that caused them.
    """
    a = np.asarray(affine, dtype=np.float64)
    if a.shape != (4, 4):
        return f"the affine has shape {a.shape}, not 4x4"
    if not np.isfinite(a).all():
        return "the affine holds NaN or infinite values: the header does not say where the voxels are"
    sp = spacing_of(a)
    if (sp <= 0).any():
        axes = ", ".join(str(i) for i in np.flatnonzero(sp <= 0))
        return f"zero voxel spacing along array axis {axes} (spacing {np.round(sp, 6).tolist()} mm): the header does not say where the voxels are"
    if abs(np.linalg.det(a[:3, :3])) < 1e-6 * float(np.prod(sp)):
        return f"the voxel axes are parallel (singular direction matrix {np.round(a[:3, :3] / sp, 4).tolist()})"
    return None


def check_affine(affine) -> np.ndarray:
    """``affine`` as float64, or a GeometryError saying why it cannot place voxels."""
    why = affine_problem(affine)
    if why:
        raise GeometryError(why)
    return np.asarray(affine, dtype=np.float64)


def _ornt(affine) -> np.ndarray:
    """nibabel's io_orientation, after checking that the affine places voxels at all."""
    return nio.io_orientation(check_affine(affine))


def axcodes(affine: np.ndarray) -> str:
    return "".join(nio.ornt2axcodes(_ornt(affine)))


def affine_from_axcodes(codes: str, spacing, origin=(0.0, 0.0, 0.0)) -> np.ndarray:
    """RAS+ affine of an array whose axes run along ``codes`` (e.g. ``IPL``) with ``spacing`` mm."""
    unit = {"R": (0, 1.0), "L": (0, -1.0), "A": (1, 1.0), "P": (1, -1.0), "S": (2, 1.0), "I": (2, -1.0)}
    aff = np.eye(4)
    aff[:3, :3] = 0.0
    for ax, c in enumerate(codes.upper()):
        row, sign = unit[c]
        aff[row, ax] = sign * float(spacing[ax])
    aff[:3, 3] = np.asarray(origin, dtype=np.float64)
    return aff


def spacing_of(affine: np.ndarray) -> np.ndarray:
    return np.sqrt((np.asarray(affine)[:3, :3] ** 2).sum(axis=0))


def reorient(array: np.ndarray, affine: np.ndarray, target: str = "RAS") -> tuple[np.ndarray, np.ndarray]:
    """Permute/flip the first three axes so the array is closest to ``target`` axis codes.

    Returns a *view* (no copy) and the matching affine; the voxel centres do not move in world space.
    """
    src = _ornt(affine)
    dst = nio.axcodes2ornt(tuple(target))
    t = nio.ornt_transform(src, dst)
    return _apply(array, affine, t)


def reorient_box(lo, hi, shape, affine: np.ndarray, target: str = "RAS") -> tuple[np.ndarray, np.ndarray]:
    """An inclusive index box [lo, hi] of an array, as indices of the same array reoriented to ``target``.

    Lets work that is cheap on the stored (contiguous) array, like bounding boxes, skip the reoriented view.
    """
    t = nio.ornt_transform(_ornt(affine), nio.axcodes2ornt(tuple(target)))
    lo2, hi2 = np.zeros(3, dtype=np.int64), np.zeros(3, dtype=np.int64)
    for i, (j, flip) in enumerate(t):
        j = int(j)
        if flip > 0:
            lo2[j], hi2[j] = lo[i], hi[i]
        else:
            lo2[j], hi2[j] = shape[i] - 1 - hi[i], shape[i] - 1 - lo[i]
    return lo2, hi2


def _apply(array: np.ndarray, affine: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if np.array_equal(t, [[0, 1], [1, 1], [2, 1]]):
        return array, np.asarray(affine, dtype=np.float64)
    out = nio.apply_orientation(array, t)
    new_aff = np.asarray(affine, dtype=np.float64) @ nio.inv_ornt_aff(t, array.shape[:3])
    return out, new_aff


def corners(shape, affine) -> np.ndarray:
    s = np.asarray(shape[:3]) - 1
    idx = np.array([[i, j, k, 1] for i in (0, s[0]) for j in (0, s[1]) for k in (0, s[2])], dtype=np.float64)
    return (np.asarray(affine) @ idx.T).T[:, :3]


def grid_mismatch(shape_a, aff_a, shape_b, aff_b) -> str | None:
    """None when grid b holds the same voxel centres as grid a (up to axis order/flips), else why not."""
    t = nio.ornt_transform(_ornt(aff_b), _ornt(aff_a))
    in_shape = tuple(int(s) for s in shape_b[:3])
    out_shape = [0, 0, 0]
    for in_ax, (out_ax, _) in enumerate(t):
        out_shape[int(out_ax)] = in_shape[in_ax]
    b_aff = np.asarray(aff_b, dtype=np.float64) @ nio.inv_ornt_aff(t, in_shape)
    if tuple(out_shape) != tuple(int(s) for s in shape_a[:3]):
        return f"shape {in_shape} (as {tuple(out_shape)} after reorientation) vs {tuple(int(s) for s in shape_a[:3])}"
    tol = GRID_TOLERANCE * float(min(spacing_of(aff_a).min(), spacing_of(b_aff).min()))
    d = np.abs(corners(shape_a, aff_a) - corners(out_shape, b_aff)).max()
    if d > tol:
        return f"voxel positions differ by up to {d:.3g} mm (tolerance {tol:.3g} mm)"
    return None


def align_to(array: np.ndarray, affine: np.ndarray, ref_shape, ref_affine) -> np.ndarray:
    """``array`` permuted/flipped onto the reference grid's voxel order; GeometryError if not one grid."""
    why = grid_mismatch(ref_shape, ref_affine, array.shape, affine)
    if why:
        raise GeometryError(f"grid does not match the image: {why}")
    t = nio.ornt_transform(_ornt(affine), _ornt(ref_affine))
    out, _ = _apply(array, affine, t)
    return out


# ---------------------------------------------------------------------- respacing grids
@dataclass(frozen=True)
class Grid:
    """A regular grid: ``shape`` voxels with ``affine`` (RAS+ mm)."""

    shape: tuple[int, int, int]
    affine: np.ndarray

    @property
    def spacing(self) -> np.ndarray:
        return spacing_of(self.affine)


@dataclass(frozen=True)
class Respacing:
    """How an input grid maps onto a respaced output grid.

    Output voxel ``t`` along axis ``a`` sits at input index ``centre[a] + (t - mid[a]) * scale[a]``: the
    output grid has exactly the requested spacing and is centred on the input's extent, so respacing
    never shifts anatomy (a kept origin would shift it by half the change in voxel size).
    """

    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]
    scale: np.ndarray  # output spacing / input spacing, per axis
    in_affine: np.ndarray

    @property
    def centre(self) -> np.ndarray:
        return (np.asarray(self.in_shape) - 1) / 2.0

    @property
    def mid(self) -> np.ndarray:
        return (np.asarray(self.out_shape) - 1) / 2.0

    def coords(self, axis: int, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Input index coordinate of output voxels ``start..stop-1`` along ``axis``."""
        stop = self.out_shape[axis] if stop is None else stop
        t = np.arange(start, stop, dtype=np.float64)
        return self.centre[axis] + (t - self.mid[axis]) * self.scale[axis]

    def out_affine(self, offset=(0, 0, 0)) -> np.ndarray:
        a = np.eye(4)
        for i in range(3):
            a[i, i] = self.scale[i]
            a[i, 3] = self.centre[i] + (offset[i] - self.mid[i]) * self.scale[i]
        return self.in_affine @ a

    def out_range(self, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Output index box [start, stop) of voxels whose centre lies in input box [lo-0.5, hi+0.5]."""
        lo = np.asarray(lo, dtype=np.float64)
        hi = np.asarray(hi, dtype=np.float64)
        start = np.ceil((lo - 0.5 - self.centre) / self.scale + self.mid - 1e-9)
        stop = np.floor((hi + 0.5 - self.centre) / self.scale + self.mid + 1e-9) + 1
        start = np.clip(start, 0, np.asarray(self.out_shape)).astype(int)
        stop = np.clip(stop, start + 1, np.asarray(self.out_shape)).astype(int)
        return start, stop


def respacing(shape, affine, spacing) -> Respacing:
    sp_in = spacing_of(affine)
    sp_out = np.asarray(spacing, dtype=np.float64)
    n_in = np.asarray(shape[:3], dtype=np.float64)
    n_out = np.maximum(1, np.round(n_in * sp_in / sp_out)).astype(int)
    return Respacing(tuple(int(s) for s in shape[:3]), tuple(int(s) for s in n_out), sp_out / sp_in, np.asarray(affine, dtype=np.float64))


# ---------------------------------------------------------------------- laterality
def patient_side(world_x: float, midline_x: float) -> str:
    """'left' or 'right' for a RAS+ world x coordinate (x grows towards the patient's right)."""
    return "right" if world_x > midline_x else "left"


def resample_to_grid(array: np.ndarray, affine: np.ndarray, ref_shape, ref_affine, *, nearest: bool = False, fill: float = 0.0) -> np.ndarray:
    """``array`` resampled onto another grid by physical space (linear, or nearest for labels)."""
    import SimpleITK as sitk

    from .io.itk import to_sitk
    from .io.volume import itk_geometry

    src = to_sitk(array, affine, None if nearest else np.float32)
    ref = sitk.Image([int(s) for s in ref_shape[:3]], src.GetPixelID())
    d, sp, o = itk_geometry(ref_affine)
    ref.SetDirection(d)
    ref.SetSpacing(sp)
    ref.SetOrigin(o)
    interp = sitk.sitkNearestNeighbor if nearest else sitk.sitkLinear
    out = sitk.Resample(src, ref, sitk.Transform(), interp, fill, src.GetPixelID())
    return np.ascontiguousarray(sitk.GetArrayFromImage(out).transpose(2, 1, 0))


# ---------------------------------------------------------------------- sheared grids (gantry tilt)
@dataclass(frozen=True)
class Shear:
    """How far a grid's slice step leans away from its slice normal (a CT gantry tilt).

    ``per_slice`` is the in-plane shift of each slice relative to the previous one, in voxels along the
    first two axes; ``angle_deg`` the angle between the slice step and the normal of the slice plane;
    ``displacement_mm`` how far the last slice sits from where an orthogonal stack would put it.
    """

    angle_deg: float
    per_slice: tuple[float, float]
    displacement_mm: float


def shear_of(shape, affine: np.ndarray) -> Shear:
    """The shear of a grid whose first two axes span the slice plane and whose third steps between slices."""
    a = np.asarray(affine, dtype=np.float64)[:3, :3]
    sp = spacing_of(affine)
    u, v, step = a[:, 0] / sp[0], a[:, 1] / sp[1], a[:, 2]
    normal = np.cross(u, v)
    normal /= np.linalg.norm(normal)
    along = float(step @ normal)
    in_plane = step - along * normal
    angle = float(np.degrees(np.arctan2(np.linalg.norm(in_plane), abs(along))))
    per_slice = (float(step @ u / sp[0]), float(step @ v / sp[1]))
    return Shear(angle, per_slice, float(np.linalg.norm(in_plane)) * max(int(shape[2]) - 1, 0))


def deshear(
    array: np.ndarray, affine: np.ndarray, *, nearest: bool = False, fill: float = 0.0, padding: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(array, affine)`` of a sheared stack of slices resampled onto an orthogonal grid, as dcm2niix does.

    The output keeps each input slice's plane and in-plane axes (same voxel size) and steps between
    slices along the plane normal; every slice is shifted in its plane by its share of the shear, with
    linear interpolation (``nearest`` for labels). The output keeps the first slice's voxel lattice and
    grows by the total shift (rounded up to whole voxels) so that no input voxel is cut off. Voxels no input slice covers get ``fill``. Integer
    input stays integer (rounded). ``padding`` is a value that marks "no data" (DICOM PixelPaddingValue):
    never blended, the nearest voxel wins where it is one of the two neighbours (dcm2niix's rule). The
    first two axes must be orthogonal (DICOM rows and columns).
    """
    arr = np.asarray(array)
    aff = np.asarray(affine, dtype=np.float64)
    sp = spacing_of(aff)
    u, v = aff[:3, 0] / sp[0], aff[:3, 1] / sp[1]
    if abs(float(u @ v)) > 1e-3:
        raise GeometryError(f"the slice plane's axes are not orthogonal (cosine {float(u @ v):.4f}): cannot untilt")
    normal = np.cross(u, v)
    along = float(aff[:3, 2] @ normal)
    if abs(along) < 1e-6 * sp[2]:
        raise GeometryError("slices are stacked within their own plane: no volume")
    nk = arr.shape[2]
    shift = np.asarray(shear_of(arr.shape, aff).per_slice)  # voxels per slice along axes 0 and 1
    offsets = np.arange(nk)[:, None] * shift[None, :]  # (nk, 2): in-plane position of each slice
    # The output keeps the first slice's in-plane voxel lattice, grown by whole voxels towards the shear
    # (dcm2niix's grid: its origin moves by whole rows when the shear runs backwards).
    lo = np.floor(offsets.min(axis=0) + 1e-6)
    grow = (np.ceil(offsets.max(axis=0) - 1e-6) - lo).astype(int)
    out_shape = (arr.shape[0] + int(grow[0]), arr.shape[1] + int(grow[1]), nk, *arr.shape[3:])
    out_aff = aff.copy()
    out_aff[:3, 2] = along * normal
    out_aff[:3, 3] = aff[:3, 3] + lo[0] * aff[:3, 0] + lo[1] * aff[:3, 1]
    integer = np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool
    work = arr.dtype if nearest else np.float32
    out = np.full(out_shape, fill, dtype=work)
    for k in range(nk):
        # Output voxel (i, j) of slice k lies on input voxel (i + lo - offset_k) of that slice.
        plane = np.asarray(arr[:, :, k], dtype=work)
        for axis in (0, 1):
            plane = _shift_axis(plane, axis, float(lo[axis] - offsets[k, axis]), out_shape[axis], nearest, fill, padding)
        out[:, :, k] = plane
    if integer and not nearest:
        info = np.iinfo(arr.dtype) if arr.dtype != bool else None
        out = np.rint(out)
        if info is not None:
            out = np.clip(out, info.min, info.max)
        out = out.astype(arr.dtype)
    return out, out_aff


def _shift_axis(plane: np.ndarray, axis: int, d: float, n_out: int, nearest: bool, fill: float, padding: float | None = None) -> np.ndarray:
    """Resample ``plane`` along ``axis`` at input coordinates ``t + d`` for ``t`` in ``0..n_out-1``.

    Linear: a coordinate within ``[0, n - 1]`` blends its two neighbours; nearest: the closest input voxel.
    Coordinates beyond the input's outermost voxel centres get ``fill`` (no extrapolation).
    """
    n_in = plane.shape[axis]
    t = np.arange(n_out) + d
    moved = np.moveaxis(plane, axis, 0)
    out = np.full((n_out, *moved.shape[1:]), fill, dtype=plane.dtype)
    if nearest:
        idx = np.floor(t + 0.5).astype(int)
        ok = (idx >= 0) & (idx < n_in)
        out[ok] = moved[idx[ok]]
    else:
        ok = (t >= -1e-6) & (t <= n_in - 1 + 1e-6)
        lo = np.clip(np.floor(t[ok] + 1e-6), 0, n_in - 1).astype(int)
        hi = np.minimum(lo + 1, n_in - 1)
        f = np.clip(t[ok] - lo, 0, 1).astype(np.float32).reshape(-1, *([1] * (moved.ndim - 1)))
        a, b = moved[lo], moved[hi]
        blend = a * (1 - f) + b * f
        if padding is not None:
            blend = np.where((a == padding) | (b == padding), np.where(f >= 0.5, b, a), blend)
        out[ok] = blend
    return np.moveaxis(out, 0, axis)
