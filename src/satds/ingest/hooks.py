"""Named hooks for what a dataset's layout cannot say as data.

A spec's layout names a hook (``hook: chaos_png``); the hook object may provide any of:

- ``discover(spec, layout, root, cache=None)`` — find the scans (replaces pattern matching); returns a list
  of ``CaseFiles`` in which a ``CaseError`` stands for a case that failed (recorded while the others go on),
  or a ``(cases, problems)`` pair. ``cache`` holds the folder listings of the run (pass it to
  :func:`satds.ingest.patterns.find` and :func:`satds.ingest.walk.walk`, so each folder is listed once);
- ``read_image(case, spec) -> list[Volume]`` — read the channels (replaces the format readers);
- ``read_labels(case, spec, image: Volume) -> list[LabelPiece]`` — read label data onto the image grid;
- ``official_split(spec, root) -> dict[case_id, split]``.

Hooks live in :mod:`satds.ingest.quirks` (one module per release family) and are registered by name.
"""

from __future__ import annotations

from typing import Any, Callable

from ..errors import SpecError

_HOOKS: dict[str, dict[str, Callable[..., Any]]] = {}


def hook(name: str, kind: str) -> Callable[[Callable], Callable]:
    """Register ``fn`` as the ``kind`` part (discover, read_image, read_labels, official_split) of hook ``name``."""
    if kind not in {"discover", "read_image", "read_labels", "official_split"}:
        raise ValueError(f"unknown hook kind {kind!r}")

    def deco(fn: Callable) -> Callable:
        _HOOKS.setdefault(name, {})[kind] = fn
        return fn

    return deco


def get_hook(name: str | None, kind: str) -> Callable[..., Any] | None:
    if not name:
        return None
    from . import quirks  # noqa: F401  (registers the built-in hooks)

    if name not in _HOOKS:
        raise SpecError(f"unknown hook {name!r}; registered: {sorted(_HOOKS)}")
    return _HOOKS[name].get(kind)
