"""Phantom writers for releases whose files the generic writer cannot produce (DICOM + PNG masks, ...).

A writer has the signature of :func:`satds.phantoms.generate.write_case` and is named by a spec's
``phantom.hook``.
"""

from __future__ import annotations

from typing import Callable

from ..errors import SpecError

_WRITERS: dict[str, Callable] = {}


def writer(name: str) -> Callable[[Callable], Callable]:
    def deco(fn: Callable) -> Callable:
        _WRITERS[name] = fn
        return fn

    return deco


def get(name: str) -> Callable:
    from . import quirks  # noqa: F401  (registers the built-in writers)

    if name not in _WRITERS:
        raise SpecError(f"unknown phantom writer {name!r}; registered: {sorted(_WRITERS)}")
    return _WRITERS[name]
