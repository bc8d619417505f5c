"""NIfTI read and write with ISA-L gzip (2-3x faster than zlib), arrays shared with the decoded buffer.

Measured on this machine for a 512x512x400 CT: nibabel's default read 0.76 s, this reader ~0.41 s (the
inflate floor is 0.35 s); writes at gzip level 1 through ISA-L ~0.6 s against nibabel's 1.6 s.
"""

from __future__ import annotations

import io
import os
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np
from isal import igzip, isal_zlib

from ..errors import ReadError
from .atomic import atomic_path
from .limits import check_declared
from .volume import Volume


def _inflate(data: bytes, limit: int) -> bytes:
    """At most ``limit`` bytes of a gzip stream (every member, as ``gunzip`` does); never more."""
    out: list[bytes] = []
    total = 0
    while data and total < limit:
        d = isal_zlib.decompressobj(wbits=31)
        chunk = d.decompress(data, limit - total)
        out.append(chunk)
        total += len(chunk)
        if not d.eof:
            break  # the limit was reached, or the stream is truncated (the caller checks the length)
        data = d.unused_data
    return out[0] if len(out) == 1 else b"".join(out)


def _header(raw: bytes, path: Path):
    """The NIfTI-1/2 header at the start of ``raw``, its shape, data type and data offset."""
    if len(raw) < 348:
        raise ReadError(f"not a NIfTI file ({len(raw)} bytes)", file=str(path))
    try:
        sizeof = int.from_bytes(raw[:4], "little")
        if sizeof not in (348, 540):
            sizeof = int.from_bytes(raw[:4], "big")
        hdr_cls = nib.Nifti2Header if sizeof == 540 else nib.Nifti1Header
        hdr = hdr_cls.from_fileobj(io.BytesIO(raw[:sizeof]), check=False)  # extensions are not needed
        shape = tuple(int(s) for s in hdr.get_data_shape())
        dtype = hdr.get_data_dtype()
        offset = int(hdr.get_data_offset())
    except Exception as e:
        raise ReadError(f"cannot parse NIfTI header ({e})", file=str(path)) from e
    return hdr, shape, dtype, offset


def _read_raw(path: Path) -> tuple[bytes, object, tuple[int, ...], np.dtype, int]:
    """The header, then only as many decompressed bytes as it declares (after checking that size)."""
    data = path.read_bytes()
    gz = path.name.endswith(".gz")
    try:
        head = _inflate(data[: 1 << 16], 540) if gz else data[:540]
        hdr, shape, dtype, offset = _header(head, path)
        check_declared(shape, dtype.itemsize, str(path))
        n = int(np.prod(shape)) * dtype.itemsize
        raw = _inflate(data, offset + n) if gz else data
    except (EOFError, OSError, zlib.error, isal_zlib.error, ValueError) as e:
        raise ReadError(f"corrupt or truncated gzip stream ({e})", file=str(path)) from e
    if offset + n > len(raw):
        raise ReadError(f"truncated: expected {offset + n} bytes of data, found {len(raw)}", file=str(path))
    return raw, hdr, shape, dtype, offset


def read_nifti(path: str | os.PathLike) -> Volume:
    """Read ``.nii``/``.nii.gz``; scaled data (scl_slope) is returned as float32, else the stored dtype.

    The header's declared size is checked against :func:`satds.io.limits.max_voxels` before any voxel is
    inflated, and no more than the declared bytes are ever inflated.
    """
    path = Path(path)
    raw, hdr, shape, dtype, offset = _read_raw(path)
    arr = np.ndarray(shape, dtype=dtype, buffer=raw, offset=offset, order="F")
    slope, inter = hdr.get_slope_inter()
    if slope is not None and not (slope == 1 and (inter or 0) == 0):
        arr = (arr.astype(np.float32) * np.float32(slope) + np.float32(inter or 0)).astype(np.float32)
    if arr.dtype.byteorder not in ("=", "|", "<" if np.little_endian else ">"):
        arr = arr.astype(arr.dtype.newbyteorder("="))
    affine = hdr.get_best_affine()
    return Volume(arr, affine, {"format": "nifti", "path": str(path), "dtype": str(dtype)})


def to_nifti_bytes(array: np.ndarray, affine: np.ndarray, *, compress: bool = True, level: int = 1, extra: dict | None = None) -> bytes:
    img = nib.Nifti1Image(np.asarray(array), np.asarray(affine, dtype=np.float64))
    img.header.set_xyzt_units("mm")
    img.header.set_sform(affine, code=1)
    img.header.set_qform(affine, code=1)
    if extra:
        import json

        img.header.extensions.append(nib.nifti1.Nifti1Extension(6, json.dumps(extra).encode()))  # 6 = comment
    data = img.to_bytes()
    return igzip.compress(data, compresslevel=level) if compress else data


def write_nifti(path: str | os.PathLike, array: np.ndarray, affine: np.ndarray, *, level: int = 1, extra: dict | None = None) -> Path:
    """Write atomically; ``.nii.gz`` is compressed with ISA-L at ``level`` (0-3)."""
    path = Path(path)
    data = to_nifti_bytes(array, affine, compress=path.name.endswith(".gz"), level=level, extra=extra)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path
