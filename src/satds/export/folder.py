"""An export's output folder: written whole into a hidden temporary folder, then swapped into place.

What an earlier export wrote (the list it recorded) is replaced; any other file in the folder (a mask a user
added, notes) is never deleted: it is moved to ``replaced-<name>-<time>/`` beside the folder. The name does
not start with ``Dataset``, so nnU-Net never sees two datasets with one id.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from pathlib import Path

REPLACED = "replaced-"


def read_record(path: Path) -> dict | None:
    """An export's JSON record (``satds_export.json``, the MONAI ``class_status.json``, each listing the files
    the export wrote under ``files``); None when it is missing or unreadable."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def files_in(folder: Path) -> list[str]:
    """Every file under ``folder`` as a relative path (a symbolic link counts as a file, never followed)."""
    entries = (p for p in folder.rglob("*") if p.is_symlink() or not p.is_dir())
    return sorted(str(p.relative_to(folder)) for p in entries)


def foreign_files(folder: Path, ours: set[str] | None) -> list[str]:
    """Files in an existing ``folder`` that are not among ``ours`` (what an earlier export wrote; None: all)."""
    if not folder.is_dir():
        return []
    return [rel for rel in files_in(folder) if rel not in (ours or set())]


def target_problems(folder: Path, ours: set[str] | None, overwrite: bool | None, who: str) -> list[str]:
    """Why an export may not replace ``folder``. ``ours``: the files an earlier export wrote there (None: it did
    not write the folder; ``who`` then says so, e.g. "was not written by satds (no satds_export.json)").

    ``overwrite`` (the user's ``--overwrite``): without it, any file the export did not write is a problem; with
    it, nothing is (those files are moved aside, never deleted). None, for an export without that option: its
    own folder is replaced (other files moved aside), any other folder holding files refused."""
    if folder.exists() and not folder.is_dir():
        return [f"{folder} exists and is not a folder"]
    if overwrite or not folder.is_dir() or (overwrite is None and ours is not None):
        return []
    theirs = foreign_files(folder, ours)
    if not theirs:
        return []
    listed = ", ".join(theirs[:5]) + (f" and {len(theirs) - 5} more" if len(theirs) > 5 else "")
    what = who if ours is None else "holds files satds did not write"
    if overwrite is None:
        return [f"{folder} {what}: {listed}; choose another --out or remove it"]
    return [f"{folder} {what}: {listed}; use --overwrite to replace it (those files are then moved to {REPLACED}{folder.name}-<time>/, never deleted)"]


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


def publish(tmp: Path, folder: Path, record_name: str, record: dict, ours: set[str] | None) -> Path | None:
    """Finish an export: its record (``record_name``, JSON) lists every file written, itself included, so a
    later export knows what it may replace; then swap ``tmp`` into ``folder`` (see :func:`swap_into_place`)."""
    record["files"] = files_in(tmp) + [record_name]
    (tmp / record_name).write_text(json.dumps(record, indent=1))
    return swap_into_place(tmp, folder, ours)
