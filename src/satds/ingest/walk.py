"""Walking a dataset folder by names only: symlinks followed, each real directory once, hidden entries dropped.

A download tree may hold symlinks (a release assembled from several disks, a convenience link to a parent);
one that points back up the tree would make a naive ``os.walk(followlinks=True)`` run for ever, growing
exponentially with each loop. Here every directory is identified by ``(st_dev, st_ino)`` and entered once
per walk, at the first path that reaches it (walks are depth-first in name order, so the choice is stable).

Listings are memoised in a ``cache`` dict owned by the caller (one discovery run, one ``satds detect``), so
many searches of one tree read each folder once.
"""

from __future__ import annotations

import os
from pathlib import Path

Listing = tuple[list[str], list[str], list[tuple[int, int]]]  # (sub-folders, files, sub-folder identities)


def hidden(name: str) -> bool:
    """macOS AppleDouble companions (``._x.nii.gz``), ``.DS_Store`` and other dot files are never data."""
    return name.startswith(".")


def identity(path: str | os.PathLike) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def list_dir(path: str, cache: dict | None = None) -> Listing:
    """The folder's visible sub-folders and other entries (sorted; symlinks to folders are folders; an
    unreadable folder lists nothing)."""
    if cache is not None and path in cache:
        return cache[path]
    dirs: list[tuple[str, tuple[int, int]]] = []
    files: list[str] = []
    try:
        it = os.scandir(path)
    except OSError:
        it = None
    if it is not None:
        with it:
            dev = None
            for e in it:
                if hidden(e.name):
                    continue
                try:
                    if e.is_dir():
                        if e.is_symlink():
                            st = e.stat()
                            ident = (st.st_dev, st.st_ino)
                        else:
                            if dev is None:
                                dev = os.stat(path).st_dev
                            ident = (dev, e.inode())
                        dirs.append((e.name, ident))
                    else:  # as os.walk: every other entry (a pipe, a broken link) is listed, its reader says what is wrong
                        files.append(e.name)
                except OSError:  # an entry that vanished while listing
                    continue
    dirs.sort()
    out: Listing = ([d for d, _ in dirs], sorted(files), [i for _, i in dirs])
    if cache is not None:
        cache[path] = out
    return out


def walk(root: Path | str, start: Path | str | None = None, cache: dict | None = None) -> list[tuple[str, list[str], list[str]]]:
    """``(folder relative to root + '/', sub-folders, files)`` for every folder under ``start`` (default: root),
    depth-first in name order, each real folder once (a symlink to a folder already walked is skipped, so a
    loop ends). Sub-folder lists hold only the folders that are walked."""
    root = str(root)
    start = str(start) if start is not None else root
    key = ("walk", root, start)
    if cache is not None and key in cache:
        return cache[key]
    out: list[tuple[str, list[str], list[str]]] = []
    first = identity(start)
    if first is None or not os.path.isdir(start):
        return out
    seen = {first}
    rel0 = os.path.relpath(start, root).replace(os.sep, "/")
    stack = [(start, "" if rel0 == "." else rel0 + "/")]
    while stack:
        path, rel = stack.pop()
        dirs, files, ids = list_dir(path, cache)
        kept = []
        for name, ident in zip(dirs, ids):
            if ident in seen:
                continue
            seen.add(ident)
            kept.append(name)
        out.append((rel, kept, files))
        stack.extend((os.path.join(path, d), f"{rel}{d}/") for d in reversed(kept))
    if cache is not None:
        cache[key] = out
    return out
