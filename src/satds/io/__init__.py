"""Reading and writing images: every reader returns a :class:`Volume` in RAS+ world millimetres."""

from .atomic import atomic_path, write_bytes, write_text
from .nifti import read_nifti, write_nifti
from .readers import file_kind, read_header, read_volume
from .volume import Volume, affine_from_itk, itk_geometry

__all__ = [
    "Volume",
    "affine_from_itk",
    "atomic_path",
    "file_kind",
    "itk_geometry",
    "read_header",
    "read_nifti",
    "read_volume",
    "write_bytes",
    "write_nifti",
    "write_text",
]
