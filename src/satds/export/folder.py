"""An export's output folder: written whole into a hidden temporary folder, then swapped into place.

What an earlier export wrote (the list it recorded) is replaced; any other file in the folder (a mask a user
added, notes) is never deleted: it is moved to ``replaced-<name>-<time>/`` beside the folder. The name does
not start with ``Dataset``, so nnU-Net never sees two datasets with one id.
"""

from __future__ import annotations

import shutil
import time
import uuid
from pathlib import Path

REPLACED = "replaced-"


def files_in(folder: Path) -> list[str]:
    """Every file under ``folder`` as a relative path (a symbolic link counts as a file, never followed)."""
    entries = (p for p in folder.rglob("*") if p.is_symlink() or not p.is_dir())
    return sorted(str(p.relative_to(folder)) for p in entries)


def foreign_files(folder: Path, ours: set[str] | None) -> list[str]:
    """Files in an existing ``folder`` that are not among ``ours`` (what an earlier export wrote; None: all)."""
    if not folder.is_dir():
        return []
    return [rel for rel in files_in(folder) if rel not in (ours or set())]


def swap_into_place(tmp: Path, folder: Path, ours: set[str] | None) -> Path | None:
    """Move the finished export ``tmp`` to ``folder``. The previous folder's files among ``ours`` are deleted;
    any other file is kept, moved to ``replaced-<name>-<time>/`` beside it (returned; None when there was none)."""
    if not folder.exists():
        tmp.rename(folder)
        return None
    old = folder.parent / f".{folder.name}.old-{uuid.uuid4().hex[:8]}"
    theirs = foreign_files(folder, ours)
    folder.rename(old)
    tmp.rename(folder)
    if not theirs:
        shutil.rmtree(old, ignore_errors=True)
        return None
    for rel in ours or set():
        if not Path(rel).is_absolute() and ".." not in Path(rel).parts:
            (old / rel).unlink(missing_ok=True)
    for d in sorted((p for p in old.rglob("*") if p.is_dir() and not p.is_symlink()), key=lambda p: len(p.parts), reverse=True):
        if not any(d.iterdir()):
            d.rmdir()
    kept = folder.parent / f"{REPLACED}{folder.name}-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:4]}"
    old.rename(kept)
    return kept
