"""Find a dataset's scans under its root: patterns → :class:`CaseFiles`, plus ids and official splits."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CaseError, ReadError, SpecError
from ..specs.model import (
    NNUNET,
    RELEASE,
    DatasetSpec,
    Layout,
    SplitFromCapture,
    SplitFromHook,
    SplitFromLists,
    SplitFromNnunetSplits,
    SplitFromSections,
    SplitFromTable,
)
from .hooks import get_hook
from .nnunet_raw import nnunet_layouts
from .patterns import compile_pattern, fill, fill_partial, find, has_wildcards

SPLITS = {"train", "validation", "test", "unknown"}


@dataclass
class CaseFiles:
    """Everything needed to read one scan, with paths relative to the dataset root."""

    dataset: str
    layout: str
    captures: dict[str, str]
    case_id: str
    patient_id: str
    scan_id: str
    images: list[str]  # one path per channel (the same path for channels of one 4D file)
    channel_index: list[int | None]
    label: str | None = None
    label_files: dict[str, str] = field(default_factory=dict)  # spec key → path
    missing_label_keys: list[str] = field(default_factory=list)
    official_split: str = "unknown"
    sat_id: str | None = None
    extra: dict = field(default_factory=dict)  # hook-specific data (e.g. DICOM series uid)
    arrangement: str = RELEASE  # which of the spec's arrangements found it (its ``layout`` names a layout there)

    @property
    def all_files(self) -> list[str]:
        return sorted({*self.images, *([self.label] if self.label else []), *self.label_files.values()})


class SplitResolver:
    """Official split per case: constant, from a capture, a table, a sections file, a lists file, an nnU-Net splits file, or a hook."""

    def __init__(self, spec: DatasetSpec, root: Path, rule=None, arrangement: str = RELEASE):
        self.spec = spec
        self.rule = rule if rule is not None else spec.official_split_of(arrangement)
        self.table: dict[str, str] = {}
        r = self.rule
        if isinstance(r, SplitFromTable):
            path = root / r.table
            if path.exists():
                text = _release_text(spec, root, r.table)
                sample = text[:4096]
                sep = r.sep or (";" if sample.count(";") > sample.count(",") else ",")
                try:
                    for row in csv.DictReader(io.StringIO(text, newline=""), delimiter=sep):
                        self.table[str(row.get(r.key_column, "")).strip()] = str(row.get(r.column, "")).strip()
                except csv.Error as e:
                    raise ReadError(f"the release's split table is not valid CSV ({e})", dataset=spec.key, file=r.table) from None
        elif isinstance(r, SplitFromSections):
            path = _release_or_shipped(root, r.sections, r.shipped)
            if path.exists():
                section = None
                for line in _release_text(spec, root, path).splitlines():
                    line = line.strip()
                    if not line:
                        continue
                    if line.endswith(":"):
                        section = line[:-1].strip()
                    elif section is not None:
                        self.table[line] = section
        elif isinstance(r, SplitFromLists):
            path = root / r.lists
            if path.exists():
                import json

                try:
                    data = json.loads(_release_text(spec, root, r.lists))
                except ValueError as e:
                    raise ReadError(f"the release's split file is not valid JSON ({e})", dataset=spec.key, file=r.lists) from None
                if not isinstance(data, dict):
                    raise SpecError(f"{spec.key}: split file {r.lists} must map split names to lists of cases")
                for section, names in data.items():
                    for name in names if isinstance(names, list) else []:
                        self._put(str(name), section, r.lists)
        elif isinstance(r, SplitFromNnunetSplits):
            from .nnunet_splits import read_nnunet_splits

            path = _release_or_shipped(root, r.nnunet_splits, r.shipped)
            if path.exists():
                try:
                    folds = read_nnunet_splits(path)
                except ReadError as e:
                    raise e.relative_to(root).located(dataset=spec.key)
                if not 0 <= r.fold < len(folds):
                    raise SpecError(f"{spec.key}: {path.name} has {len(folds)} folds, no fold {r.fold}")
                for section, names in folds[r.fold].items():
                    for name in names:
                        m = re.search(r.name, name) if r.name else None
                        self._put(m.group(1) if m else name, section, f"fold {r.fold} of {path.name}")
        elif isinstance(r, SplitFromHook):
            fn = get_hook(r.hook, "official_split")
            if fn is None:
                raise SpecError(f"{spec.key}: hook {r.hook!r} has no official_split")
            self.table = dict(fn(spec, root))

    def _put(self, key: str, section: str, where: str) -> None:
        """``key`` is in split ``section`` of the file; a key listed under two splits is an error."""
        if self.table.get(key, section) != section:
            raise SpecError(f"{self.spec.key}: {key!r} is listed in both {self.table[key]!r} and {section!r} of {where}")
        self.table[key] = section

    def __call__(self, captures: dict[str, str], case_id: str) -> str:
        r = self.rule
        if isinstance(r, str):
            return r
        if isinstance(r, SplitFromCapture):
            value = r.map.get(captures.get(r.capture, ""), r.default)
        elif isinstance(r, (SplitFromTable, SplitFromSections, SplitFromLists, SplitFromNnunetSplits)):
            key = fill(r.key, captures)
            raw = self.table.get(key)
            value = r.map.get(raw, raw) if raw is not None else r.default
            if raw is None and isinstance(r, SplitFromNnunetSplits):
                value = next((v for pat, v in r.unlisted.items() if re.search(pat, key)), r.default)
        else:
            value = self.table.get(case_id, "unknown")
        if value not in SPLITS:
            raise SpecError(f"{self.spec.key}: split value {value!r} is not one of {sorted(SPLITS)}")
        return value


def _release_or_shipped(root: Path, files: str | list[str], shipped: str | None) -> Path:
    """The first of the release's candidate ``files`` found under ``root``, else the copy shipped in the specs
    folder (``shipped``), else the first candidate (which does not exist: no split is read)."""
    from ..resources import specs_dir

    candidates = [root / c for c in ([files] if isinstance(files, str) else files)]
    return next((c for c in candidates if c.is_file()), specs_dir() / shipped if shipped else candidates[0])


def _release_text(spec: DatasetSpec, root: Path, path: str | Path) -> str:
    """A text file of the release (a split table): one that cannot be read is an error naming it."""
    p = root / path
    try:
        return p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        rel = p.relative_to(root) if p.is_relative_to(root) else p
        raise ReadError(f"the release's split table cannot be read ({type(e).__name__}: {e})", dataset=spec.key, file=str(rel)) from None


def _skipped(spec: DatasetSpec, case_id: str) -> str | None:
    for s in spec.skip:
        if (s.case.startswith("^") and re.search(s.case, case_id)) or s.case == case_id:
            return s.reason
    return None


@dataclass
class Discovery:
    """What one arrangement's layouts find at one folder: cases, per-case problems, skipped cases, and how
    many scan ids were found twice (a folder holding two copies of the release)."""

    cases: list[CaseFiles] = field(default_factory=list)
    problems: list[CaseError] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    duplicates: int = 0


def discover(spec: DatasetSpec, root: Path, arrangement: str = RELEASE) -> tuple[list[CaseFiles], list[CaseError], list[tuple[str, str]]]:
    """(cases, problems, skipped) for one dataset root in one arrangement. Problems are per-case errors to record.

    ``root`` is the folder the arrangement's patterns are relative to; :func:`satds.ingest.roots.locate`
    finds it from whatever folder a user names.
    """
    d = discover_at(spec, root, arrangement)
    return d.cases, d.problems, d.skipped


def discover_at(spec: DatasetSpec, root: Path, arrangement: str = RELEASE, cache: dict | None = None, within: str = "") -> Discovery:
    """:func:`discover` with the count of scan ids found twice (``cache``: folder listings to share).

    ``within`` (a folder under ``root``, ending in ``/``) keeps only the scans whose matched file lies in it;
    their other files (labels, channels) resolve anywhere under ``root``.
    """
    root = Path(root)
    default_splits = SplitResolver(spec, root, arrangement=arrangement)
    out = Discovery()
    seen: dict[str, str] = {}
    cache = {} if cache is None else cache  # folder listings shared by every layout's searches
    layouts = nnunet_layouts(spec, root) if arrangement == NNUNET and spec.nnunet is not None else spec.layouts_of(arrangement)
    for layout in layouts:
        hook = get_hook(layout.hook, "discover")
        if hook:
            found = hook(spec, layout, root, cache=cache)
            if isinstance(found, tuple):  # a discovery hook may return (cases, per-case problems)
                found = [*found[0], *found[1]]
            if within:  # the hook walked the whole root: keep what lies in ``within``
                found = [x for x in found if _path_of(x).startswith(within)]
        else:
            found = _discover_layout(spec, layout, root, out.problems, cache, within)
        splits = SplitResolver(spec, root, layout.official_split) if layout.official_split is not None else default_splits
        for cf in found:
            if isinstance(cf, CaseError):  # a discover hook reports a bad case and goes on
                out.problems.append(cf.located(dataset=spec.key))
                continue
            cf.arrangement = arrangement
            if not cf.official_split or cf.official_split == "unknown":
                cf.official_split = splits(cf.captures, cf.case_id)
            reason = _skipped(spec, cf.case_id)
            if reason:
                out.skipped.append((cf.case_id, reason))
                continue
            if cf.scan_id in seen:
                out.duplicates += 1
                out.problems.append(CaseError(f"scan id {cf.scan_id!r} found twice ({seen[cf.scan_id]} and {cf.images[0]}); the spec's case_id template is not unique, or the folder holds two copies of the release", dataset=spec.key, case=cf.case_id, file=cf.images[0]))
                continue
            seen[cf.scan_id] = cf.images[0]
            out.cases.append(cf)
    return out


def _path_of(found: CaseFiles | CaseError) -> str:
    """The file a hook matched for a case (or failed on)."""
    if isinstance(found, CaseError):
        return found.file or ""
    return found.captures.get("path") or found.images[0]


def _discover_layout(
    spec: DatasetSpec, layout: Layout, root: Path, problems: list[CaseError], cache: dict | None = None, within: str = ""
) -> list[CaseFiles]:
    pat = compile_pattern(layout.match)
    out = []
    cache = {} if cache is None else cache
    for rel, caps in find(root, pat, layout.exclude, cache, within):
        caps = dict(caps)
        caps["path"] = rel
        for name, tpl in layout.vars.items():
            caps[name] = fill(tpl, caps)
        case_id = fill(spec.case_id, caps)
        scan_id = f"{spec.key}/{case_id}" + (f"/{layout.scan_suffix}" if layout.scan_suffix else "")
        try:
            cf = case_files(spec, layout, root, rel, caps, case_id, scan_id, cache)
        except CaseError as e:
            problems.append(e.located(dataset=spec.key, case=case_id))
            continue
        out.append(cf)
    return out


def resolve(root: Path, template: str, caps: dict[str, str], cache: dict | None = None, dirs: bool = False) -> str:
    """A file template filled with the captures; one holding wildcards (``**/``, ``*``) is searched for.

    A search must find exactly one path (a release whose images sit in one of several folders, such as
    BTCV's ``Training/img`` or ``Testing/img``, or an archive unpacked with an extra folder level);
    none gives the template with its wildcards (reported as missing), several are an error.
    """
    if not has_wildcards(template):
        return fill(template, caps)
    filled = fill_partial(template, caps)
    pat = compile_pattern(filled.rstrip("/") + ("/" if dirs or template.endswith("/") else ""))
    hits = [r for r, _ in find(root, pat, (), cache)]
    if len(hits) > 1:
        raise CaseError(f"{len(hits)} files match {filled!r} ({', '.join(hits[:3])}{', ...' if len(hits) > 3 else ''}); expected one", file=hits[0])
    return hits[0] if hits else filled


def case_files(
    spec: DatasetSpec, layout: Layout, root: Path, rel: str, caps: dict[str, str], case_id: str, scan_id: str, cache: dict | None = None
) -> CaseFiles:
    image = resolve(root, layout.image, caps, cache, dirs=layout.image_is_dicom) if layout.image else rel
    images: list[str] = []
    index: list[int | None] = []
    if layout.channels:
        for ch in layout.channels:
            images.append(resolve(root, ch.file, caps, cache) if ch.file else image)
            index.append(ch.index)
    else:
        images, index = [image], [None]
    for p in dict.fromkeys(images):
        if not (root / p).exists():
            raise CaseError("image file is missing", file=p)
    cf = CaseFiles(spec.key, layout.name, caps, case_id, fill(spec.patient_id, caps), scan_id, images, index)
    if spec.sat_id is not None:
        cf.sat_id = fill(spec.sat_id, caps)
    if layout.label:
        lab = resolve(root, layout.label, caps, cache)
        if (root / lab).exists():
            cf.label = lab
        elif not layout.label_optional:
            raise CaseError("label file is missing", file=lab)
    elif layout.label_files:
        keys = [str(e.value) for e in spec.labels if e.classes]
        pat = compile_pattern(_partial_fill(layout.label_files, caps))
        present = {c.get("name"): r for r, c in find(root, pat, (), cache)}
        for e in spec.labels:
            if not e.classes:  # a known file that maps to no class: accepted, never read
                present.pop(str(e.value), None)
        for k in keys:
            if k in present:
                cf.label_files[k] = present.pop(k)
            else:
                cf.missing_label_keys.append(k)
        if present:
            extra = sorted(present)[:5]
            raise CaseError(f"mask file(s) not in the spec: {extra}", file=present[extra[0]])
        if cf.missing_label_keys and layout.missing_class_files == "error":
            raise CaseError(f"missing mask file(s) {cf.missing_label_keys[:5]}", file=_partial_fill(layout.label_files, caps))
        if not cf.label_files and not layout.label_optional:
            raise CaseError("no mask files found", file=_partial_fill(layout.label_files, caps))
    return cf


def _partial_fill(template: str, caps: dict[str, str]) -> str:
    """Fill every capture but ``{name}`` (which stays a capture for the class-file search)."""
    out = template
    for k, v in caps.items():
        if k != "name":
            out = out.replace("{" + k + "}", v)
    return out
