"""``satds pseudolabel``: predictions merged with each scan's ground truth, then exported with policy pseudo."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
from _export_phantoms import build_catalog, read, source_mask

from satds.errors import ExportError
from satds.export import adhoc_recipe, export_nnunet, make_pseudolabels


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pseudo")
    cat = build_catalog(tmp, ["msd_liver", "msd_spleen"])
    r = adhoc_recipe(name="LS", dataset_id=510, classes=["liver", "spleen"], datasets=["msd_liver", "msd_spleen"])
    exp = export_nnunet(cat, r, tmp / "raw_nn")
    return tmp, cat, r, exp


def boxes(shape):
    a = np.zeros(shape, bool)
    b = np.zeros(shape, bool)
    a[: shape[0] // 2] = True  # predicted spleen in the left half
    b[shape[0] // 2 :, :, : shape[2] // 2] = True  # predicted liver in a lower-right quarter
    return a, b


def write_predictions(exp, folder, dataset_json: dict | None = None, values=(2, 1)):
    """A fake model: per training case, value values[0] in box a and values[1] in box b."""
    folder.mkdir(parents=True, exist_ok=True)
    for cid in exp.plan.train_case_ids():
        img = nib.load(str(exp.folder / "imagesTr" / f"{cid}_0000.nii.gz"))
        a, b = boxes(img.shape)
        pred = np.zeros(img.shape, np.uint8)
        pred[a], pred[b] = values
        nib.save(nib.Nifti1Image(pred, img.affine), str(folder / f"{cid}.nii.gz"))
    if dataset_json:
        (folder / "dataset.json").write_text(json.dumps(dataset_json))


def expected(tmp, case_key, shape):
    ds, case = case_key.split("/")
    a, b = boxes(shape)
    out = np.zeros(shape, np.uint8)
    if ds == "msd_liver":
        liver = source_mask(tmp / "raw", ds, case, {1, 2})
        out[a & ~liver] = 2  # predicted spleen kept where the GT liver is not (GT wins conflicts)
        out[liver] = 1  # GT liver; predicted liver outside it (box b) is background: GT is authoritative
    else:
        spleen = source_mask(tmp / "raw", ds, case, {1})
        out[b & ~spleen] = 1
        out[spleen] = 2
    return out


def test_merge_exact_and_export_with_pseudo_policy(setup):
    tmp, cat, r, exp = setup
    preds = tmp / "preds"
    write_predictions(exp, preds)
    res = make_pseudolabels(cat, r, [preds], tmp / "pl")
    assert set(res.cases) == set(exp.plan.train_case_ids())
    for cid, info in res.cases.items():
        lab = read(tmp / "pl" / "labels" / f"{cid}.nii.gz")
        assert np.array_equal(lab, expected(tmp, info["scans"][0], lab.shape)), cid
        own = "liver" if cid.startswith("msd_liver") else "spleen"
        other = "spleen" if own == "liver" else "liver"
        assert info["gt"] == [own] and list(info["pseudo"]) == [other]
        assert info["predicted_voxels_overridden"] > 0
    index = json.loads((tmp / "pl" / "pseudolabels.json").read_text())
    assert index["classes"] == ["liver", "spleen"] and index["cases"]

    rp = adhoc_recipe(name="LS", dataset_id=510, classes=["liver", "spleen"], datasets=["msd_liver", "msd_spleen"], partial_labels="pseudo", pseudo_labels=str(tmp / "pl"))
    out = export_nnunet(cat, rp, tmp / "raw_pseudo")
    dj = json.loads((out.folder / "dataset.json").read_text())
    assert dj["labels"] == {"background": 0, "liver": 1, "spleen": 2}  # fully labelled: no ignore
    prov = json.loads((out.folder / "satds_export.json").read_text())
    assert prov["policy"] == "pseudo"
    for cid in res.cases:
        assert np.array_equal(read(out.folder / "labelsTr" / f"{cid}.nii.gz"), read(tmp / "pl" / "labels" / f"{cid}.nii.gz"))
        assert prov["cases"][cid]["labels"] == "gt+pseudo"
    # test labels stay ground truth only (ignore value for unknown classes), for honest evaluation
    test_ids = [c for c, v in prov["cases"].items() if v["split"] == "test"]
    assert test_ids and all(3 in np.unique(read(out.folder / "labelsTs" / f"{c}.nii.gz")) for c in test_ids)


def test_prediction_labels_mapped_by_name(setup):
    tmp, cat, r, exp = setup
    preds = tmp / "preds_named"
    # a specialist with its own label order: 1 = spleen, 2 = liver
    write_predictions(exp, preds, {"labels": {"background": 0, "spleen": 1, "liver": 2}}, values=(1, 2))
    res = make_pseudolabels(cat, r, [preds], tmp / "pl_named")
    for cid, info in res.cases.items():
        lab = read(tmp / "pl_named" / "labels" / f"{cid}.nii.gz")
        assert np.array_equal(lab, expected(tmp, info["scans"][0], lab.shape))


def test_prediction_folders_with_a_v1_or_a_region_dataset_json(setup):
    from satds.export.pseudolabel import prediction_sources

    tmp, cat, r, exp = setup
    preds = tmp / "preds_v1"
    # nnU-Net v1 / Decathlon layout, {value: name}, in the specialist's own order (1 = spleen, 2 = liver)
    write_predictions(exp, preds, {"labels": {"0": "background", "1": "spleen", "2": "liver"}}, values=(1, 2))
    res = make_pseudolabels(cat, r, [preds], tmp / "pl_v1")
    for cid, info in res.cases.items():
        lab = read(tmp / "pl_v1" / "labels" / f"{cid}.nii.gz")
        assert np.array_equal(lab, expected(tmp, info["scans"][0], lab.shape))
    # regions: a prediction holds regions_class_order's values; without that order the folder is a problem
    (preds / "dataset.json").write_text(json.dumps({"labels": {"background": 0, "liver": [1, 2], "spleen": 2}}))
    with pytest.raises(ExportError, match="regions_class_order"):
        make_pseudolabels(cat, r, [preds], tmp / "pl_regions")
    (preds / "dataset.json").write_text(json.dumps({"labels": {"background": 0, "liver": [1, 2], "spleen": 2}, "regions_class_order": [2, 1]}))
    (src,), problems = prediction_sources([preds], r.resolve())
    assert not problems and src.value_map.tolist()[:3] == [0, 2, 1]  # painted 2 = liver (task 1), 1 = spleen (task 2)


def test_two_prediction_folders_first_wins(setup):
    tmp, cat, r, exp = setup
    only_spleen, only_liver = tmp / "p_spleen", tmp / "p_liver"
    write_predictions(exp, only_spleen, {"labels": {"background": 0, "spleen": 1}}, values=(1, 0))
    write_predictions(exp, only_liver, {"labels": {"background": 0, "liver": 1, "spleen": 2}}, values=(2, 1))
    res = make_pseudolabels(cat, r, [only_spleen, only_liver], tmp / "pl_two")
    for cid, info in res.cases.items():
        lab = read(tmp / "pl_two" / "labels" / f"{cid}.nii.gz")
        assert np.array_equal(lab, expected(tmp, info["scans"][0], lab.shape))
        assert set(info["pseudo"].values()) <= {str(only_spleen.resolve()), str(only_liver.resolve())}
    idx = json.loads((tmp / "pl_two" / "pseudolabels.json").read_text())
    assert idx["class_sources"] == {"spleen": str(only_spleen.resolve()), "liver": str(only_liver.resolve())}


def test_missing_or_misplaced_predictions_are_problems(setup):
    tmp, cat, r, exp = setup
    preds = tmp / "preds_bad"
    write_predictions(exp, preds)
    ids = exp.plan.train_case_ids()
    (preds / f"{ids[0]}.nii.gz").unlink()
    img = nib.load(str(preds / f"{ids[1]}.nii.gz"))
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj)[:-2], img.affine), str(preds / f"{ids[1]}.nii.gz"))
    with pytest.raises(ExportError) as e:
        make_pseudolabels(cat, r, [preds], tmp / "pl_bad")
    text = str(e.value)
    assert ids[0] in text and "no prediction" in text
    assert ids[1] in text and "grid" in text


def test_pseudo_export_needs_the_folder(setup, tmp_path):
    _, cat, _, _ = setup
    rp = adhoc_recipe(name="LS", dataset_id=510, classes=["liver", "spleen"], datasets=["msd_liver", "msd_spleen"], partial_labels="pseudo")
    with pytest.raises(ExportError, match="pseudo-label folder"):
        export_nnunet(cat, rp, tmp_path)


def test_pseudolabel_command(setup):
    from typer.testing import CliRunner

    from satds.cli import app

    tmp, cat, _, exp = setup
    preds = tmp / "preds_cli"
    write_predictions(exp, preds)
    r = CliRunner().invoke(app, ["pseudolabel", "--task", "LS", "--predictions", str(preds), "--out", str(tmp / "pl_cli"), "--raw", str(tmp / "raw_nn"), "-C", str(cat.root)], terminal_width=200)
    assert r.exit_code == 0, r.output
    assert "wrote 3 label maps (3 with pseudo-labelled classes)" in r.output and "--policy pseudo" in r.output
