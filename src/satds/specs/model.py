"""The dataset spec: everything satds knows about one public dataset, as validated data.

A spec is a YAML file in this folder. Unknown keys are errors (with the file and field path), so a typo
never silently changes behaviour. See ``docs/adding-a-dataset.md`` for a worked example.
"""

from __future__ import annotations

import re
from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from ..errors import SpecError

Modality = Literal["CT", "MRI", "PET"]

#: One token of a path pattern: ``{name}``, ``{name:regex}``, ``**/``, ``*`` or ``?`` (see satds.ingest.patterns).
PATTERN_TOKEN = re.compile(r"\{(\w+)(?::((?:[^{}]|\{[^{}]*\})+))?\}|\*\*/|\*|\?")


def capture_regexes(text: str, last: bool = False) -> dict[str, str | None]:
    """Each capture's own regex (None: the default one-component match), in order of first use.

    The first occurrence's regex wins (the one a pattern matches with: later uses of a name must repeat its
    text); ``last``: a later occurrence that gives a regex overrides it.
    """
    out: dict[str, str | None] = {}
    for m in PATTERN_TOKEN.finditer(text):
        name, rx = m.group(1), m.group(2)
        if name and (name not in out or (last and rx)):
            out[name] = rx
    return out


def constrain(text: str, constraints: dict[str, str]) -> str:
    """The pattern with each ``{name}`` that has no regex of its own given ``constraints[name]`` at its first use."""
    done: set[str] = set()

    def sub(m: re.Match) -> str:
        name = m.group(1)
        if name is None or name in done:
            return m.group(0)
        done.add(name)
        return m.group(0) if m.group(2) or name not in constraints else "{%s:%s}" % (name, constraints[name])

    return PATTERN_TOKEN.sub(sub, text)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Channel(Strict):
    """One input channel of a scan.

    Either the layout's image itself (``index`` picks a volume of a 4D file) or its own file (``file``,
    a template over the case's captures). Channels after the first are resampled onto the first
    channel's grid by physical space when their grid differs (PET onto CT).
    """

    name: str
    modality: Modality
    sequence: str | None = None  # e.g. T1, T2, FLAIR, ADC, SUV
    file: str | None = None
    index: int | None = None


class Template(Strict):
    """A value built from captures: ``template`` formatted, then (optionally) ``regex`` group 1 taken."""

    template: str
    regex: str | None = None

    @field_validator("regex")
    @classmethod
    def _re(cls, v: str | None) -> str | None:
        if v is not None:
            re.compile(v)
        return v


TemplateLike = Union[str, Template]


class SplitFromCapture(Strict):
    capture: str
    map: dict[str, str]
    default: str = "unknown"


class SplitFromTable(Strict):
    """Official split from a CSV/TSV table in the release (TotalSegmentator's ``meta.csv``)."""

    table: str
    key: TemplateLike
    key_column: str
    column: str
    map: dict[str, str] = Field(default_factory=dict)
    default: str = "unknown"
    sep: str | None = None


class SplitFromSections(Strict):
    """Official split from a text file of ``section:`` headers followed by names (CTSpine1K).

    ``sections`` is the file's path in the release (or several candidate paths, the first found is read);
    ``shipped`` names a verbatim copy kept in the specs folder, read when the release lacks the file.
    """

    sections: str | list[str]
    shipped: str | None = None
    key: TemplateLike
    map: dict[str, str]
    default: str = "unknown"


class SplitFromHook(Strict):
    hook: str


class SplitFromLists(Strict):
    """Official split from a JSON file in the release mapping split names to lists of case keys
    (ToothFairy's ``splits.json``: ``{"train": ["P1", ...], "val": [...], "test": [...]}``)."""

    lists: str  # the JSON file, relative to the dataset root
    key: TemplateLike = "{case}"
    map: dict[str, str] = Field(default_factory=dict)  # the release's split name → satds split
    default: str = "unknown"


class SplitFromNnunetSplits(Strict):
    """Official split from an nnU-Net splits file: ``splits_final.pkl`` (nnU-Net v1, read with a restricted
    unpickler) or ``splits_final.json`` (v2), a list of folds of ``{"train": [...], "val": [...]}`` (CTPelvic1K's
    also ``"test"``). ``fold`` is the fold the release documents as its division.

    ``nnunet_splits`` is the file's path in the release (or candidate paths, the first found is read);
    ``shipped`` names a copy of that fold under the specs folder, read when the release lacks the file.
    ``name`` (a regex, group 1) turns the file's case names into keys (CTPelvic1K's conversion prefixes
    ``train_``); ``unlisted`` gives, by key regex, the split of cases the file does not list but the release's
    documentation places.
    """

    nnunet_splits: str | list[str]
    fold: int = 0
    shipped: str | None = None
    name: str | None = None
    key: TemplateLike = "{case}"
    map: dict[str, str] = Field(default_factory=lambda: {"train": "train", "val": "validation", "test": "test"})
    unlisted: dict[str, str] = Field(default_factory=dict)
    default: str = "unknown"

    @field_validator("name")
    @classmethod
    def _name_re(cls, v: str | None) -> str | None:
        if v is not None and re.compile(v).groups < 1:
            raise ValueError(f"name {v!r} needs a group: group 1 is the key")
        return v

    @field_validator("unlisted")
    @classmethod
    def _unlisted_re(cls, v: dict[str, str]) -> dict[str, str]:
        for pattern in v:
            re.compile(pattern)
        return v


OfficialSplit = Union[
    Literal["train", "validation", "test", "unknown"],
    SplitFromCapture,
    SplitFromTable,
    SplitFromSections,
    SplitFromLists,
    SplitFromNnunetSplits,
    SplitFromHook,
]


class DefaultGeometry(Strict):
    """The geometry of files that carry none (raw ``.npy`` arrays), from the release's documentation:
    the voxel spacing in mm and the axis codes of the stored array axes (``IPL``: axis 0 runs to the
    patient's inferior, axis 1 posterior, axis 2 left). The first voxel sits at the world origin."""

    spacing: tuple[float, float, float]
    orientation: str

    @field_validator("orientation")
    @classmethod
    def _codes(cls, v: str) -> str:
        v = v.upper()
        axes = [{"R": 0, "L": 0, "A": 1, "P": 1, "S": 2, "I": 2}.get(c) for c in v]
        if len(v) != 3 or None in axes or len(set(axes)) != 3:
            raise ValueError(f"orientation {v!r} must be three axis codes, one of R/L, A/P, S/I each")
        return v


class Layout(Strict):
    """Where one kind of scan lives under the dataset root.

    Patterns are paths relative to the root with ``{name}`` captures (``{name:regex}`` for a custom
    match; a name used twice must match the same text), ``*`` (within one folder) and ``**/`` (any
    folders). ``match`` finds the scans; the other fields are templates filled with its captures.
    """

    name: str = ""
    scan_suffix: str | None = None  # appended to scan ids when one case has several scans (CHAOS T1/T2)
    official_split: "OfficialSplit | None" = None  # overrides the spec's rule for this layout
    match: str
    image: str | None = None  # default: the matched path
    image_is_dicom: bool = False  # the image template names a DICOM series folder
    channels: list[Channel] = Field(default_factory=list)
    label: str | None = None  # one integer label map (or one binary mask)
    label_files: str | None = None  # one file per class; {name} captures the file's key in `labels`
    label_optional: bool = False  # scans without the label file are ingested unlabelled, not failed
    missing_class_files: Literal["unknown", "absent", "error"] = "unknown"
    exclude: list[str] = Field(default_factory=list)  # fnmatch patterns on the matched path
    vars: dict[str, TemplateLike] = Field(default_factory=dict)  # extra captures computed from others
    hook: str | None = None  # a registered discovery/reading hook for what patterns cannot say
    default_geometry: DefaultGeometry | None = None  # for image/label files stored without geometry (.npy)
    # Added to every image voxel on read, so that arrays carry physical units (HU for CT): a release that
    # stores CT as unsigned HU + 1024 (KiPA22) says -1024 here. Labels are untouched.
    intensity_offset: float = 0.0

    @model_validator(mode="after")
    def _one_label_kind(self) -> "Layout":
        if self.label and self.label_files:
            raise ValueError("give either `label` or `label_files`, not both")
        return self


class LabelTable(Strict):
    """The release's own label table; it overrides the spec's values by matching ``source`` names."""

    file: str
    format: Literal["msd", "json_map", "csv", "nnunet"] = "msd"


class LabelEntry(Strict):
    """One source label: a value (label maps) or a file key (per-class files) → ontology class(es)."""

    value: int | str
    source: str | None = None  # the release's name for it (used with label_table)
    classes: list[str] = Field(default_factory=list)  # ontology names; several for overlap codes; none = ignored
    note: str | None = None
    # DICOM-SEG: which segment this entry is, by SegmentLabel or SegmentedPropertyTypeCodeSequence code
    # ("SCT:10200004"); segments are matched by these (default: ``source``), not by their number.
    segment: list[str] = Field(default_factory=list)

    @field_validator("segment", mode="before")
    @classmethod
    def _segment(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v


class Arrangement(Strict):
    """Another arrangement of the same release on users' disks: the folders SAT-DS's processing code
    expects (separate image and mask folders, renamed folders), a copy reorganised by a popular tool, ...

    Its layouts find the same scans as the publisher's arrangement (the spec's ``layout``) and must give
    the same catalog rows: case ids, patients, official splits, classes and voxels. So its patterns
    capture the names the spec's templates use (``case_id``, ``patient_id``, ``sat_id``, split keys,
    overlaps), and its layout names repeat the publisher's where a phantom case names one (``_layout``).
    A test writes every spec's phantom in every arrangement and compares the rows.
    """

    note: str  # where this arrangement comes from (e.g. "SAT-DS processor.py expects ...")
    layout: list[Layout]
    label_table: "LabelTable | None" = None  # where the release's label table lies here (default: the spec's)
    official_split: "OfficialSplit | None" = None  # the split rule here (default: the spec's)
    # Extra files of this arrangement's phantom (path → content as in ``Phantom.files``); None: the spec's.
    phantom_files: dict[str, Any] | None = None
    # Its files are conversions kept beside the release's own (HaN-Seg's CT converted from .nrrd to .nii.gz
    # next to it, as SAT-DS asks): a root holding both is the release plus its conversions, not two copies,
    # so the release's files are read, unless the conversions hold scans the release lacks.
    beside_release: bool = False

    @field_validator("layout", mode="before")
    @classmethod
    def _layout(cls, v: Any) -> Any:
        return [v] if isinstance(v, dict) else v


#: The name of the publisher's arrangement (the spec's own ``layout``).
RELEASE = "release"
#: The name of the arrangement the engine synthesises from a spec's ``nnunet`` block (an nnU-Net raw folder).
NNUNET = "nnunet"
#: The capture holding an nnU-Net folder's file ending (dataset.json ``file_ending``), and the endings read.
NNUNET_ENDING = "nnunet_ending"
NNUNET_ENDINGS = r"\.nii\.gz|\.nii|\.nrrd|\.mha"


class NnunetRaw(Strict):
    """The dataset is commonly passed around as an nnU-Net raw folder (``DatasetNNN_Name/imagesTr``,
    ``labelsTr``, ``imagesTs``, ``_0000`` channel files, ``dataset.json``): the engine then reads such a folder
    as the arrangement ``nnunet``, synthesised from the spec's own layouts.

    ``case`` is the nnU-Net case id as a template over the spec's captures, as the common conversions write it
    (nnU-Net's convert_MSD_dataset keeps ``liver_0``, Dataset220_KiTS2023 keeps ``case_00000``, BTCV's
    conversions ``img0001``), so the original case ids, patients and splits are recovered. Each of the spec's
    layouts goes to ``imagesTr``/``labelsTr`` when labelled (and not the official test set), else to
    ``imagesTs`` (labels, if any, in ``labelsTs``), unless ``folders`` says otherwise; layouts that land in
    one folder with the same case names are merged (their official split, if they differ, is then unknown:
    nnU-Net's AMOS conversion puts the validation cases into imagesTr). Channels are ``_0000``.. in the
    layout's order, matched by name to ``dataset.json``'s ``channel_names``; label values come from that
    ``dataset.json``, never from the spec's own values.
    """

    case: str = "{case}"
    folders: dict[str, Literal["imagesTr", "imagesTs"]] = Field(default_factory=dict)  # layout name → folder
    official_split: "OfficialSplit | None" = None  # for a copy, when the spec's rule reads a file nnU-Net drops
    note: str | None = None


class Overlap(Strict):
    """Another dataset that shares images or patients with this one."""

    dataset: str
    case: TemplateLike | None = None  # the other dataset's case id for this case (captures of this one)
    relation: Literal["same_image", "same_patient"] = "same_image"
    note: str | None = None


class Skip(Strict):
    case: str  # case id, or a regex when it starts with '^'
    reason: str


class SatClasses(Strict):
    """Where this dataset's classes deliberately differ from SAT-DS's list for it (checked by the tests)."""

    added: list[str] = Field(default_factory=list)  # classes satds carries that SAT-DS's list lacks
    removed: list[str] = Field(default_factory=list)  # SAT-DS classes satds does not carry
    why: str


class Phantom(Strict):
    """How to write a tiny faithful copy of the release (see :mod:`satds.phantoms`)."""

    cases: list[dict[str, str]] = Field(default_factory=list)  # captures of each generated scan
    shape: tuple[int, int, int] = (40, 36, 24)
    spacing: tuple[float, float, float] = (1.5, 1.5, 3.0)
    orientation: str = "LPS"  # axis codes of the arrays as written
    slice_first: bool = False  # arrays stored (slices, rows, columns) with a matching affine (KiTS)
    dtype: str = "int16"
    label_dtype: str = "uint8"
    files: dict[str, Any] = Field(default_factory=dict)  # extra files: path → text, or data (json/yaml/csv rows)
    junk: list[str] = Field(default_factory=list)  # stray files a real download carries (._*, .DS_Store)
    absent: dict[str, list[str]] = Field(default_factory=dict)  # case → source labels NOT painted
    unlabelled: list[str] = Field(default_factory=list)  # cases whose release has no label file at all
    hook: str | None = None  # a registered phantom writer for formats the generic writer lacks
    dicom_name: str = "{i:04d}.dcm"  # DICOM slice file names ({i}: 0-based slice, {n}: 1-based instance number)


class Expect(Strict):
    """What ingesting the phantom must give (checked by the test suite)."""

    scans: int | None = None
    classes: list[str] = Field(default_factory=list)  # preferred names a scan can carry (source + derived)
    patients: dict[str, str] = Field(default_factory=dict)  # case_id → patient_id
    splits: dict[str, str] = Field(default_factory=dict)  # case_id → official split
    channels: list[str] = Field(default_factory=list)
    failures: int = 0


class DatasetSpec(Strict):
    key: str
    title: str
    sat_key: str | None = None  # SAT-DS's name (terminology_list.json, split_json)
    modality: Modality
    region: str
    licence: str = "unknown"
    redistributable: bool = False
    url: str | None = None
    citation: str | None = None
    release: str | None = None
    scans: int | None = None  # expected number of scans in the full release
    implemented: bool = True
    extends: str | None = None

    layout: list[Layout]
    # Other arrangements of the same release (name → Arrangement); the publisher's is "release".
    arrangements: dict[str, Arrangement] = Field(default_factory=dict)
    case_id: TemplateLike = "{case}"
    patient_id: TemplateLike = "{case}"
    sat_id: TemplateLike | None = None  # SAT-DS's id for this scan in its split_json files
    official_split: OfficialSplit = "unknown"
    # The dataset as an nnU-Net raw folder (an arrangement the engine synthesises; see NnunetRaw).
    nnunet: NnunetRaw | None = None
    # Regexes for captures that the layouts leave open, in every arrangement (``{case: 'liver_[^/_]+'}``: the
    # Decathlon base's ``imagesTr/{case}.nii.gz`` then finds Task03's files only, not another task's).
    captures: dict[str, str] = Field(default_factory=dict)

    labels: list[LabelEntry] = Field(default_factory=list)
    # A view of a release keeps only these label keys (values or class-file keys); every other entry stays
    # known but carries no class, so its files are accepted and never read (TotalSegmentator's subsets).
    keep_labels: list[str] | None = None
    label_table: LabelTable | None = None
    unlabelled_values: list[int] = Field(default_factory=list)  # voxels whose classes are unknown (not background)
    lesions_in_organ: bool = False
    derived: list[str] = Field(default_factory=list)
    lateralize: list[str] = Field(default_factory=list)
    # Classes that never lie in this release's field of view (lumbar MRI shows no C1-T8): they count as
    # annotated-and-absent for derivations (so T9-T12 give "thoracic vertebrae" here) but are not listed.
    outside_field_of_view: list[str] = Field(default_factory=list)
    sat_classes: SatClasses | None = None

    skip: list[Skip] = Field(default_factory=list)
    overlaps: list[Overlap] = Field(default_factory=list)
    decisions: list[str] = Field(default_factory=list)  # where satds deliberately differs from SAT-DS
    phantom: Phantom = Field(default_factory=Phantom)
    expect: Expect = Field(default_factory=Expect)

    @field_validator("key")
    @classmethod
    def _key(cls, v: str) -> str:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", v):
            raise ValueError(f"dataset key {v!r} must be lower-case [a-z0-9_]")
        return v

    @field_validator("labels", mode="before")
    @classmethod
    def _labels(cls, v: Any) -> Any:
        """Accept the compact mapping form ``{1: liver, 2: [a, b], 3: null}`` as well as a list."""
        if isinstance(v, dict):
            out = []
            for value, cls_ in v.items():
                if isinstance(cls_, dict):
                    out.append({"value": value, **cls_})
                else:
                    out.append({"value": value, "classes": [] if cls_ is None else ([cls_] if isinstance(cls_, str) else list(cls_))})
            return out
        return v

    @field_validator("layout", mode="before")
    @classmethod
    def _layout(cls, v: Any) -> Any:
        return [v] if isinstance(v, dict) else v

    @model_validator(mode="after")
    def _keep_labels(self) -> "DatasetSpec":
        if self.keep_labels is None:
            return self
        keys = {str(e.value) for e in self.labels}
        unknown = sorted(set(self.keep_labels) - keys)
        if unknown:
            raise ValueError(f"keep_labels names label keys the spec does not have: {unknown[:5]}")
        keep = set(self.keep_labels)
        for e in self.labels:
            if str(e.value) not in keep:
                e.classes = []
        return self

    @model_validator(mode="after")
    def _captures(self) -> "DatasetSpec":
        for name, rx in self.captures.items():
            try:
                re.compile(rx)
            except re.error as e:
                raise ValueError(f"captures.{name}: bad regex {rx!r}: {e}") from None
        if self.captures:
            for lay in [*self.layout, *(x for a in self.arrangements.values() for x in a.layout)]:
                lay.match = constrain(lay.match, self.captures)
        return self

    @model_validator(mode="after")
    def _arrangement_names(self) -> "DatasetSpec":
        if RELEASE in self.arrangements:
            raise ValueError(f"arrangement name {RELEASE!r} is the spec's own layout; give the alternative another name")
        if NNUNET in self.arrangements:
            raise ValueError(f"arrangement name {NNUNET!r} is synthesised from the spec's `nnunet` block; declare that instead")
        if self.nnunet is not None:
            self._synthesised[NNUNET] = nnunet_arrangement(self)
        return self

    # Arrangements the engine makes from the spec (the nnU-Net raw folder); not part of the spec's data.
    _synthesised: dict[str, Arrangement] = PrivateAttr(default_factory=dict)

    @property
    def arrangement_names(self) -> list[str]:
        """The publisher's arrangement first, then the declared alternatives in the spec's order, then the
        synthesised ones (``nnunet``)."""
        return [RELEASE, *self.arrangements, *self._synthesised]

    def arrangement(self, name: str) -> "Arrangement | None":
        """A declared or synthesised alternative arrangement (None for the publisher's)."""
        if name == RELEASE:
            return None
        alt = self.arrangements.get(name) or self._synthesised.get(name)
        if alt is None:
            raise SpecError(f"{self.key}: no arrangement {name!r} (known: {self.arrangement_names})")
        return alt

    def layouts_of(self, arrangement: str = RELEASE) -> list[Layout]:
        alt = self.arrangement(arrangement)
        return self.layout if alt is None else alt.layout

    def label_table_of(self, arrangement: str = RELEASE) -> "LabelTable | None":
        alt = self.arrangement(arrangement)
        return alt.label_table if alt is not None and alt.label_table is not None else self.label_table

    def official_split_of(self, arrangement: str = RELEASE) -> "OfficialSplit":
        alt = self.arrangement(arrangement)
        return alt.official_split if alt is not None and alt.official_split is not None else self.official_split

    @property
    def label_kind(self) -> str:
        lay = self.layout[0]
        return "class_files" if lay.label_files else ("labelmap" if lay.label else "none")


# ---------------------------------------------------------------------- the nnU-Net raw folder arrangement
def template_names(text: str) -> list[str]:
    """The capture names a pattern or template uses, in order."""
    return list(capture_regexes(text))


def _template_text(t: "TemplateLike | None") -> str:
    return "" if t is None else (t.template if isinstance(t, Template) else t)


def nnunet_arrangement(spec: "DatasetSpec") -> Arrangement:
    """The arrangement of ``spec`` as an nnU-Net raw folder (see :class:`NnunetRaw`)."""
    nn = spec.nnunet
    assert nn is not None
    case_names = set(template_names(nn.case))
    layouts: list[Layout] = []
    for lay in spec.layout:
        if lay.hook:
            raise ValueError(f"nnunet: layout {lay.name or '(default)'} uses hook {lay.hook!r}; an nnU-Net copy is read by patterns only")
        regexes = {k: v for k, v in capture_regexes(lay.match, last=True).items() if v}
        if NNUNET_ENDING in template_names(lay.match):
            raise ValueError(f"capture name {NNUNET_ENDING!r} is reserved for nnU-Net file endings")
        missing = case_names - set(template_names(lay.match)) - set(lay.vars)
        if missing:
            raise ValueError(f"nnunet.case {nn.case!r} uses {sorted(missing)}, which layout {lay.name or '(default)'} does not capture")
        have = case_names | set(lay.vars)
        for what, t in (("case_id", spec.case_id), ("patient_id", spec.patient_id), ("sat_id", spec.sat_id), *((f"vars.{k}", v) for k, v in lay.vars.items())):
            lost = set(template_names(_template_text(t))) - have - {"path"}
            if lost:
                raise ValueError(f"nnunet: {what} needs {sorted(lost)}, which the nnU-Net case id {nn.case!r} does not keep")
        labelled = bool(lay.label or lay.label_files)
        folder = nn.folders.get(lay.name) or ("imagesTr" if labelled and lay.official_split != "test" else "imagesTs")
        labels = "labelsTr" if folder == "imagesTr" else "labelsTs"
        case_pattern = constrain(nn.case, regexes)
        channels = [
            Channel(name=c.name, modality=c.modality, sequence=c.sequence, file=f"{folder}/{nn.case}_{i:04d}{{{NNUNET_ENDING}}}")
            for i, c in enumerate(lay.channels)
        ]
        new = Layout(
            name=lay.name,
            scan_suffix=lay.scan_suffix,
            official_split=lay.official_split,
            match=f"{folder}/{case_pattern}_0000{{{NNUNET_ENDING}:{NNUNET_ENDINGS}}}",
            channels=channels,
            label=f"{labels}/{nn.case}{{{NNUNET_ENDING}}}" if labelled else None,
            label_optional=lay.label_optional or folder == "imagesTs",
            vars=lay.vars,
            default_geometry=lay.default_geometry,
            intensity_offset=lay.intensity_offset,
        )
        same = next((x for x in layouts if x.match == new.match), None)
        if same is None:
            layouts.append(new)
            continue
        # One nnU-Net folder holds several of the publisher's folders (train + validation): merged.
        same.name = f"{same.name}+{new.name}"
        if same.official_split != new.official_split:
            same.official_split = "unknown"
        same.label_optional = same.label_optional or new.label_optional
    return Arrangement(
        note=nn.note or "an nnU-Net raw folder (DatasetNNN_Name/imagesTr, labelsTr, imagesTs, dataset.json)",
        layout=layouts,
        label_table=LabelTable(file="dataset.json", format="nnunet"),
        official_split=nn.official_split,
    )
