"""``satds train --recipe NAME``: a training pipeline (``pipelines/NAME.yaml`` with ``kind: training``), run
stage by stage and resumable.

The shipped pipeline, ``universal33-paper``, is the universal-33 paper's method (§2.2): specialists trained on
their task recipes, their predictions on every image of the universal task merged with the ground truth
(``satds pseudolabel``), the universal model trained on the pseudo-labelled export, every model scored on its
test split with ``satds evaluate``. The stages, in order:

    export-<specialist> ...     the specialist tasks from the catalog (``satds export nnunet``)
    images-<universal>          the universal task's images, the ones the specialists label
    train-<specialist> ...      plan/preprocess + nnU-Net training with the specialist's trainer
    predict-<specialist> ...    each specialist on every training image of the universal task
    pseudolabel                 predictions + ground truth, class by class
    export-<universal>          the universal task with the pseudo-label policy
    train-<universal>
    test-<model> ...            each model on its own test split
    evaluate-<model> ...        ``satds evaluate`` with the paper's protocol; ``summary.json``

Each stage has a key: a hash of what it depends on (the catalog's export keys, the trainer, the epochs, the
keys of earlier stages). A finished stage is recorded with its key in ``<root>/runs/<name>/state.json``
(written atomically); a later run skips every stage recorded with the same key whose outputs still exist, so
a killed run goes on from the last finished stage (a training stage it interrupted continues from nnU-Net's
latest checkpoint). Change the catalog, a recipe or ``--epochs`` and the stages that depend on it run again.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import SpecError
from .nnunet import Echo, NnunetPaths, TrainError, _print, model_folder, run_command

STATE = "state.json"
SUMMARY = "summary.json"


# ---------------------------------------------------------------------- the pipeline file
class ModelSpec(BaseModel):
    """One model of the pipeline: a task recipe (``pipelines/TASK.yaml``) and its trainers."""

    model_config = ConfigDict(extra="forbid")
    task: str
    trainer: str = "nnUNetTrainer_Satds"
    smoke_trainer: str = "nnUNetTrainer_SatdsSmoke"


def _spliced(v):
    """A list of class names in which an item may itself be a list, spliced in: a YAML alias of another list
    (``[*vertebrae, sacrum]``; YAML has no list concatenation)."""
    if isinstance(v, list):
        return [x for item in v for x in (item if isinstance(item, list) else [item])]
    return v


class Group(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    classes: list[str] = Field(min_length=1)
    distance: Literal["hd95", "hd"] = "hd95"

    @field_validator("classes", mode="before")
    @classmethod
    def _splice(cls, v):
        return _spliced(v)


class EvaluationSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    specialists: bool = True
    bones: list[str] = Field(default_factory=list)  # largest connected component before scoring
    vertebrae: list[str] = Field(default_factory=list)  # identification rate and localisation distance
    max_distance_mm: float = 20.0
    groups: list[Group] = Field(default_factory=list)

    @field_validator("bones", "vertebrae", mode="before")
    @classmethod
    def _splice(cls, v):
        return _spliced(v)


class TrainingPipeline(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["training"]
    name: str
    description: str = ""
    reference: str = ""
    config: str = "3d_fullres"
    fold: str = "all"
    specialists: list[ModelSpec] = Field(min_length=1)
    universal: ModelSpec
    evaluation: EvaluationSpec = Field(default_factory=EvaluationSpec)


def pipeline_files() -> list[Path]:
    from ..export.recipe import yaml_kind
    from ..resources import pipelines_dir

    d = pipelines_dir()
    return sorted(f for f in d.glob("*.yaml") if yaml_kind(f) == "training") if d.exists() else []


def read_pipeline(path: str | Path) -> TrainingPipeline:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise SpecError(f"{path.name}: cannot read the training pipeline: {e}") from e
    try:
        return TrainingPipeline.model_validate(data)
    except ValidationError as e:
        lines = [f"{path.name}: invalid training pipeline"]
        lines += [f"  {'.'.join(str(x) for x in err['loc'])}: {err['msg']}" for err in e.errors()]
        raise SpecError("\n".join(lines)) from None


def find_pipeline(name: str) -> TrainingPipeline:
    """A training pipeline by path or by name in ``pipelines/``."""
    p = Path(name)
    if p.suffix in (".yaml", ".yml"):
        if not p.is_file():
            raise SpecError(f"training pipeline {name} does not exist")
        return read_pipeline(p)
    for f in pipeline_files():
        if f.stem.casefold() == name.casefold():
            return read_pipeline(f)
    known = ", ".join(f.stem for f in pipeline_files()) or "none"
    raise SpecError(f"no training pipeline {name!r} in pipelines/ (training pipelines: {known})")


# ---------------------------------------------------------------------- stages
@dataclass
class Stage:
    name: str
    what: str  # one line for the plan
    key: str
    run: Callable[["Stage"], dict | None]
    done: Callable[[], bool]  # its outputs exist
    resumable: bool = False  # a training stage: continue from nnU-Net's checkpoint when it was interrupted
    info: dict = field(default_factory=dict)


def _hash(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _write_json(path: Path, data: dict) -> None:
    from ..io import write_text  # atomic: a temporary file renamed over the old one

    write_text(path, json.dumps(data, indent=1, default=str))


def _predictions_cover(images: Path, predictions: Path) -> Callable[[], bool]:
    """A stage's ``done``: every ``<case>_0000.nii.gz`` in ``images`` has its ``<case>.nii.gz`` in ``predictions``."""

    def done() -> bool:
        imgs = {p.name[: -len("_0000.nii.gz")] for p in images.glob("*_0000.nii.gz")}
        have = {p.name[: -len(".nii.gz")] for p in predictions.glob("*.nii.gz")}
        return bool(imgs) and imgs <= have

    return done


@dataclass
class StageResult:
    name: str
    status: str  # done (skipped), ran, planned, stale
    seconds: float = 0.0


class PipelineRun:
    """One run of a training pipeline under ``root`` (nnU-Net folders + ``runs/<name>/``)."""

    def __init__(
        self,
        pipeline: TrainingPipeline,
        *,
        catalog,
        root: str | Path = "nnunet",
        device: str = "auto",
        processes: int = 2,
        epochs: int | None = None,
        smoke: bool = False,
        fold: str | None = None,
        echo: Echo = _print,
    ):
        from ..export.recipe import find_recipe

        self.p = pipeline
        self.catalog = catalog
        self.paths = NnunetPaths(Path(root))
        self.device, self.processes, self.epochs, self.smoke = device, processes, epochs, smoke
        self.fold = str(fold if fold is not None else pipeline.fold)
        self.echo = echo
        self.dir = self.paths.root / "runs" / pipeline.name
        self.recipes = {m.task: find_recipe(m.task, self.paths.raw) for m in [*pipeline.specialists, pipeline.universal]}
        u = self.recipes[pipeline.universal.task]
        # the universal task's images are exported with the recipe's own policy (pseudo-labels do not exist yet)
        self.images_recipe = u if u.partial_labels != "pseudo" else u.model_copy(update={"partial_labels": "ignore", "pseudo_labels": None})
        self.pseudo_dir = self.dir / "pseudolabels"
        self.pseudo_recipe = u.model_copy(update={"partial_labels": "pseudo", "pseudo_labels": str(self.pseudo_dir)})
        self.state = self._read_state()

    # ------------------------------------------------------------------ helpers
    def trainer(self, m: ModelSpec) -> str:
        return m.smoke_trainer if self.smoke else m.trainer

    def recipe(self, m: ModelSpec):
        """The task ``m`` trains on: its recipe, or for the universal model the pseudo-labelled one."""
        return self.pseudo_recipe if m is self.p.universal else self.recipes[m.task]

    @property
    def predict_processes(self) -> int:
        """nnU-Net's prediction workers: 0 (its sequential predictor) unless more than one process is allowed."""
        return self.processes if self.processes > 1 else 0

    @property
    def models(self) -> list[ModelSpec]:
        return [*self.p.specialists, self.p.universal]

    def _read_state(self) -> dict:
        f = self.dir / STATE
        if f.exists():
            try:
                return json.loads(f.read_text())
            except ValueError:
                self.echo(f"warning: {f} is unreadable; every stage runs again")
        return {"pipeline": self.p.name, "stages": {}}

    def _record(self, stage: Stage, status: str, **extra) -> None:
        self.state.setdefault("stages", {})[stage.name] = {"key": stage.key, "status": status, "at": time.strftime("%Y-%m-%dT%H:%M:%S"), **extra}
        _write_json(self.dir / STATE, self.state)

    def _export_key(self, recipe) -> str:
        from ..export import export_nnunet

        return export_nnunet(self.catalog, recipe, self.paths.raw, dry_run=True).key

    def _images_folder(self) -> Path:
        return self.dir / "images" / self.images_recipe.folder_name

    def _test_dir(self, task: str) -> Path:
        return self.dir / "predictions" / f"test-{task}"

    def _model(self, m: ModelSpec) -> Path:
        return model_folder(self.paths, self.recipe(m).folder_name, self.trainer(m), self.p.config, self.fold)

    # ------------------------------------------------------------------ the stages
    def stages(self) -> list[Stage]:
        """Every stage with its key (computed from the catalog and the options; nothing runs)."""
        from ..export.nnunet import PROVENANCE
        from ..export.pseudofiles import PSEUDO_JSON

        p, out = self.p, []
        opts = {"config": p.config, "fold": self.fold, "epochs": self.epochs, "smoke": self.smoke}
        spec_keys: dict[str, str] = {}
        for m in p.specialists:
            r = self.recipes[m.task]
            k = self._export_key(r)
            spec_keys[m.task] = k
            out.append(Stage(f"export-{m.task}", f"export {r.folder_name} ({r.partial_labels} policy)", k, self._run_export(r), self._exported(r, k)))
        u = self.p.universal
        img_key = _hash("images", self._export_key(self.images_recipe))
        out.append(Stage(f"images-{u.task}", f"export {self.images_recipe.folder_name}'s images to {self._images_folder().parent}", img_key, self._run_images, self._images_done))
        train_keys = {}
        for m in p.specialists:
            r = self.recipes[m.task]
            k = _hash("train", spec_keys[m.task], self.trainer(m), opts)
            train_keys[m.task] = k
            out.append(Stage(f"train-{m.task}", f"train {r.folder_name} with {self.trainer(m)} (fold {self.fold})", k, self._run_train(m), self._trained(m), resumable=True))
        pred_keys = []
        for m in p.specialists:
            k = _hash("predict", train_keys[m.task], img_key)
            pred_keys.append(k)
            out.append(Stage(f"predict-{m.task}", f"predict {self.images_recipe.folder_name}/imagesTr with the {m.task} model", k, self._run_predict(m), self._predicted(m)))
        pl_key = _hash("pseudolabel", pred_keys)
        out.append(Stage("pseudolabel", f"merge the predictions with the ground truth into {self.pseudo_dir}", pl_key, self._run_pseudolabel, lambda: (self.pseudo_dir / PSEUDO_JSON).is_file()))
        ex_key = _hash("export-universal", pl_key, img_key)
        out.append(Stage(f"export-{u.task}", f"export {self.pseudo_recipe.folder_name} (pseudo policy)", ex_key, self._run_export_universal, lambda: (self.paths.raw / self.pseudo_recipe.folder_name / PROVENANCE).is_file()))
        utrain = _hash("train", ex_key, self.trainer(u), opts)
        train_keys[u.task] = utrain
        out.append(Stage(f"train-{u.task}", f"train {self.pseudo_recipe.folder_name} with {self.trainer(u)} (fold {self.fold})", utrain, self._run_train(u), self._trained(u), resumable=True))
        scored = [u] + (list(p.specialists) if p.evaluation.specialists else [])
        for m in scored:
            k = _hash("test", train_keys[m.task])
            out.append(Stage(f"test-{m.task}", f"predict the test split of {m.task}", k, self._run_test(m), self._tested(m)))
            ek = _hash("evaluate", k, p.evaluation.model_dump())
            out.append(Stage(f"evaluate-{m.task}", f"satds evaluate the {m.task} model on its test split", ek, self._run_evaluate(m), lambda m=m: self._scores(m).is_file()))
        return out

    # -- export
    def _run_export(self, recipe):
        def run(stage: Stage):
            from .nnunet import ensure_export

            ensure_export(self.catalog, recipe, self.paths, echo=self.echo)
            return None

        return run

    def _exported(self, recipe, key: str):
        from ..export.nnunet import PROVENANCE

        def done() -> bool:
            f = self.paths.raw / recipe.folder_name / PROVENANCE
            return f.is_file() and json.loads(f.read_text()).get("export_key") == key

        return done

    def _run_images(self, stage: Stage):
        import shutil

        from ..export import export_nnunet

        out = self._images_folder().parent
        shutil.rmtree(self._images_folder(), ignore_errors=True)  # this run's own folder: always written afresh
        self.echo(f"exporting the images of {self.images_recipe.folder_name} to {out}")
        export_nnunet(self.catalog, self.images_recipe, out)

    def _images_done(self) -> bool:
        return (self._images_folder() / "imagesTr").is_dir()

    # -- train
    def _run_train(self, m: ModelSpec):
        def run(stage: Stage):
            from .nnunet import train

            is_u = m is self.p.universal
            train(
                self.recipe(m), catalog=self.catalog, root=self.paths.root, config=self.p.config, fold=self.fold, trainer=self.trainer(m),
                device=self.device, processes=self.processes, pseudo_dir=self.pseudo_dir if is_u else None,
                continue_training=stage.info.get("continue", False), epochs=self.epochs, echo=self.echo,
            )

        return run

    def _trained(self, m: ModelSpec):
        return lambda: (self._model(m) / "checkpoint_final.pth").is_file()

    # -- predict (pseudo-label inputs)
    def _pred_dir(self, m: ModelSpec) -> Path:
        return self.dir / "predictions" / m.task

    def _run_predict(self, m: ModelSpec):
        def run(stage: Stage):
            from .nnunet import predict

            predict(
                self.recipes[m.task], out=self._pred_dir(m), root=self.paths.root, input_dir=self._images_folder() / "imagesTr",
                config=self.p.config, fold=self.fold, trainer=self.trainer(m), device=self.device,
                processes=self.predict_processes, echo=self.echo,
            )

        return run

    def _predicted(self, m: ModelSpec):
        return _predictions_cover(self._images_folder() / "imagesTr", self._pred_dir(m))

    # -- pseudo labels and the universal export
    def _run_pseudolabel(self, stage: Stage):
        from ..export import make_pseudolabels

        res = make_pseudolabels(self.catalog, self.images_recipe, [self._pred_dir(m) for m in self.p.specialists], self.pseudo_dir)
        for n in res.notes:
            self.echo(f"note: {n}")
        n_pseudo = sum(1 for c in res.cases.values() if c["pseudo"])
        self.echo(f"pseudo-labels: {len(res.cases)} cases ({n_pseudo} with predicted classes) in {self.pseudo_dir}")

    def _run_export_universal(self, stage: Stage):
        from .nnunet import ensure_export

        ensure_export(self.catalog, self.pseudo_recipe, self.paths, pseudo_dir=self.pseudo_dir, echo=self.echo)

    # -- test and evaluate
    def _raw(self, m: ModelSpec) -> Path:
        return self.paths.raw / self.recipe(m).folder_name

    def _run_test(self, m: ModelSpec):
        def run(stage: Stage):
            from .nnunet import predict

            if not any((self._raw(m) / "imagesTs").glob("*_0000.nii.gz")):
                raise TrainError(f"{self._raw(m)} has no test images to score the {m.task} model on")
            predict(
                self.recipe(m), out=self._test_dir(m.task), root=self.paths.root, split="test", config=self.p.config, fold=self.fold,
                trainer=self.trainer(m), device=self.device, processes=self.predict_processes, echo=self.echo,
            )

        return run

    def _tested(self, m: ModelSpec):
        return _predictions_cover(self._raw(m) / "imagesTs", self._test_dir(m.task))

    def _scores(self, m: ModelSpec) -> Path:
        return self.dir / "evaluation" / f"{m.task}.csv"

    def _label_of(self, m: ModelSpec) -> dict[str, int]:
        """Ontology class id → the label ``satds evaluate --labels`` reports it under, from ``m``'s dataset.json
        (a region's label is its ``regions_class_order`` entry)."""
        from ..evaluate.labels import from_dataset_json

        return {s.class_id: s.label for s in from_dataset_json(self._raw(m) / "dataset.json") if s.class_id}

    def _labels_of(self, m: ModelSpec, names: list[str]) -> list[int]:
        """Labels, in ``m``'s dataset.json, of the ontology classes ``names`` (those it has)."""
        from ..ontology import load_ontology

        onto = load_ontology()
        label_of = self._label_of(m)
        return sorted({label_of[c] for c in (onto.resolve(n).id for n in names) if c in label_of})

    def _run_evaluate(self, m: ModelSpec):
        def run(stage: Stage):
            ev = self.p.evaluation
            out = self._scores(m)
            out.parent.mkdir(parents=True, exist_ok=True)
            raw = self._raw(m)
            cmd = [
                sys.executable, "-m", "satds", "evaluate", "--pred", str(self._test_dir(m.task)), "--ref", str(raw / "labelsTs"),
                "--labels", str(raw / "dataset.json"), "--out", str(out), "--max-distance", str(ev.max_distance_mm),
            ]
            bones, verts = self._labels_of(m, ev.bones), self._labels_of(m, ev.vertebrae)
            if bones:
                cmd += ["--lcc-labels", ",".join(map(str, bones))]
            if verts:
                cmd += ["--vertebra-labels", ",".join(map(str, verts))]
            if self.catalog is not None and Path(self.catalog.root).exists():
                cmd += ["--catalog", str(self.catalog.root)]
            run_command(cmd, dict(os.environ), self.echo)
            summary = self.summarise()
            _write_json(self.dir / SUMMARY, summary)

        return run

    # ------------------------------------------------------------------ summary
    def summarise(self) -> dict:
        """Table 3/4 of the paper from the evaluation CSVs: per model and group, mean DSC and HD95 or HD (class
        means over the cases whose reference holds the class, then the mean over the group's classes), and the
        vertebra identification rate."""
        import pandas as pd

        from ..evaluate.aggregate import class_means
        from ..ontology import load_ontology

        onto = load_ontology()
        out: dict = {"pipeline": self.p.name, "smoke": self.smoke, "epochs": self.epochs, "fold": self.fold, "models": {}}
        for m in self.models:
            f = self._scores(m)
            if not f.is_file():
                continue
            df = pd.read_csv(f)
            label_of = self._label_of(m)
            # satds evaluate's class means over the cases whose reference holds the class (CTSpine1K's protocol
            # too): one mean over all cases, as the paper's tables, not a macro mean over datasets
            means = class_means(df.drop(columns="dataset", errors="ignore"), ("dsc", "hd95", "hd"), by=("label",)).set_index("label")
            row: dict = {"trainer": self.trainer(m), "cases": int(df["case"].nunique()), "groups": {}}
            for g in self.p.evaluation.groups:
                labels = [label_of[c] for c in (onto.resolve(n).id for n in g.classes) if c in label_of]
                sel = means.loc[[lab for lab in labels if lab in means.index]]
                if sel.empty:
                    continue
                row["groups"][g.name] = {"dsc": _num(sel["dsc"].mean()), g.distance: _num(sel[g.distance].mean()), "classes": int(len(sel))}
            vf = f.with_name(f.stem + ".vertebrae.csv")
            if vf.is_file():
                from ..evaluate.vertebrae import summarise as vsum

                v = vsum(pd.read_csv(vf).to_dict("records"))
                row["vertebrae"] = {"id_rate": _num(v["id_rate"]), "d_mm": _num(v["d"]), "identified": int(v["n_identified"]), "reference": int(v["n_ref"])}
            out["models"][m.task] = row
        return out

    # ------------------------------------------------------------------ running
    def status(self, stages: list[Stage]) -> list[StageResult]:
        rec = self.state.get("stages", {})
        res = []
        for s in stages:
            r = rec.get(s.name, {})
            if r.get("status") == "done" and r.get("key") == s.key and s.done():
                res.append(StageResult(s.name, "done"))
            elif r.get("key") not in (None, s.key):
                res.append(StageResult(s.name, "stale"))
            else:
                res.append(StageResult(s.name, "interrupted" if r.get("status") == "started" else "pending"))
        return res

    def run(self, *, until: str | None = None, dry_run: bool = False) -> list[StageResult]:
        stages = self.stages()
        names = [s.name for s in stages]
        if until is not None and until not in names:
            raise TrainError(f"--until {until!r} is not a stage of {self.p.name}: {', '.join(names)}")
        states = self.status(stages)
        if dry_run:
            self.echo(f"{self.p.name}: {len(stages)} stages under {self.dir}" + (" (smoke trainers)" if self.smoke else "") + (f", {self.epochs} epoch(s)" if self.epochs else ""))
            for s, st in zip(stages, states):
                self.echo(f"  [{st.status:>11}] {s.name:<28} {s.what}")
                if s.name == until:
                    break
            return states
        out = []
        for s, st in zip(stages, states):
            if st.status == "done":
                self.echo(f"== {s.name}: done, skipped")
                out.append(StageResult(s.name, "done"))
            else:
                rec = self.state.get("stages", {}).get(s.name, {})
                s.info["continue"] = s.resumable and rec.get("status") == "started" and rec.get("key") == s.key
                self.echo(f"== {s.name}: {s.what}" + (" (continuing the interrupted training)" if s.info["continue"] else ""))
                self._record(s, "started")
                t0 = time.monotonic()
                s.run(s)
                dt = time.monotonic() - t0
                if not s.done():
                    raise TrainError(f"stage {s.name} finished but its outputs are missing")
                self._record(s, "done", seconds=round(dt, 1))
                out.append(StageResult(s.name, "ran", dt))
            if s.name == until:
                self.echo(f"stopped after {until} (--until)")
                break
        return out


def _num(x) -> float | None:
    import math

    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(x) else x
