"""Task recipes: which datasets and ontology classes make one nnU-Net task, and how partial labels are handled.

A recipe is a YAML file in ``pipelines/`` (or built ad hoc from the command line), validated by
:class:`Recipe`; unknown keys are errors naming the file and field. :meth:`Recipe.resolve` turns the class
names into ontology concepts and fixes, once, every decision that depends only on the recipe: label values,
the painting order of overlapping classes, and the nnU-Net regions. See ``docs/export-and-training.md``.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..errors import OntologyError, SpecError

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")

#: nnU-Net normalisation schemes chosen by channel name (``map_channel_name_to_normalization.py``).
NNUNET_CT_NAME = "ct"


class Recipe(BaseModel):
    """One nnU-Net task built from the catalog.

    ``classes`` are ontology names (preferred names, synonyms or ids) in label order: the first is label 1.
    """

    model_config = ConfigDict(extra="forbid")

    name: str
    dataset_id: int = Field(ge=1, le=999)
    description: str = ""
    reference: str = ""
    datasets: list[str] = Field(min_length=1)
    classes: list[str] = Field(min_length=1)
    # native: the source images reoriented to RAS, no respacing (nnU-Net plans its own spacing);
    # normalised: the outputs of `satds build` (already respaced, cropped and intensity-normalised).
    source: Literal["native", "normalised"] = "native"
    # ignore: voxels whose class cannot be known get nnU-Net's ignore label (highest value);
    # marginal: GT labels only, background where no task class is certain; class_status.json says, per case,
    #   which labels stand for "background or an unannotated class" (for the marginal/exclusion trainers);
    # pseudo: classes a scan does not annotate come from a `satds pseudolabel` folder;
    # background: only when every training scan annotates every class.
    partial_labels: Literal["ignore", "marginal", "pseudo", "background"] = "ignore"
    pseudo_labels: str | None = None  # folder written by `satds pseudolabel` (policy pseudo)
    # ignore policy: what voxels outside the body (CT below body_threshold_hu, other modalities exactly 0,
    # holes inside the body filled slice by slice) become when a class is unknown.
    outside_body: Literal["background", "ignore"] = "background"
    body_threshold_hu: float = -500.0
    channels: list[str] | None = None  # nnU-Net channel names (they pick its normalisation); default from the scans
    view: Literal["multichannel", "per_channel"] = "multichannel"
    overlap: Literal["precedence", "regions"] = "precedence"
    precedence: list[str] = Field(default_factory=list)  # classes that win overlaps, highest first
    duplicates: Literal["merge", "keep"] = "merge"  # identical images from several datasets: one case or several
    test_labels: bool = True  # write labelsTs for the test split (GT only; unknown classes = ignore value)
    file_ending: Literal[".nii.gz"] = ".nii.gz"

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME_RE.match(v):
            raise ValueError(f"{v!r} must be letters, digits, '_' or '-' (it becomes the folder DatasetNNN_{v})")
        return v

    @field_validator("datasets")
    @classmethod
    def _datasets(cls, v: list[str]) -> list[str]:
        v = [d.strip().lower() for d in v]
        dup = sorted({d for d in v if v.count(d) > 1})
        if dup:
            raise ValueError(f"dataset(s) listed twice: {dup}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> "Recipe":
        problems = []
        if self.overlap == "regions" and self.precedence:
            problems.append("overlap: regions takes its painting order from the ontology's nesting; drop `precedence`")
        if self.source == "normalised" and self.channels and any(c.strip().casefold() == NNUNET_CT_NAME for c in self.channels):
            problems.append(
                "source: normalised images are already clipped and z-scored by `satds build`; the channel name 'CT' would make "
                "nnU-Net normalise them a second time (use 'noNorm', the default for this source)"
            )
        if self.pseudo_labels and self.partial_labels != "pseudo":
            problems.append("pseudo_labels is only used with partial_labels: pseudo")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    # ------------------------------------------------------------------ identity
    @property
    def folder_name(self) -> str:
        return f"Dataset{self.dataset_id:03d}_{self.name}"

    def hash(self) -> str:
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def resolve(self, onto=None) -> "ResolvedRecipe":
        """Resolve every class name; raises SpecError listing all problems at once."""
        from ..ontology import load_ontology

        onto = onto or load_ontology()
        problems: list[str] = []
        ids: list[str] = []
        for n in self.classes:
            try:
                ids.append(onto.resolve(n).id)
            except OntologyError as e:
                problems.append(f"classes: {e}")
        seen: dict[str, str] = {}
        for n, cid in zip([n for n in self.classes if _resolves(onto, n)], ids):
            if cid in seen:
                problems.append(f"classes: {n!r} and {seen[cid]!r} are the same concept {cid!r}")
            seen.setdefault(cid, n)
        prec: list[str] = []
        for n in self.precedence:
            try:
                cid = onto.resolve(n).id
            except OntologyError as e:
                problems.append(f"precedence: {e}")
                continue
            if cid not in ids:
                problems.append(f"precedence: {n!r} is not one of the recipe's classes")
            elif cid in prec:
                problems.append(f"precedence: {n!r} listed twice")
            else:
                prec.append(cid)
        if problems:
            raise SpecError(f"recipe {self.name}: " + "; ".join(problems))
        return ResolvedRecipe(self, ids, [onto[c].name for c in ids], prec, onto)


def _resolves(onto, name: str) -> bool:
    try:
        onto.resolve(name)
        return True
    except OntologyError:
        return False


@dataclass
class ResolvedRecipe:
    """The recipe with classes as ontology ids and the overlap decisions made.

    ``order`` is the painting order (lowest priority first): a voxel covered by several classes gets the
    last of them. In ``regions`` mode and by default, a class the ontology nests inside another (a part or a
    lesion inside its organ) wins over its container; explicit ``precedence`` entries win over everything
    else (highest first); remaining ties go to the class listed earlier in ``classes``.
    """

    recipe: Recipe
    ids: list[str]
    names: list[str]
    precedence: list[str]
    onto: object = field(repr=False)

    def __post_init__(self) -> None:
        from .rules import Relations

        self.rel = Relations(self.onto)
        self.value = {c: i + 1 for i, c in enumerate(self.ids)}
        depth = {c: sum(self.rel.contains(o, c) for o in self.ids) for c in self.ids}
        rest = sorted((c for c in self.ids if c not in self.precedence), key=lambda c: (-depth[c], self.ids.index(c)))
        highest_first = list(self.precedence) + rest
        self.order = list(reversed(highest_first))
        self.rank = {c: i for i, c in enumerate(self.order)}  # higher rank wins

    @property
    def n(self) -> int:
        return len(self.ids)

    @property
    def ignore_value(self) -> int:
        return self.n + 1

    @property
    def label_dtype(self) -> str:
        """The dtype of every label map of the task (the ignore value N+1 included): uint8 up to 254 classes."""
        return "uint8" if self.ignore_value <= 255 else "uint16"

    def regions(self) -> tuple[dict[str, object], list[int]]:
        """nnU-Net region labels (class id → value or tuple of values) and ``regions_class_order``.

        The integer map stores, per voxel, the innermost class; the region of a class is its own value and
        those of the recipe classes nested in it. Regions are listed containers first so nnU-Net paints the
        inner ones last, giving back the same integer map at inference.
        """
        labels: dict[str, object] = {}
        order: list[int] = []
        for c in sorted(self.ids, key=lambda c: self.rank[c]):
            vals = sorted([self.value[c]] + [self.value[o] for o in self.ids if self.rel.contains(c, o)])
            labels[c] = vals[0] if len(vals) == 1 else vals
            order.append(self.value[c])
        return labels, order


# ---------------------------------------------------------------------- loading
def _format_error(where: str, e: ValidationError) -> str:
    lines = [f"{where}: invalid recipe"]
    for err in e.errors():
        loc = ".".join(str(x) for x in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        lines.append(f"  {loc}: {msg}" if loc else f"  {msg}")
    return "\n".join(lines)


def parse_recipe(data: dict, where: str = "recipe") -> Recipe:
    if not isinstance(data, dict):
        raise SpecError(f"{where}: a recipe must be a mapping")
    try:
        return Recipe.model_validate(data)
    except ValidationError as e:
        raise SpecError(_format_error(where, e)) from None


def read_recipe(path: str | Path) -> Recipe:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise SpecError(f"{path.name}: not valid YAML: {e}") from e
    return parse_recipe(data, path.name)


def yaml_kind(path: Path) -> str:
    """``kind`` of a file in ``pipelines/``: ``task`` (a recipe, the default) or ``training`` (a training
    pipeline such as ``universal33-paper.yaml``, read by :mod:`satds.train.pipeline`)."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return "task"
    return str(data.get("kind", "task")) if isinstance(data, dict) else "task"


def recipe_files() -> list[Path]:
    """The task recipes in ``pipelines/`` (training pipelines left out)."""
    from ..resources import pipelines_dir

    d = pipelines_dir()
    return sorted(f for f in d.glob("*.yaml") if yaml_kind(f) == "task") if d.exists() else []


def find_recipe(task: str, raw_dir: str | Path | None = None) -> Recipe:
    """A recipe by path, by name in ``pipelines/``, or from an exported task's ``satds_export.json``.

    ``task`` may be a YAML path, a recipe file stem or ``name`` (case-insensitive), or the name or id of a
    task already exported under ``raw_dir`` (ad-hoc tasks are found this way by ``satds train``).
    """
    p = Path(task)
    if p.suffix in (".yaml", ".yml") or p.is_file():
        if not p.is_file():
            raise SpecError(f"recipe file {task} does not exist")
        return read_recipe(p)
    key = task.casefold()
    for f in recipe_files():
        if f.stem.casefold() == key:
            return read_recipe(f)
    from ..resources import pipelines_dir

    if (pipelines_dir() / f"{task}.yaml").is_file():
        raise SpecError(f"pipelines/{task}.yaml is a training pipeline, not a task recipe: run it with `satds train --recipe {task}`")
    for f in recipe_files():
        try:
            r = read_recipe(f)
        except SpecError:
            continue
        if r.name.casefold() == key:
            return r
    if raw_dir is not None:
        folder = exported_folder(raw_dir, task)
        if folder is not None:
            prov = json.loads((folder / "satds_export.json").read_text())
            return parse_recipe(prov["recipe"], str(folder / "satds_export.json"))
    known = ", ".join(f.stem for f in recipe_files()) or "none"
    raise SpecError(f"no task recipe {task!r} (pipelines: {known}; nor an export of that name" + (f" under {raw_dir})" if raw_dir else ")"))


def exported_folder(raw_dir: str | Path, task: str) -> Path | None:
    """``raw_dir/DatasetNNN_Name`` written by satds whose name or id is ``task``."""
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        return None
    for d in sorted(raw_dir.glob("Dataset[0-9][0-9][0-9]_*")):
        if not (d / "satds_export.json").is_file():
            continue
        num, _, name = d.name[len("Dataset"):].partition("_")
        if name.casefold() == task.casefold() or (task.isdigit() and int(task) == int(num)):
            return d
    return None


def adhoc_recipe(*, name: str, dataset_id: int, classes: list[str], datasets: list[str], **kw) -> Recipe:
    data = {"name": name, "dataset_id": dataset_id, "classes": classes, "datasets": datasets}
    data.update({k: v for k, v in kw.items() if v is not None})
    return parse_recipe(data, f"task {name}")
