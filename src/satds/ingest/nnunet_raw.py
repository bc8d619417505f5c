"""Reading a dataset kept as an nnU-Net raw folder: the channel files as its ``dataset.json`` names them.

The arrangement itself (``imagesTr/{case}_0000.nii.gz`` ...) is synthesised from the spec's ``nnunet`` block
(:func:`satds.specs.model.nnunet_arrangement`); label values are resolved by
:func:`satds.labels.classes.resolve_nnunet_classes`. Here: ``channel_names`` (v2) or ``modality`` (v1) say
which ``_000N`` file holds which of the spec's channels, so a copy whose conversion ordered them differently
is read right, and a copy with another number of channels is refused.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ..errors import ReadError, SpecError
from ..specs.model import NNUNET, NNUNET_ENDING, DatasetSpec, Layout
from .patterns import norm


def read_dataset_json(folder: str | Path) -> dict:
    """An nnU-Net folder's ``dataset.json`` (its label values and channel names). One that cannot be read,
    is not JSON or is not a JSON object is a :class:`ReadError` naming it, relative to the folder."""
    try:
        data = json.loads((Path(folder) / "dataset.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise ReadError(f"cannot be read ({type(e).__name__}: {e})", file="dataset.json") from None
    except ValueError as e:
        raise ReadError(f"not valid JSON ({e})", file="dataset.json") from None
    if not isinstance(data, dict):
        raise ReadError(f"not an nnU-Net dataset.json: a JSON {type(data).__name__}, not an object", file="dataset.json")
    return data


def nnunet_layouts(spec: DatasetSpec, root: Path) -> list[Layout]:
    """The spec's nnU-Net layouts with channel files in the order ``root/dataset.json`` gives."""
    layouts = spec.layouts_of(NNUNET)
    path = Path(root) / "dataset.json"
    if not path.is_file():
        return layouts
    data = read_dataset_json(root)
    names = data.get("channel_names") or data.get("modality") or {}
    try:
        by_index = {int(k): str(v) for k, v in names.items()}
    except (AttributeError, ValueError):
        raise SpecError(f"{spec.key}: {path}: channel_names must map channel numbers to names, found {names!r}") from None
    out = []
    for lay in layouts:
        if not lay.channels or not by_index:
            out.append(lay)
            continue
        if len(by_index) != len(lay.channels):
            raise SpecError(f"{spec.key}: {path} lists {len(by_index)} channels ({by_index}); the spec reads {len(lay.channels)} ({[c.name for c in lay.channels]})")
        order = _order(lay, by_index)
        chans = []
        for c, i in zip(lay.channels, order):
            chans.append(c.model_copy(update={"file": re.sub(r"_\d{4}(\{" + NNUNET_ENDING + r"\})$", f"_{i:04d}\\1", c.file)}))
        out.append(lay.model_copy(update={"channels": chans}))
    return out


def _order(lay: Layout, by_index: dict[int, str]) -> list[int]:
    """nnU-Net channel number per spec channel: by name (or sequence) where every name matches one, else in order."""
    wanted = [(norm(c.name), norm(c.sequence)) for c in lay.channels]
    have = {norm(n): i for i, n in by_index.items()}
    picked = []
    for name, seq in wanted:
        i = have.get(name, have.get(seq) if seq else None)
        picked.append(i)
    if None not in picked and len(set(picked)) == len(picked):
        return picked
    return sorted(by_index)
