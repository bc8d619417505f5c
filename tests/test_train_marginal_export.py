"""The ``marginal`` export policy and its ``class_status.json`` (what the marginal/exclusion trainer reads), and
the export package's import graph (no cycles, at module or function level)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest
from _export_phantoms import build_catalog, read, source_mask

from satds.export import adhoc_recipe, export_nnunet
from satds.export.labels import marginal_labels
from satds.export.recipe import find_recipe
from satds.export.rules import VoxelRules

F = frozenset


def rules(*classes: str, precedence=()) -> VoxelRules:
    r = adhoc_recipe(name="T", dataset_id=900, classes=list(classes), datasets=["x"], precedence=list(precedence) or None)
    return VoxelRules.of(r.resolve())


# ---------------------------------------------------------------------- the rules
@pytest.mark.parametrize(
    "classes, annotated, here",
    [
        (("liver", "spleen"), {"liver"}, set()),  # background may be spleen
        (("liver", "spleen"), {"liver"}, {"liver"}),  # liver certain, spleen cannot overlap it
        (("liver", "spleen"), {"liver", "stomach"}, {"stomach"}),  # stomach GT rules the spleen out
        (("liver", "liver tumor"), {"liver"}, {"liver"}),  # liver may hide the unannotated tumour
        (("liver", "liver tumor"), {"liver"}, set()),  # a tumour lies in the liver: background is certain
        (("L1", "L2", "sacrum"), {"lumbar_vertebrae", "sacrum"}, {"lumbar_vertebrae"}),  # inside the coarse label
        (("L1", "L2", "sacrum"), {"lumbar_vertebrae", "sacrum"}, set()),  # outside it: no vertebra
        (("liver", "spleen"), {"liver", "spleen"}, set()),  # fully annotated
    ],
)
def test_marginal_merges_exactly_where_ignore_ignores(classes, annotated, here):
    r = rules(*classes)
    ann, h = F(annotated), F(here)
    label, admitted = r.marginal(h, ann), r.admitted(h, ann)
    known = r.known(h, ann)
    assert label <= r.ignore_value - 1 and label in admitted  # never the ignore value; the label admits itself
    assert (known == r.ignore_value) == (len(admitted) > 1)
    if known != r.ignore_value:
        assert label == known  # where the GT decides, both policies write the same label


def test_marginal_admits_by_hand():
    r = rules("liver", "spleen", "liver tumor")  # 1 liver, 2 spleen, 3 tumour (nested in the liver, wins)
    ann = F({"liver"})
    assert r.marginal(F(), ann) == 0 and r.admitted(F(), ann) == {0, 2}  # not the tumour: it lies in the liver
    assert r.marginal(F({"liver"}), ann) == 1 and r.admitted(F({"liver"}), ann) == {1, 3}
    atoms = np.array([[[0, 1, 1, 0]]], dtype=np.uint8)
    lab, admits = marginal_labels(r, atoms, [F(), F({"liver"})], ann, atoms.shape)
    assert lab.tolist() == [[[0, 1, 1, 0]]] and admits == {0: [0, 2], 1: [1, 3]}


# ---------------------------------------------------------------------- the export
@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("marginal")
    cat = build_catalog(tmp, ["msd_liver", "msd_spleen"])
    r = adhoc_recipe(name="LSM", dataset_id=520, classes=["liver", "spleen"], datasets=["msd_liver", "msd_spleen"], partial_labels="marginal")
    ign = adhoc_recipe(name="LSI", dataset_id=521, classes=["liver", "spleen"], datasets=["msd_liver", "msd_spleen"])
    return tmp, cat, export_nnunet(cat, r, tmp / "raw_m"), export_nnunet(cat, ign, tmp / "raw_i")


def test_marginal_export_labels_and_class_status(exported):
    tmp, cat, res, ign = exported
    folder = res.folder
    dj = json.loads((folder / "dataset.json").read_text())
    assert dj["labels"] == {"background": 0, "liver": 1, "spleen": 2} and dj["partial_labels"] == "marginal"  # no ignore label
    status = json.loads((folder / "class_status.json").read_text())
    assert status["policy"] == "marginal" and status["labels"] == {"1": "liver", "2": "spleen"}
    con = cat.connect()
    voxels = {(s, c): v for s, c, v in con.execute("SELECT scan_id, class_id, voxels FROM annotations").fetchall()}
    prov = json.loads((folder / "satds_export.json").read_text())
    assert set(status["cases"]) == set(prov["cases"])
    n_train = 0
    for cid, c in prov["cases"].items():
        s = status["cases"][cid]
        scan = c["scans"][0]
        ds, case = scan.split("/")
        own, other = ("liver", "spleen") if ds == "msd_liver" else ("spleen", "liver")
        v_own, v_other = (1, 2) if own == "liver" else (2, 1)
        assert s["split"] == c["split"]
        assert s["status"][str(v_other)] == "unknown"
        assert s["status"][str(v_own)] == ("present" if voxels[(scan, own)] > 0 else "absent")
        if c["split"] != "train":
            assert s["admits"] == {}  # test labels are GT-only with the ignore value, as for every policy
            continue
        n_train += 1
        assert s["admits"] == {"0": [0, v_other]}  # background stands for "background or the other organ"
        lab = read(folder / "labelsTr" / f"{cid}.nii.gz")
        gt = source_mask(tmp / "raw", ds, case, {1, 2} if ds == "msd_liver" else {1})
        assert set(np.unique(lab)) <= {0, v_own} and np.array_equal(lab == v_own, gt)
        # the ignore policy's map agrees wherever it is not ignore
        li = read(ign.folder / "labelsTr" / f"{cid}.nii.gz")
        known = li != 3
        assert (li == 3).any() and np.array_equal(lab[known], li[known])
    assert n_train >= 2


def test_class_status_for_fully_annotated_tasks_has_no_admits(exported):
    _, cat, _, _ = exported
    out = Path(cat.root).parent / "raw_b"
    r = adhoc_recipe(name="LB", dataset_id=522, classes=["liver"], datasets=["msd_liver"], partial_labels="background")
    res = export_nnunet(cat, r, out)
    status = json.loads((res.folder / "class_status.json").read_text())
    assert status["policy"] == "background"
    assert all(c["admits"] == {} for c in status["cases"].values())
    assert {c["status"]["1"] for c in status["cases"].values() if c["split"] == "train"} <= {"present", "absent"}


def test_pipeline_recipes_and_task_recipes_are_told_apart():
    from satds.errors import SpecError
    from satds.train.pipeline import find_pipeline

    p = find_pipeline("universal33-paper")
    assert [m.task for m in p.specialists] == ["universal33-organs", "universal33-pelvis", "universal33-spine"]
    assert [m.trainer for m in p.specialists] == ["nnUNetTrainer_SatdsMargExc", "nnUNetTrainer_Satds", "nnUNetTrainer_SatdsCPTM"]
    for m in [*p.specialists, p.universal]:
        r = find_recipe(m.task)  # every model's task is a recipe of pipelines/
        r.resolve()
    assert find_recipe("universal33-organs").partial_labels == "marginal"
    assert set(find_recipe("universal33-organs").classes) | set(find_recipe("universal33-pelvis").classes) | set(find_recipe("universal33-spine").classes) == set(find_recipe("universal33").classes)
    with pytest.raises(SpecError, match="training pipeline"):
        find_recipe("universal33-paper")
    with pytest.raises(SpecError, match="no training pipeline"):
        find_pipeline("universal33")


# ---------------------------------------------------------------------- import graph
def _imports(path: Path, package: str) -> set[str]:
    """Modules of ``package`` that ``path`` imports anywhere (module level or inside functions)."""
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            mod = (node.module or "").split(".")[0]
            out |= {mod} if mod else {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(f"satds.{package}."):
            out.add(node.module.split(".")[2])
    return out


def test_export_package_has_no_import_cycle():
    import satds.export as pkg

    folder = Path(pkg.__file__).parent
    mods = {p.stem for p in folder.glob("*.py") if p.stem != "__init__"}
    graph = {m: _imports(folder / f"{m}.py", "export") & mods for m in mods}
    assert graph["nnunet"] >= {"cases", "pseudofiles", "problems", "class_status"}  # the parser sees real edges

    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for n in sorted(graph[m]):
            assert state.get(n) != 1, "import cycle: " + " -> ".join(path + [m, n])
            if n not in state:
                visit(n, path + [m])
        state[m] = 2

    for m in sorted(mods):
        if m not in state:
            visit(m, [])
