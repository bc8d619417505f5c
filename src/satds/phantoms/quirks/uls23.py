"""ULS23: labels as .nii.gz, as .nii, zipped (.nii.gz.zip), or both plain and zipped."""

from __future__ import annotations

import gzip
import zipfile

from ..generate import write_case
from ..hooks import writer


@writer("uls23")
def uls23_phantom(spec, layout, root, caps, body, onto) -> None:
    """Write the case as usual, then store its label in the form ``_label_form`` names:
    ``nii`` (uncompressed), ``zip`` (only <name>.nii.gz.zip), ``both`` (.nii.gz and .nii.gz.zip), default .nii.gz."""
    from ...ingest.patterns import fill

    write_case(spec, layout, root, caps, body, onto)
    form = caps.get("_label_form")
    if not form:
        return
    label = root / fill(layout.label, caps)
    data = label.read_bytes()
    if form == "nii":
        label.with_name(label.name[: -len(".gz")]).write_bytes(gzip.decompress(data))
        label.unlink()
    elif form in ("zip", "both"):
        with zipfile.ZipFile(label.with_name(label.name + ".zip"), "w", compression=zipfile.ZIP_DEFLATED) as z:
            z.writestr(label.name, data)
        if form == "zip":
            label.unlink()
