"""autoPET family: DAP Atlas masks in their own folder, their CTs in the autoPET study tree."""

from __future__ import annotations

from ..generate import _cast, to_file_orientation, write_case
from ..hooks import writer
from ..writers import write_volume


@writer("dap_atlas")
def dap_atlas_phantom(spec, layout, root, caps, body, onto) -> None:
    """Write the study's CT.nii.gz at {ctdir}PETCT_{pid}/{study}/ and the mask at the layout's label path;
    a case with ``_nomask`` is an autoPET study DAP Atlas did not label (its CT only)."""
    ct = f"{caps['ctdir']}PETCT_{caps['pid']}/{caps['study']}/CT.nii.gz"
    if caps.get("_nomask"):
        arr, aff = to_file_orientation(body.image, body.affine, spec.phantom.orientation, spec.phantom.slice_first)
        write_volume(root / ct, _cast(arr, spec.phantom.dtype), aff)
        return
    write_case(spec, layout.model_copy(update={"image": ct}), root, caps, body, onto)
