"""``satds detect``: which releases a folder of downloads holds, where, and in which arrangement.

One walk of the folder (names only), then every spec's arrangements are matched against the same index
(:mod:`satds.ingest.roots`), so a tree of 100k files takes seconds (``bench/bench_detect.py``). A spec that
``extends`` a release with ``keep_labels`` (TotalSegmentator's SAT-DS subsets) is a *view* of that release,
not another download: it is named under its release, never detected on its own. Matches whose files all
belong to a release found by another spec (a spec reading the same folder names with other label files)
are not reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ReadError
from ..specs import DatasetSpec, all_specs, get_spec, spec_keys
from ..specs.model import NNUNET
from .nnunet_raw import read_dataset_json
from .roots import DEPTH, Copy, FileIndex, Location, locate


def is_view(spec: DatasetSpec) -> bool:
    """A subset of a release's labels (``extends`` a release with ``keep_labels``), not a download of its own."""
    return spec.keep_labels is not None and spec.extends is not None and spec.extends.lower() in spec_keys()


@dataclass
class Detected:
    """One release found under the folder (or a match that does not resolve, or several copies)."""

    key: str
    location: Location
    views: list[str] = field(default_factory=list)

    @property
    def copy(self) -> Copy | None:
        return self.location.copy

    @property
    def ambiguous(self) -> bool:
        return self.location.ambiguous

    @property
    def resolved(self) -> bool:
        return bool(self.location.copies)

    def row(self, root: Path) -> dict:
        """The report row (``satds detect --format json``)."""
        c = self.copy
        copies = self.location.copies if self.ambiguous else ([c] if c is not None else [])
        return {
            "dataset": self.key,
            "root": str(c.folder) if c is not None and not self.ambiguous else None,
            "relative_root": _rel(c.folder, root) if c is not None and not self.ambiguous else None,
            "arrangement": c.arrangement if c is not None and not self.ambiguous else None,
            "scans": c.scans if c is not None and not self.ambiguous else None,
            "labelled": c.labelled if c is not None and not self.ambiguous else None,
            "problems": len(c.found.problems) if c is not None and not self.ambiguous else None,
            "resolved": self.resolved,
            "ambiguous": self.ambiguous,
            "copies": [{"root": str(x.folder), "arrangement": x.arrangement, "scans": x.scans, "labelled": x.labelled} for x in copies] if self.ambiguous else [],
            "error": self.location.error() if self.ambiguous else (None if self.resolved else _unresolved_note(c)),
            "views": self.views,
        }


def _rel(path: Path, root: Path) -> str:
    try:
        rel = path.relative_to(root).as_posix()
        return rel or "."
    except ValueError:
        return str(path)


def _unresolved_note(c: Copy | None) -> str | None:
    if c is None:
        return None
    first = str(c.found.problems[0]) if c.found.problems else "no case resolves"
    return f"{len(c.hits)} matching files, no readable scan ({first})"


@dataclass
class Detection:
    root: Path
    found: list[Detected]
    index: FileIndex

    @property
    def releases(self) -> list[Detected]:
        """The releases that can be ingested as they are (resolved, one copy each)."""
        return [d for d in self.found if d.resolved and not d.ambiguous]


def _files_of(copy: Copy, index: FileIndex) -> set[str]:
    """Every file of the copy's cases, relative to the named root (those under it)."""
    out: set[str] = set()
    prefix = index.prefix(copy.anchor) if copy.anchor.up else (copy.anchor.rel + "/" if copy.anchor.rel else "")
    for c in copy.cases:
        for f in c.all_files:
            if copy.anchor.up:
                if f.startswith(prefix):
                    out.add(f[len(prefix) :])
            else:
                out.add(prefix + f)
    return out


def _label_fit(copy: Copy) -> float:
    """How well an nnU-Net copy's dataset.json fits its spec (1 for other arrangements)."""
    if copy.arrangement != NNUNET:
        return 1.0
    from ..labels.classes import nnunet_label_fit
    from ..ontology import load_ontology

    try:
        return nnunet_label_fit(get_spec(copy.key), load_ontology(), read_dataset_json(copy.folder))
    except (ReadError, ValueError, AttributeError):  # a bad file fits nothing
        return 0.0


def detect(root: str | Path, *, depth: int = DEPTH, keys: list[str] | None = None) -> Detection:
    """Every release of every spec (or of ``keys``) found under ``root``; see the module docstring."""
    index = FileIndex(root, depth)
    specs = [s for s in all_specs() if s.implemented and (keys is None or s.key in keys)]
    views: dict[str, list[str]] = {}
    for s in specs:
        if is_view(s):
            views.setdefault(s.extends.lower(), []).append(s.key)
    found: list[Detected] = []
    for spec in specs:
        if is_view(spec) and keys is None:
            continue
        loc = locate(spec, index.root, index=index)
        if loc.copies or loc.unresolved:
            found.append(Detected(spec.key, loc, sorted(views.get(spec.key, []))))
    files = {id(c): _files_of(c, index) for d in found for c in d.location.copies}
    claimed = set().union(*files.values()) if files else set()
    fit = {id(c): _label_fit(c) for d in found for c in d.location.copies}

    def score(c: Copy) -> tuple:
        return (c.scans, -len(c.found.problems), fit[id(c)])

    def owned(d: Detected) -> bool:
        """Its matched files are another release's files, which that release reads better."""
        if not d.resolved:
            return all(c.hits <= claimed for c in d.location.unresolved)
        for c in d.location.copies:
            rivals = [
                o for e in found if e is not d for o in e.location.copies
                if c.hits <= files[id(o)] and score(o) > score(c)
            ]
            if not rivals:
                return False
        return True

    # A spec reading the same file names as another release (CTSpine1K from its sources reads the release's
    # label files too; kits23 reads KiTS19's nnU-Net copy, whose dataset.json lacks the cyst) is not reported
    # where the other release reads them better: more scans, fewer failing cases, or an nnU-Net dataset.json
    # that fits it better. Two specs reading the same files equally well are both reported.
    kept = [d for d in found if not owned(d)]
    return Detection(index.root, kept, index)
