"""Batching :class:`~satds.data.dataset.CatalogDataset` items, padding volumes of different shapes."""

from __future__ import annotations

from typing import Any

import torch


def collate(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack items into a batch: ``image`` B×C×..., ``label`` B×K×..., ``valid`` B×1×..., ``class_status`` B×K.

    Items of different spatial shapes (whole volumes) are padded at the far end of each axis to the
    largest shape: the image with each item's ``meta["pad_value"]`` (its channel minimum, the build's
    clipping floor), ``label`` and ``valid`` with 0, so ``valid`` tells padding from scan voxels.
    ``class_ids``/``class_names``/``class_synonyms`` are the same for every item of a dataset and are kept
    once; ``meta`` becomes a list of the items' dicts. Other keys added by transforms are stacked when they
    are tensors of one shape and listed otherwise.
    """
    if not batch:
        raise ValueError("collate: empty batch")
    first = batch[0]
    for key in ("class_ids", "class_names"):
        if key in first and any(b.get(key) != first[key] for b in batch):
            raise ValueError(f"collate: items disagree on {key}; batch items of one dataset (one class list)")
    shapes = [tuple(b["image"].shape[1:]) for b in batch]
    target = tuple(max(s[a] for s in shapes) for a in range(len(shapes[0])))
    out: dict[str, Any] = {}
    for key in first:
        vals = [b[key] for b in batch]
        if key in ("image", "label", "valid"):
            padded = [_pad(v, target, _pad_value(b, key)) for v, b in zip(vals, batch)]
            out[key] = padded[0].unsqueeze(0) if len(padded) == 1 else _stack(padded)
        elif key in ("class_ids", "class_names", "class_synonyms"):
            out[key] = first[key]
        elif key == "meta":
            out[key] = vals
        elif isinstance(vals[0], torch.Tensor) and all(v.shape == vals[0].shape for v in vals):
            out[key] = torch.stack(vals)
        else:
            out[key] = vals
    return out


def _stack(tensors: list[torch.Tensor]) -> torch.Tensor:
    """``torch.stack``; in a DataLoader worker into shared memory (as ``default_collate``), so the batch
    reaches the main process without another copy."""
    if torch.utils.data.get_worker_info() is None or isinstance(tensors[0], torch.Tensor) and type(tensors[0]) is not torch.Tensor:
        return torch.stack(tensors)
    elem = tensors[0]
    numel = sum(t.numel() for t in tensors)
    storage = elem._typed_storage()._new_shared(numel, device=elem.device)
    out = elem.new(storage).resize_(len(tensors), *elem.shape)
    return torch.stack(tensors, out=out)


def _pad_value(item: dict, key: str):
    if key != "image":
        return 0
    return item.get("meta", {}).get("pad_value") or 0.0


def _pad(t: torch.Tensor, target: tuple[int, ...], value) -> torch.Tensor:
    if tuple(t.shape[1:]) == target:
        return t
    out = t.new_empty((t.shape[0], *target))
    if isinstance(value, (list, tuple)):
        for c in range(t.shape[0]):
            out[c] = value[c] if c < len(value) else value[-1]
    else:
        out.fill_(value)
    out[(slice(None), *[slice(0, s) for s in t.shape[1:]])] = t
    return out
