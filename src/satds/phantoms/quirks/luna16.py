"""LUNA16: the CT scans are MetaImage ``.mhd`` + ``.raw``; the lung masks of seg-lungs-LUNA16 are ``.mhd`` with
zlib-compressed ``.zraw`` data (``CompressedData = True``), which the generic writer does not produce."""

from __future__ import annotations

from pathlib import Path

from ..generate import concrete, write_case
from ..hooks import writer


@writer("luna16")
def luna16_writer(spec, layout, root: Path, caps, body, onto) -> None:
    import SimpleITK as sitk

    write_case(spec, layout, root, caps, body, onto)
    lab = root / (caps.get("_label") or concrete(layout.label, caps))
    img = sitk.ReadImage(str(lab))
    lab.with_suffix(".raw").unlink()
    sitk.WriteImage(img, str(lab), useCompression=True)  # writes <uid>.mhd + <uid>.zraw
