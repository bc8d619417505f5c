"""Where a release lies under the folder a user names: root resolution, the same for every spec.

A spec's patterns describe a release relative to its *anchor*, the folder its layouts start from
(``imagesTr/{case}.nii.gz`` anchors at ``Task03_Liver/``). Users name other folders: the folder a download
was unpacked into, ``~/data`` holding many releases, the release's image folder. So ``--root`` may be

- the anchor itself, or any folder up to ``depth`` (3) levels above it (one or several releases below);
- a folder up to ``depth`` levels *below* the anchor (the release folder where the spec starts one level
  higher, ``AbdomenCT-1K-ImagePart1`` of AbdomenCT-1K): then only scans under the named folder are read,
  while their labels and other channels resolve where the release keeps them (``Mask/`` beside it).

How: the named folder is walked once, names only (:mod:`satds.ingest.walk`), and its file and folder names are
indexed (exact name, literal prefix and suffix, parent folder name), so each pattern is tried on the few
files that can match it, at every candidate anchor of each. An anchor whose matched files another anchor also
matches is the same copy (a ``**/`` pattern matches at every level); the deepest anchor that matches them
all and whose cases resolve (images and required labels found) wins, over every arrangement of the spec.
Anchors that find *different* files of the release are two copies (the publisher's layout and SAT-DS's
arrangement side by side, two versions): :class:`Location` reports them and ingest stops with an error
listing them and how to choose (``--root`` deeper, ``--arrangement``).
"""

from __future__ import annotations

import bisect
import functools
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CaseError, ReadError, SatdsError
from ..specs.model import PATTERN_TOKEN, RELEASE, DatasetSpec, capture_regexes, constrain
from .discover import Discovery, discover_at
from .patterns import compile_pattern, components, excluded, glob_of, is_literal, literal_ends
from .walk import walk

log = logging.getLogger(__name__)

#: How far above and below the named folder a release's anchor is looked for.
DEPTH = 3


class RootError(SatdsError):
    """The folder a user named holds no copy of a release, or several (the message says how to choose)."""


# ---------------------------------------------------------------------- the index of one folder
@dataclass(frozen=True)
class Anchor:
    """A candidate release folder: ``up`` levels above the named root, or ``rel`` below it."""

    up: int = 0
    rel: str = ""

    @property
    def depth(self) -> int:
        """Levels below the named root (negative: above it)."""
        return -self.up if self.up else (self.rel.count("/") + 1 if self.rel else 0)


@dataclass(frozen=True)
class _Tail:
    """What a pattern's last two components say about the names it can match."""

    exact: str | None  # a literal name
    prefix: str
    suffix: str
    rx: re.Pattern | None  # the last component on its own (a filter on names)
    parent: str | None  # a literal parent folder name
    parent_rx: re.Pattern | None = None  # the parent component on its own (a filter on folder names)


# A capture regex that may match a '/': a literal slash, any-character dots, classes such as \S.
_SPANS = re.compile(r"/|(?<!\\)\.|\\[SWD]")
# ``{name:(?:folder/)?}`` at the start of a component: an optional folder level, not part of a file name.
_OPTIONAL_FOLDER = re.compile(r"^\{\w+:\(\?:[^{}]*/\)\?\}")


def _spans(rx: str | None) -> bool:
    """Whether a capture regex can match across folders (a negated class excluding '/' cannot)."""
    return rx is not None and _SPANS.search(re.sub(r"\[\^[^\]]*/[^\]]*\]", "", rx)) is not None


def _component_rx(comp: str) -> re.Pattern | None:
    if comp == "**" or any(_spans(r) for r in capture_regexes(comp).values()):
        return None
    return compile_pattern(comp).regex


@functools.lru_cache(maxsize=4096)
def _tail(text: str) -> _Tail:
    # A name used again in the last components (``{case}/{case}.nii.gz``) matched its first regex there.
    comps = components(constrain_all(text))
    last = _OPTIONAL_FOLDER.sub("", comps[-1])
    parent_comp = comps[-2] if len(comps) > 1 and last == comps[-1] else None
    parent = parent_comp if parent_comp is not None and is_literal(parent_comp) else None
    parent_rx = _component_rx(parent_comp) if parent_comp is not None and parent is None else None
    if is_literal(last):
        return _Tail(last, last, last, None, parent, parent_rx)
    prefix, suffix = literal_ends(last)
    rx = _component_rx(last)
    if rx is None:  # a capture may reach into earlier components: only the literal suffix is certain
        return _Tail(None, "", suffix, None, None, None)
    return _Tail(None, prefix, suffix, rx, parent, parent_rx)


def constrain_all(text: str) -> str:
    """Every use of a capture carries the regex of its first use (for matching components on their own)."""
    known = {k: v for k, v in capture_regexes(text).items() if v}

    def sub(m: re.Match) -> str:
        name = m.group(1)
        if name and not m.group(2) and name in known:
            return "{%s:%s}" % (name, known[name])
        return m.group(0)

    return PATTERN_TOKEN.sub(sub, text)


class _Names:
    """Paths by base name and by parent folder name, with sorted name lists for prefix and suffix ranges."""

    def __init__(self, paths: list[str], root_name: str):
        self.root_name = root_name  # the parent folder name of the entries at the top
        self.by_name: dict[str, list[str]] = {}
        self.by_parent: dict[str, list[str]] = {}
        for p in paths:
            self.by_name.setdefault(p.rpartition("/")[2], []).append(p)
            self.by_parent.setdefault(self.parent(p), []).append(p)
        self.names = sorted(self.by_name)
        self.rnames = sorted(n[::-1] for n in self.by_name)

    def parent(self, path: str) -> str:
        head = path.rpartition("/")[0]
        return head.rpartition("/")[2] if head else self.root_name

    @staticmethod
    def _range(sorted_list: list[str], prefix: str) -> tuple[int, int]:
        lo = bisect.bisect_left(sorted_list, prefix)
        hi = bisect.bisect_left(sorted_list, prefix + "\U0010ffff")
        return lo, hi

    def candidates(self, t: _Tail) -> list[str]:
        """Paths whose name (and parent folder's name) can match; the full pattern decides later."""
        if t.exact is not None:
            names = [t.exact] if t.exact in self.by_name else []
        else:
            plo, phi = self._range(self.names, t.prefix) if t.prefix else (0, len(self.names))
            slo, shi = self._range(self.rnames, t.suffix[::-1]) if t.suffix else (0, len(self.rnames))
            pool = self.names[plo:phi] if phi - plo <= shi - slo else [n[::-1] for n in self.rnames[slo:shi]]
            names = [n for n in pool if n.startswith(t.prefix) and n.endswith(t.suffix) and (t.rx is None or t.rx.match(n))]
        if t.parent is None and t.parent_rx is None:
            return [p for n in names for p in self.by_name[n]]
        parents = [t.parent] if t.parent is not None else [n for n in self.by_parent if t.parent_rx.match(n)]
        by_parent = sum(len(self.by_parent.get(n, ())) for n in parents)
        by_name = sum(len(self.by_name[n]) for n in names)
        if by_parent < by_name:
            wanted = set(names)
            return [p for n in parents for p in self.by_parent.get(n, ()) if p.rpartition("/")[2] in wanted]
        ok = set(parents)
        return [p for n in names for p in self.by_name[n] if self.parent(p) in ok]


class FileIndex:
    """The names under one folder (walked once), indexed for matching patterns at candidate anchors."""

    def __init__(self, root: str | Path, depth: int = DEPTH, cache: dict | None = None):
        self.root = Path(root).expanduser().resolve()
        self.depth = depth
        self.cache = {} if cache is None else cache  # folder listings, shared with discovery
        # Names from the root upwards: a path under the root, relative to the folder ``up`` levels above it,
        # starts with the last ``up`` of them (the root's own name last).
        # Never the filesystem's root or the home folder: no release starts there, and walking them is slow.
        self.parents = []
        for up, folder in enumerate(self.root.parents[:depth], start=1):
            if folder == Path(folder.anchor) or folder == Path.home():
                break
            self.parents.append([self.root, *self.root.parents][up - 1].name)
        files: list[str] = []
        dirs: list[str] = []
        for rel, subdirs, names in walk(self.root, self.root, self.cache):
            files += [rel + n for n in names]
            dirs += [rel + d for d in subdirs]
        self.files, self.dirs = files, dirs
        self._files = _Names(files, self.root.name)
        self._dirs = _Names(dirs, self.root.name)
        self._hits: dict[str, list[tuple[str, tuple[Anchor, ...]]]] = {}

    def folder(self, anchor: Anchor) -> Path:
        if anchor.up:
            return self.root.parents[anchor.up - 1]
        return self.root / anchor.rel if anchor.rel else self.root

    def prefix(self, anchor: Anchor) -> str:
        """What a path under the named root starts with, relative to an anchor above it."""
        return "".join(n + "/" for n in reversed(self.parents[: anchor.up]))

    def where(self, anchor: Anchor) -> str:
        """The anchor as the user sees it: a path relative to the named root."""
        return "/".join([".."] * anchor.up) if anchor.up else (anchor.rel or ".")

    def matches(self, text: str, exclude: tuple[str, ...] = ()) -> list[tuple[str, tuple[Anchor, ...]]]:
        """(path under the root, the anchors at which the pattern matches it) for every file or folder that
        matches the pattern somewhere within ``depth`` levels of the root."""
        key = f"{text}\0{exclude}"
        if key in self._hits:
            return self._hits[key]
        pat = compile_pattern(text)
        rx = pat.regex.match
        names = self._dirs if pat.dirs else self._files
        ups = [(Anchor(up), self.prefix(Anchor(up))) for up in range(1, len(self.parents) + 1)]
        out = []
        for path in names.candidates(_tail(text)):
            found = []
            start, d = 0, 0
            while True:  # anchors at the root and below: the path after its first d folders
                sub = path[start:]
                if rx(sub) and not excluded(sub, exclude):
                    found.append(Anchor(0, path[: start - 1] if start else ""))
                i = path.find("/", start)
                if i < 0 or d == self.depth:
                    break
                start, d = i + 1, d + 1
            for anchor, prefix in ups:  # anchors above the root: the root's own name(s) first
                sub = prefix + path
                if rx(sub) and not excluded(sub, exclude):
                    found.append(anchor)
            if found:
                out.append((path, tuple(found)))
        self._hits[key] = out
        return out

    def nearest(self, text: str, limit: int = 3) -> list[tuple[int, str, str]]:
        """Files named like the pattern's files but not where it expects them: (count, folder, example name)
        per folder, most first. Falls back to the literal suffix, then to the extension."""
        pat = compile_pattern(text)
        names = self._dirs if pat.dirs else self._files
        t = _tail(text)
        tries = [t]
        if t.rx is not None or t.prefix:
            tries.append(_Tail(None, "", t.suffix, None, None))
        ext = _extension(t.suffix)
        if ext and ext != t.suffix:
            tries.append(_Tail(None, "", ext, None, None))
        for tt in tries:
            if not (tt.exact or tt.rx is not None or tt.prefix or tt.suffix):
                continue
            tt = _Tail(tt.exact, tt.prefix, tt.suffix, tt.rx, None)
            by_folder: dict[str, list[str]] = {}
            for p in names.candidates(tt):
                head, _, name = p.rpartition("/")
                by_folder.setdefault(head, []).append(name)
            if by_folder:
                ranked = sorted(by_folder.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:limit]
                return [(len(v), k, sorted(v)[0]) for k, v in ranked]
        return []


def _extension(suffix: str) -> str:
    m = re.search(r"(\.[A-Za-z0-9]+(?:\.gz|\.zip|\.bz2)?)$", suffix)
    return m.group(1) if m else ""


# ---------------------------------------------------------------------- copies of one release
@dataclass
class Copy:
    """One arrangement of a release found at one folder."""

    key: str
    arrangement: str
    anchor: Anchor
    folder: Path
    hits: frozenset[str]  # the matched files, relative to the named root
    found: Discovery = field(default_factory=Discovery)

    @property
    def cases(self):
        return self.found.cases

    @property
    def scans(self) -> int:
        return len(self.found.cases)

    @property
    def labelled(self) -> int:
        return sum(1 for c in self.found.cases if c.label or c.label_files)

    @property
    def resolves(self) -> bool:
        return bool(self.found.cases) and not self.found.duplicates

    @property
    def clean(self) -> bool:
        return self.resolves and not self.found.problems

    def describe(self, index: "FileIndex") -> str:
        example = self.found.cases[0].images[0] if self.found.cases else next(iter(sorted(self.hits)), "")
        return f"{self.arrangement} ({self.scans} scans, at {index.where(self.anchor)}, e.g. {example})"


@dataclass
class Location:
    """Where a spec's release lies under a named folder: the copy to read, or why there is none."""

    spec: DatasetSpec
    index: FileIndex
    copies: list[Copy] = field(default_factory=list)  # every copy whose cases resolve
    unresolved: list[Copy] = field(default_factory=list)  # matched files whose cases do not resolve
    notes: list[str] = field(default_factory=list)
    arrangements: list[str] = field(default_factory=list)  # those tried

    @property
    def ambiguous(self) -> bool:
        return len(self.copies) > 1

    @property
    def copy(self) -> Copy | None:
        """The copy to read: the one that resolves, else the best of those that do not (its errors say why)."""
        if len(self.copies) == 1:
            return self.copies[0]
        if not self.copies and self.unresolved:
            return self.unresolved[0]
        return None

    def error(self) -> str:
        if self.ambiguous:
            where = {c.anchor for c in self.copies}
            arrs = {c.arrangement for c in self.copies}
            what = "; ".join(c.describe(self.index) for c in self.copies)
            how = []
            if len(where) > 1:
                how.append("--root naming one copy's folder")
            if len(arrs) > 1:
                how.append("--arrangement " + "|".join(sorted(arrs)))
            head = f"in {len(arrs)} arrangements" if len(where) == 1 else f"{len(self.copies)} copies of the release"
            return f"{self.index.root} holds {head}: {what}; choose one with {' or '.join(how)}"
        return no_match_message(self.spec, self.index, self.arrangements)


def _depth_window(index: FileIndex) -> str:
    return f"the release's folder looked for there, up to {index.depth} levels below and {len(index.parents)} above"


def no_match_message(spec: DatasetSpec, index: FileIndex, arrangements: list[str] | None = None) -> str:
    """Nothing of the release found: the arrangements tried and the files nearest to what they expect."""
    arrangements = arrangements or spec.arrangement_names
    reads = []
    near: dict[tuple[str, str], tuple[int, str]] = {}
    for name in arrangements:
        parts = []
        for lay in spec.layouts_of(name):
            parts.append(_describe_layout(lay))
            kind = "folder" if lay.match.endswith("/") else "file"
            for n, folder, example in index.nearest(lay.match):
                near.setdefault((folder, example), (n, kind))
        reads.append(f"{' + '.join(dict.fromkeys(parts))} ({name})")
    msg = f"no scans of {spec.key} found under the root {index.root} ({_depth_window(index)}); satds reads " + ", or ".join(reads)
    if near:
        best = sorted(near.items(), key=lambda kv: -kv[1][0])[:3]
        msg += ". Nearest files: " + "; ".join(f"{n} {kind}{'s' if n > 1 else ''} like {ex} under {folder or '.'}/" for (folder, ex), (n, kind) in best)
        msg += " (move them to the layout above, or pass --root/--arrangement)"
    else:
        msg += ". No file under it looks like the release's files; is this the right folder?"
    return msg


def _describe_layout(lay) -> str:
    known = {k: v for k, v in capture_regexes(lay.match).items() if v}
    parts = [glob_of(lay.match)]
    if lay.label and lay.label != "{path}":
        parts.append(glob_of(constrain(lay.label, known)))
    if lay.label_files:
        parts.append(glob_of(constrain(lay.label_files, known)))
    return " + ".join(parts)


# ---------------------------------------------------------------------- locating
def _candidates(spec: DatasetSpec, index: FileIndex, arrangement: str) -> dict[Anchor, set[str]]:
    hits: dict[Anchor, set[str]] = {}
    for lay in spec.layouts_of(arrangement):
        for path, anchors in index.matches(lay.match, tuple(lay.exclude)):
            for a in anchors:
                hits.setdefault(a, set()).add(path)
    return hits


def _evaluate(spec: DatasetSpec, index: FileIndex, arrangement: str, anchor: Anchor, hits: frozenset[str]) -> Copy:
    folder = index.folder(anchor)
    try:  # a release above the named folder: only the scans under the named folder
        found = discover_at(spec, folder, arrangement, index.cache, index.prefix(anchor) if anchor.up else "")
    except CaseError as e:  # a release table that cannot be read names its file: this copy's error, not the run's
        found = Discovery(problems=[e.located(dataset=spec.key)])
    except SatdsError as e:  # e.g. a channel_names that is not a mapping
        found = Discovery(problems=[CaseError(str(e), dataset=spec.key, file=next(iter(sorted(hits)), ""))])
    except Exception as e:  # a discovery hook on odd files (an unreadable one): this copy's error, not the run's
        log.debug("discovery of %s at %s failed", spec.key, folder, exc_info=True)
        where = getattr(e, "filename", None)
        err = ReadError(f"cannot discover the cases ({type(e).__name__}: {e})", dataset=spec.key, file=os.fspath(where) if where else ".")
        found = Discovery(problems=[err.relative_to(folder)])
    return Copy(spec.key, arrangement, anchor, folder, hits, found)


def locate(spec: DatasetSpec, root: str | Path, arrangement: str | None = None, *, index: FileIndex | None = None, depth: int = DEPTH) -> Location:
    """Find the copies of ``spec``'s release under ``root`` (see the module docstring)."""
    index = index if index is not None else FileIndex(root, depth)
    names = [arrangement] if arrangement is not None else spec.arrangement_names
    if arrangement is not None:
        spec.layouts_of(arrangement)  # an unknown name is an error naming the known ones
    loc = Location(spec, index, arrangements=names)
    # Candidates grouped by the files they match; larger groups first, deeper anchors first within one.
    groups: dict[frozenset[str], list[tuple[int, str, Anchor]]] = {}
    for order, name in enumerate(names):
        for anchor, hits in _candidates(spec, index, name).items():
            groups.setdefault(frozenset(hits), []).append((order, name, anchor))
    ranked = sorted(groups.items(), key=lambda kv: (-len(kv[0]), -max(a.depth for _, _, a in kv[1])))
    covered: set[str] = set()
    for hits, members in ranked:
        if hits <= covered:
            continue  # the same files as a copy already found (a `**/` pattern one level up or down)
        # The named folder and those below it first (deepest first), then those above it (nearest first),
        # which are only read when nothing at or below the named folder resolves (a sibling Mask/ folder).
        members.sort(key=lambda m: (m[2].up, -m[2].depth, m[0]))
        tried: list[Copy] = []
        for _, name, anchor in members:
            if anchor.up and any(t.anchor.up == 0 and t.resolves for t in tried):
                break  # the files resolve at or below the named folder
            c = _evaluate(spec, index, name, anchor, hits)
            tried.append(c)
            if c.clean:
                break
        good = [c for c in tried if c.resolves]
        if good:
            best = max(good, key=lambda c: (len(c.cases), -len(c.found.problems)))
            loc.copies.append(best)
            covered |= hits
        else:
            loc.unresolved += tried
    _set_aside_conversions(spec, loc)
    loc.unresolved = [c for c in loc.unresolved if not c.hits <= covered]
    # Nothing resolves: read the largest match nearest the named folder, so its errors say what is missing.
    loc.unresolved.sort(key=lambda c: (-len(c.hits), -len(c.cases), c.anchor.up > 0, abs(c.anchor.depth)))
    return loc


def _set_aside_conversions(spec: DatasetSpec, loc: Location) -> None:
    """Conversions kept beside the release's own files (``beside_release``: HaN-Seg's CT as .nii.gz next to
    the .nrrd) are not a second copy when the release at the same folder has every scan they have."""
    releases = [c for c in loc.copies if c.arrangement == RELEASE]
    keep = []
    for c in loc.copies:
        alt = spec.arrangements.get(c.arrangement)
        scans = {x.scan_id for x in c.cases}
        # beside: the same folder, or one holding the other (Adrenal-ACC-Ki67's converted_nii/ beside its collection folder)
        rel = next((r for r in releases if _nested(r.folder, c.folder) and scans <= {x.scan_id for x in r.cases}), None)
        if alt is not None and alt.beside_release and rel is not None:
            loc.notes.append(f"{c.arrangement} files at {loc.index.where(c.anchor)} are conversions kept beside the release; the release's files are read")
            continue
        keep.append(c)
    order = {name: i for i, name in enumerate(spec.arrangement_names)}
    loc.copies = sorted(keep, key=lambda c: (order.get(c.arrangement, len(order)), c.anchor.up, c.anchor.rel))


def _nested(a: Path, b: Path) -> bool:
    return a == b or a in b.parents or b in a.parents
