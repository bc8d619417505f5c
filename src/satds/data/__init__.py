"""The built catalog as training data for any PyTorch framework (docs/data-api.md).

``CatalogDataset`` yields per scan (or per patch) the normalised image, one mask per requested class, each
class's present/absent/unknown status, the class names as text prompts, and the scan's metadata;
``collate`` batches items and ``masked_dice_bce`` is a loss that gives unknown classes no gradient.
torch is imported only when one of those is used, so ``import satds.data`` stays light.
"""

from __future__ import annotations

from .select import ABSENT, PRESENT, STATUS_CODES, UNKNOWN, Classes, ScanItem, Selection, resolve_classes, select_scans

_LAZY = {
    "CatalogDataset": ".dataset",
    "collate": ".batch",
    "masked_dice_bce": ".loss",
    "known_classes": ".loss",
}

__all__ = [
    "ABSENT",
    "PRESENT",
    "STATUS_CODES",
    "UNKNOWN",
    "CatalogDataset",
    "Classes",
    "ScanItem",
    "Selection",
    "collate",
    "known_classes",
    "masked_dice_bce",
    "resolve_classes",
    "select_scans",
]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
