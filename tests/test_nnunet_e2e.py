"""The whole loop on a CPU, for real: phantoms → ingest → build → split → export → nnU-Net plan/preprocess
(with its integrity check) → train (smoke trainer) → predict one test case → Dice against its reference.

About 2-3 minutes on 2 cores (see docs/export-and-training.md for the measured steps).
"""

from __future__ import annotations

import json
import shutil

import nibabel as nib
import numpy as np
import pytest
from _export_phantoms import build_catalog
from typer.testing import CliRunner

from satds.cli import app

runner = CliRunner()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_export_train_predict_on_cpu(tmp_path):
    pytest.importorskip("nnunetv2")
    cat = build_catalog(tmp_path, ["msd_liver", "msd_spleen", "kits23"], build=True)
    root = tmp_path / "nnunet"
    raw = root / "nnUNet_raw"
    r = runner.invoke(app, ["export", "nnunet", "--classes", "liver,spleen,kidney", "--datasets", "msd_liver,msd_spleen,kits23", "--name", "E2E", "--dataset-id", "990", "--out", str(raw), "-C", str(cat.root)])
    assert r.exit_code == 0, r.output
    folder = raw / "Dataset990_E2E"
    splits = json.loads((folder / "splits_final.json").read_text())
    fold = next(i for i, f in enumerate(splits) if f["val"])

    common = ["--task", "E2E", "--root", str(root), "--trainer", "nnUNetTrainer_SatdsSmoke", "--device", "cpu", "--fold", str(fold), "--processes", "1"]
    r = runner.invoke(app, ["train", *common, "-C", str(cat.root)])
    assert r.exit_code == 0, r.output[-5000:]
    assert "nnUNetv2_plan_and_preprocess -d 990 --verify_dataset_integrity" in r.output  # the real integrity check ran
    assert "nnUNetv2_train 990 3d_fullres" in r.output and "export Dataset990_E2E is up to date" in r.output
    pre = root / "nnUNet_preprocessed" / "Dataset990_E2E"
    assert json.loads((pre / "splits_final.json").read_text()) == splits
    model = root / "nnUNet_results" / "Dataset990_E2E" / "nnUNetTrainer_SatdsSmoke__nnUNetPlans__3d_fullres" / f"fold_{fold}"
    assert (model / "checkpoint_final.pth").exists()

    case = sorted(p.name[: -len("_0000.nii.gz")] for p in (folder / "imagesTs").glob("*_0000.nii.gz"))[0]
    inp = tmp_path / "in"
    inp.mkdir()
    shutil.copy(folder / "imagesTs" / f"{case}_0000.nii.gz", inp)
    out = tmp_path / "pred"
    r = runner.invoke(app, ["predict", *common, "--input", str(inp), "--out", str(out), "--disable-tta"])
    assert r.exit_code == 0, r.output[-5000:]

    pred_img = nib.load(str(out / f"{case}.nii.gz"))
    ref_img = nib.load(str(folder / "labelsTs" / f"{case}.nii.gz"))
    pred, ref = np.asarray(pred_img.dataobj), np.asarray(ref_img.dataobj)
    assert pred.shape == ref.shape and np.allclose(pred_img.affine, ref_img.affine, atol=1e-4)
    assert set(np.unique(pred).tolist()) <= {0, 1, 2, 3}  # background + the task's 3 classes, never ignore
    # Evaluate with satds evaluate, labels named by the export's dataset.json.
    refdir = tmp_path / "ref"
    refdir.mkdir()
    shutil.copy(folder / "labelsTs" / f"{case}.nii.gz", refdir)
    csv = tmp_path / "scores.csv"
    r = runner.invoke(app, ["evaluate", "--pred", str(out), "--ref", str(refdir), "--labels", str(folder / "dataset.json"), "--out", str(csv)])
    assert r.exit_code == 0, r.output[-3000:]
    import pandas as pd

    scores = pd.read_csv(csv)
    assert list(scores.columns) == ["case", "label", "class", "dsc", "nsd", "hd95", "hd", "ref_ml", "pred_ml", "flag", "error"]
    assert scores["error"].isna().all()
    assert set(scores["label"]) <= {1, 2, 3} and (scores["case"] == case).all()
    assert scores["dsc"].dropna().between(0.0, 1.0).all()  # 3 iterations: the loop is real, the model is not
