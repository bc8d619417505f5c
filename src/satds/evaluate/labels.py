"""Which label values are scored, and what they are called.

A class to score is a :class:`ClassSpec`: the number reported in the ``label`` column, the label-map
values that make it up (one, or several for an nnU-Net *region*), the source name, and, when the name
resolves in the ontology, the ontology concept (id, name, region, kind). Ontology lookups are optional:
an empty or missing ontology, or a name it does not know, leaves ``class_id``/``class_name`` empty.

Sources:

* nnU-Net v2 ``dataset.json`` (:func:`from_dataset_json`): ``"labels": {"background": 0, "liver": 1, ...}``.
  ``background`` (value 0) and ``ignore`` are skipped. A list value is a region (the union of those
  values); its reported label comes from ``regions_class_order``, which nnU-Net requires with regions.
  nnU-Net v1's (and the Decathlon's) ``{"0": "background", "1": "liver"}`` is read the same way.
* a task recipe ``pipelines/NAME.yaml`` (:func:`from_task`): only its ``classes`` key is read, an ordered
  list of ontology class names; label = position + 1. :func:`read_task_classes` is the one place that
  reads a recipe, to be swapped for the recipe module when it lands.
* nothing: every positive value found in either map is a class, named by its number.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, Sequence

from ..errors import SpecError


@dataclass(frozen=True)
class ClassSpec:
    label: int
    values: tuple[int, ...]
    name: str | None = None
    class_id: str | None = None
    class_name: str | None = None
    region: str | None = None
    kind: str | None = None

    @property
    def display(self) -> str:
        """The name shown in tables and in the CSV ``class`` column."""
        return self.class_name or self.name or str(self.label)


def from_values(values: Iterable[int]) -> list[ClassSpec]:
    return [ClassSpec(int(v), (int(v),)) for v in sorted(set(int(v) for v in values)) if v > 0]


def from_dataset_json(path: str | Path, *, resolve: bool = True) -> list[ClassSpec]:
    """Classes of an nnU-Net v2 ``dataset.json``."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise SpecError(f"{path}: cannot read dataset.json: {e}") from e
    labels = data.get("labels") if isinstance(data, dict) else None
    if not isinstance(labels, dict) or not labels:
        raise SpecError(f"{path}: no 'labels' mapping (nnU-Net v2 dataset.json expected)")
    if all(str(k).isdigit() for k in labels) and all(isinstance(v, str) for v in labels.values()):
        # nnU-Net v1 / Decathlon: value -> name
        names = list(labels.values())
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise SpecError(f"{path}: label name(s) {twice} are given to several values")
        labels = {name: int(v) for v, name in labels.items()}
    entries = [(str(k), v) for k, v in labels.items() if str(k).lower() not in {"background", "ignore"}]
    order = data.get("regions_class_order")
    has_regions = any(isinstance(v, (list, tuple)) for _, v in entries)
    if has_regions and (not isinstance(order, list) or len(order) != len(entries)):
        raise SpecError(
            f"{path}: label {next(k for k, v in entries if isinstance(v, (list, tuple)))!r} is a region (a list of values); "
            f"scoring regions needs 'regions_class_order' with one label per region ({len(entries)})"
        )
    specs = []
    for i, (name, v) in enumerate(entries):
        vals = tuple(v) if isinstance(v, (list, tuple)) else (v,)
        if not vals or not all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in vals):
            raise SpecError(f"{path}: label {name!r} must be a positive integer or a list of them, not {v!r}")
        label = int(order[i]) if has_regions else int(vals[0])
        specs.append(ClassSpec(label, tuple(int(x) for x in vals), name))
    _check_unique(specs, path)
    return with_ontology(specs) if resolve else specs


def read_task_classes(path: str | Path) -> list[str]:
    """The ``classes`` list of a task recipe (the only key evaluation needs)."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise SpecError(f"{path}: cannot read task recipe: {e}") from e
    classes = data.get("classes") if isinstance(data, dict) else None
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
        raise SpecError(f"{path}: 'classes' must be a non-empty list of class names")
    return classes


def task_path(task: str) -> Path:
    """``pipelines/NAME.yaml`` for a task name; a path to a YAML file is taken as it is."""
    p = Path(task)
    if p.suffix in {".yaml", ".yml"} and p.exists():
        return p
    from ..resources import pipelines_dir

    cand = pipelines_dir() / f"{task}.yaml"
    if not cand.exists():
        raise SpecError(f"no task recipe {task!r}: {cand} does not exist")
    return cand


def from_task(task: str, *, resolve: bool = True) -> list[ClassSpec]:
    path = task_path(task)
    specs = [ClassSpec(i + 1, (i + 1,), name) for i, name in enumerate(read_task_classes(path))]
    _check_unique(specs, path)
    return with_ontology(specs) if resolve else specs


def _check_unique(specs: Sequence[ClassSpec], path) -> None:
    seen: dict[int, str | None] = {}
    for s in specs:
        if s.label in seen:
            raise SpecError(f"{path}: label {s.label} is used by {seen[s.label]!r} and {s.name!r}")
        seen[s.label] = s.name


def _ontology():
    try:
        from ..ontology import load_ontology

        onto = load_ontology()
        return onto if len(onto) else None
    except Exception:  # missing, empty or invalid ontology: names only
        return None


def with_ontology(specs: Sequence[ClassSpec], ontology=None) -> list[ClassSpec]:
    """Fill ``class_id``, ``class_name``, ``region``, ``kind`` where a class's name resolves."""
    onto = ontology if ontology is not None else _ontology()
    if onto is None:
        return list(specs)
    out = []
    for s in specs:
        c = onto.try_resolve(s.name) if s.name else None
        out.append(replace(s, class_id=c.id, class_name=c.name, region=c.region, kind=c.kind) if c else s)
    return out


_RANGE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+))?\s*$")


def parse_ranges(text: str) -> list[int]:
    """``"1-25,27"`` → ``[1, ..., 25, 27]``."""
    out: list[int] = []
    for part in str(text).split(","):
        if not part.strip():
            continue
        m = _RANGE.match(part)
        if not m:
            raise ValueError(f"not a label or range: {part.strip()!r} (expected e.g. 1-25,27)")
        a = int(m.group(1))
        b = int(m.group(2)) if m.group(2) else a
        if b < a:
            raise ValueError(f"empty range {part.strip()!r}")
        out.extend(range(a, b + 1))
    return sorted(set(out))
