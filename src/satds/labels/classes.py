"""What a dataset's labels mean in ontology terms: value/file → classes, lesion rules, derivations."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import OntologyError, ReadError, SpecError
from ..ontology import Ontology
from ..specs.model import DatasetSpec, LabelEntry

#: Pseudo-class for voxels whose classes are unknown (e.g. DAP Atlas "left to annotate"); never an
#: ontology class, never an annotation row; exports turn it into nnU-Net's ignore label.
UNLABELLED = "_unlabelled"


@dataclass
class DatasetClasses:
    """The resolved label semantics of one dataset (for one root, when a release table overrides)."""

    key: str
    value_map: dict[str, tuple[str, ...]]  # source key ("3", or a file key) → class ids
    source_names: dict[str, str]  # source key → the release's own name for it
    unlabelled: set[int]
    source_classes: list[str]
    lateral: dict[str, tuple[str, str]]  # bilateral concept → (left id, right id)
    derived: list[str]
    lesion_organs: dict[str, set[str]]  # organ → lesions it includes (lesions_in_organ)
    notes: list[str] = field(default_factory=list)
    outside_fov: set[str] = field(default_factory=set)  # known absent (outside the field of view), never listed

    @property
    def lateral_classes(self) -> list[str]:
        return [c for pair in self.lateral.values() for c in pair]

    def all_classes(self) -> list[str]:
        out: list[str] = []
        for c in [*self.source_classes, *self.lateral_classes, *self.derived]:
            if c not in out:
                out.append(c)
        return out

    def rule_of(self, cls: str) -> str:
        if cls in self.source_classes:
            return "lesions" if cls in self.lesion_organs else "source"
        if cls in self.lateral_classes:
            return "laterality"
        return "partition"

    def source_keys_of(self, cls: str, onto: Ontology, annotated: set[str]) -> list[str]:
        """Source values/files a class's voxels come from (through lesions, laterality, derivation)."""
        if cls in self.source_classes:
            lesions = self.lesion_organs.get(cls, set())
            parts = {cls} | (lesions if lesions <= set(annotated) else set())  # absorbed only when all are annotated
        elif cls in self.lateral_classes:
            parent = next(k for k, v in self.lateral.items() if cls in v)
            return self.source_keys_of(parent, onto, annotated)
        else:
            # Leaves among the non-derived classes (a derived class is itself in ``annotated``), with the
            # classes outside the field of view counting as known-absent.
            known = (set(annotated) - set(self.derived)) | self.outside_fov
            lesions = self.lesion_organs.get(cls, set())
            parts = (onto.leaves_of(cls, known) - self.outside_fov) | (lesions if lesions <= set(annotated) else set())
            keys: list[str] = []
            for p in sorted(parts):
                keys += [k for k in self.source_keys_of(p, onto, annotated) if k not in keys]
            return keys
        return [k for k, v in self.value_map.items() if set(v) & parts]


def resolve_classes(spec: DatasetSpec, onto: Ontology, table: dict[str, int] | None = None) -> DatasetClasses:
    """Resolve a spec's labels against the ontology (and the release's own label table, if read).

    ``table`` maps the release's label names to values (e.g. Decathlon ``dataset.json``); where a spec
    entry names its ``source``, the table's value wins over the spec's value.
    """
    notes: list[str] = []
    value_map: dict[str, tuple[str, ...]] = {}
    names: dict[str, str] = {}
    norm_table = {k.lower(): v for k, v in (table or {}).items()}
    for e in spec.labels:
        key = str(e.value)
        if table is not None and e.source is not None:
            v = norm_table.get(e.source.lower())
            if v is None:
                raise SpecError(f"{spec.key}: the release's label table has no label named {e.source!r} (it has {sorted(table)})")
            if str(v) != key:
                notes.append(f"label {e.source!r} is value {v} in the release's table (spec said {key}); the table wins")
            key = str(v)
        try:
            ids = tuple(onto.resolve(c).id for c in e.classes)
        except OntologyError as err:
            raise SpecError(f"{spec.key}: label {e.value!r}: {err}") from None
        if key in value_map:
            raise SpecError(f"{spec.key}: label value {key!r} is mapped twice")
        value_map[key] = ids
        if e.source:
            names[key] = e.source
    source_classes: list[str] = []
    for ids in value_map.values():
        for c in ids:
            if c not in source_classes:
                source_classes.append(c)

    def organ_lesions(organ: str) -> set[str]:
        scope = {organ} | onto.descendants(organ)
        if onto[organ].kind != "anatomy":
            return set()
        return {c for c in source_classes if onto[c].kind == "lesion" and onto[c].located_in in scope}

    lesion_organs: dict[str, set[str]] = {}
    if spec.lesions_in_organ:
        for organ in source_classes:
            if organ_lesions(organ):
                lesion_organs[organ] = organ_lesions(organ)

    lateral: dict[str, tuple[str, str]] = {}
    for name in spec.lateralize:
        try:
            c = onto.resolve(name)
        except OntologyError as err:
            raise SpecError(f"{spec.key}: lateralize: {err}") from None
        pair = None
        for part in c.partitions:
            sides = {onto[m].laterality: m for m in part}
            if set(sides) == {"left", "right"} and len(part) == 2:
                pair = (sides["left"], sides["right"])
        if pair is None:
            raise SpecError(f"{spec.key}: lateralize {c.name!r}: the ontology has no left/right partition of it")
        if c.id not in source_classes:
            raise SpecError(f"{spec.key}: lateralize {c.name!r}: not a source class of this dataset")
        lateral[c.id] = pair

    outside: set[str] = set()
    for name in spec.outside_field_of_view:
        try:
            outside.add(onto.resolve(name).id)
        except OntologyError as err:
            raise SpecError(f"{spec.key}: outside_field_of_view: {err}") from None
    known = set(source_classes) | {x for p in lateral.values() for x in p} | outside
    derived: list[str] = []
    for name in spec.derived:
        try:
            c = onto.resolve(name)
            onto.leaves_of(c.id, known | set(derived))
        except OntologyError as err:
            raise SpecError(f"{spec.key}: derived {name!r}: {err}") from None
        if c.id in known:
            raise SpecError(f"{spec.key}: derived {name!r} is already a source class")
        derived.append(c.id)
        # A derived organ includes the lesions located in it too (COVID-19's lung = left + right lung +
        # infection, while the sides stay without it, as the release codes them).
        if spec.lesions_in_organ and organ_lesions(c.id):
            lesion_organs[c.id] = organ_lesions(c.id)
    if spec.lesions_in_organ and not lesion_organs:
        raise SpecError(f"{spec.key}: lesions_in_organ is set but no source lesion lies in a source or derived organ")
    return DatasetClasses(spec.key, value_map, names, set(spec.unlabelled_values), source_classes, lateral, derived, lesion_organs, notes, outside)


def nnunet_labels(data: dict) -> tuple[list[tuple[str, int]], dict[str, list[int]]]:
    """(name, value) pairs and region labels (name → values) of an nnU-Net ``dataset.json``.

    v2 writes ``{name: value}`` (a region ``{name: [values]}``), v1 and the Decathlon ``{value: name}``;
    background (value 0) and nnU-Net's ``ignore`` label are left out here.
    """
    labels = data.get("labels") or {}
    if not isinstance(labels, dict):
        raise ReadError(f"'labels' must map label names to values, found a JSON {type(labels).__name__}", file="dataset.json")
    pairs: list[tuple[str, int]] = []
    regions: dict[str, list[int]] = {}
    for k, v in labels.items():
        try:
            if str(k).lstrip("-").isdigit():  # v1 / Decathlon: {value: name}
                pairs.append((str(v), int(k)))
            elif isinstance(v, (list, tuple)):
                vals = sorted({int(x) for x in v})
                if len(vals) == 1:
                    pairs.append((str(k), vals[0]))
                else:
                    regions[str(k)] = vals
            else:
                pairs.append((str(k), int(v)))
        except (TypeError, ValueError):
            raise ReadError(f"label {k!r}: {v!r} is not a label value", file="dataset.json") from None
    return [(n, v) for n, v in pairs if v != 0 and n.lower() != "ignore"], regions


def nnunet_entry(spec: DatasetSpec, onto: Ontology, name: str) -> LabelEntry | None:
    """The spec's label an nnU-Net label name stands for: by the release's own name (``source``), by the
    spec's key (a per-class file's name), else through the ontology (``Kidney`` → the kidney entry)."""
    low = name.strip().lower()
    for e in spec.labels:
        if e.source is not None and e.source.lower() == low:
            return e
    for e in spec.labels:
        if str(e.value).lower() == low:
            return e
    c = onto.try_resolve(name)
    if c is not None:
        for e in spec.labels:
            if [onto.resolve(x).id for x in e.classes] == [c.id]:
                return e
    return None


def nnunet_label_fit(spec: DatasetSpec, onto: Ontology, data: dict) -> float:
    """How well an nnU-Net folder's labels fit a spec: the share of the spec's classed labels its names
    (or regions) cover, 0 when a name is unknown to the spec (KiTS19's copy fits kits19, not kits23)."""
    pairs, regions = nnunet_labels(data)
    hit = set()
    for name, _ in pairs:
        e = nnunet_entry(spec, onto, name)
        if e is None:
            return 0.0
        hit.add(str(e.value))
    covered = {str(v) for vals in regions.values() for v in vals}
    if covered - hit - {str(e.value) for e in spec.labels}:
        return 0.0  # a region holds a value the spec does not have (KiTS23's cyst for kits19)
    wanted = [str(e.value) for e in spec.labels if e.classes]
    return sum(1 for k in wanted if k in hit or k in covered) / max(1, len(wanted))


def resolve_nnunet_classes(spec: DatasetSpec, onto: Ontology, data: dict) -> DatasetClasses:
    """A dataset's label semantics in an nnU-Net copy, from that folder's own ``dataset.json``.

    Each label name is matched to the spec's labels: by the release's name (``source``), by the spec's key
    (a per-class file's name, as TotalSegmentator's conversion names its values), or through the ontology
    (``Kidney`` → the spec's kidney entry). A name nobody knows is an error, never a guessed value. Region
    labels (nnU-Net's region-based training, e.g. KiTS23's ``kidney: [1, 2, 3]``) name a value only when a
    region holds that value alone; other values keep the spec's meaning of that value (a note says so).
    """
    pairs, regions = nnunet_labels(data)
    notes: list[str] = []
    entries = []
    named: set[int] = set()
    for name, value in pairs:
        e = nnunet_entry(spec, onto, name)
        if e is None:
            if value in spec.unlabelled_values:
                continue
            known = sorted({x.source or str(x.value) for x in spec.labels})
            raise SpecError(
                f"{spec.key}: dataset.json names value {value} {name!r}, which is neither a label of the spec ({', '.join(known[:12])}{', ...' if len(known) > 12 else ''}) nor an ontology class"
            )
        entries.append(LabelEntry(value=value, source=name, classes=list(e.classes), note=e.note))
        named.add(value)
    if regions:
        rest = sorted({v for vals in regions.values() for v in vals} - named)
        for v in rest:
            e = next((x for x in spec.labels if str(x.value) == str(v)), None)
            if e is None:
                raise SpecError(f"{spec.key}: dataset.json's region labels {regions} cover value {v}, which no region names alone and the spec does not know")
            entries.append(LabelEntry(value=v, source=e.source, classes=list(e.classes), note=e.note))
        if rest:
            notes.append(f"dataset.json's region labels ({', '.join(f'{k}: {v}' for k, v in regions.items())}) name no single value for {rest}; those keep the spec's meaning")
    copy = spec.model_copy(update={"labels": entries, "label_table": None})
    out = resolve_classes(copy, onto, None)
    out.notes = notes + out.notes
    return out


def read_label_table(path, fmt: str) -> dict[str, int]:
    """Name → value from a release's label table (``msd``: dataset.json ``labels`` {value: name}).

    A table that cannot be read (not UTF-8, broken JSON, not a mapping, a value that is not a number) is
    a :class:`ReadError` naming the file: every case depends on it.
    """
    from pathlib import Path

    p = Path(path)
    if fmt not in ("msd", "json_map", "csv"):  # an nnU-Net folder's dataset.json: resolve_nnunet_classes
        raise SpecError(f"unknown label table format {fmt!r}")
    try:
        return _parse_label_table(p, fmt)
    except (OSError, UnicodeDecodeError) as e:
        raise ReadError(f"the release's label table cannot be read ({e.__class__.__name__}: {e})", file=str(p)) from None
    except ValueError as e:  # json.JSONDecodeError, int() of a non-number, csv.Error
        raise ReadError(f"the release's label table is not valid {'CSV' if fmt == 'csv' else 'JSON'} ({e})", file=str(p)) from None


def _parse_label_table(p, fmt: str) -> dict[str, int]:
    import json

    if fmt in ("msd", "json_map"):
        data = json.loads(p.read_text(encoding="utf-8"))
        labels = data.get("labels", data) if fmt == "msd" and isinstance(data, dict) else data
        if not isinstance(labels, dict):
            raise ValueError(f"expected an object mapping values and names, found {type(labels).__name__}")
        out: dict[str, int] = {}
        for k, v in labels.items():
            if str(k).lstrip("-").isdigit():  # {value: name} (Decathlon)
                out[str(v)] = int(k)
            elif isinstance(v, int):  # {name: value} (nnU-Net v2 style)
                out[str(k)] = int(v)
        return out
    import csv

    with p.open(newline="", encoding="utf-8") as f:
        try:
            return {row[1]: int(row[0]) for row in csv.reader(f) if row and row[0].strip().isdigit()}
        except (csv.Error, IndexError) as e:
            raise ValueError(f"{e.__class__.__name__}: {e}") from None
