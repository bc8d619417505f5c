"""``satds train --recipe universal33-paper`` on the demo's phantom releases, on a CPU, for real: the three
specialists (marginal/exclusion, nnU-Net, CPTM) with their smoke trainers, their predictions merged into
pseudo-labels, the universal model, ``satds evaluate`` on every test split; killed (SIGKILL to the whole
process group) once the first specialist is trained, then run again: finished stages are not redone, the
rest completes. Minutes on 2 cores (nnU-Net's plan/preprocess and process start-ups dominate)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from satds.demo import prepare

from _robust import satds_env

STAGE = "train-universal33-organs"


def stage_state(root) -> dict:
    f = root / "runs" / "universal33-paper" / "state.json"
    try:
        return json.loads(f.read_text()).get("stages", {})
    except (OSError, ValueError):
        return {}


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_universal33_paper_recipe_runs_every_stage_and_resumes_after_a_kill(tmp_path):
    pytest.importorskip("nnunetv2")
    cat = prepare(tmp_path / "demo", workers=1, real=False)
    root = tmp_path / "nn"
    cmd = [
        sys.executable, "-m", "satds", "train", "--recipe", "universal33-paper", "--smoke", "--epochs", "1",
        "--device", "cpu", "--processes", "1", "--root", str(root), "-C", str(cat.root),
    ]
    env = satds_env(COLUMNS="200")  # this checkout's satds, whatever is installed

    plan = subprocess.run([*cmd, "--dry-run"], capture_output=True, text=True, env=env)
    assert plan.returncode == 0, plan.stderr[-3000:]
    assert plan.stdout.count("[    pending]") == 21 and "nnUNetTrainer_SatdsCPTMSmoke" in plan.stdout

    # first run: killed with its nnU-Net children as soon as the organ specialist is recorded as trained
    log1 = open(tmp_path / "run1.log", "w")
    proc = subprocess.Popen(cmd, stdout=log1, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    t0 = time.monotonic()
    while stage_state(root).get(STAGE, {}).get("status") != "done":
        assert proc.poll() is None, (tmp_path / "run1.log").read_text()[-5000:]
        assert time.monotonic() - t0 < 900, "the organ specialist did not finish"
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    log1.close()
    first = stage_state(root)
    model = root / "nnUNet_results" / "Dataset534_Universal33Organs" / "nnUNetTrainer_SatdsMargExcSmoke__nnUNetPlans__3d_fullres" / "fold_all"
    ckpt = model / "checkpoint_final.pth"
    stamp = ckpt.stat().st_mtime_ns
    assert (root / "nnUNet_preprocessed" / "Dataset534_Universal33Organs" / "class_status.json").is_file()  # read by MargExc
    assert "Pseudo dice" in (tmp_path / "run1.log").read_text()  # the marginal/exclusion trainer trained

    # second run: goes on from the last finished stage
    run = subprocess.run(cmd, capture_output=True, text=True, env=env)
    out = run.stdout
    assert run.returncode == 0, (out + run.stderr)[-6000:]
    done_before = [k for k, v in first.items() if v["status"] == "done"]
    assert STAGE in done_before and len(done_before) >= 5  # 3 exports, the universal images, the organ model
    for name in done_before:
        assert f"== {name}: done, skipped" in out
    assert ckpt.stat().st_mtime_ns == stamp  # the trained specialist was not trained again
    state = stage_state(root)
    assert len(state) == 21 and all(v["status"] == "done" for v in state.values())
    assert "== train-universal33-spine: train Dataset536_Universal33Spine with nnUNetTrainer_SatdsCPTMSmoke" in out
    killed = [k for k, v in first.items() if v["status"] == "started"]
    if killed and killed[0].startswith("train-"):  # a training the kill interrupted continues from nnU-Net's checkpoint
        assert f"== {killed[0]}: " in out and "(continuing the interrupted training)" in out and " --c" in out

    # pseudo-labels: every training case of universal33, ground truth where annotated, each class's source
    run_dir = root / "runs" / "universal33-paper"
    idx = json.loads((run_dir / "pseudolabels" / "pseudolabels.json").read_text())
    assert set(idx["class_sources"]) == set(idx["classes"])  # 33 classes, each predicted by one specialist
    assert {os.path.basename(v) for v in idx["class_sources"].values()} == {"universal33-organs", "universal33-pelvis", "universal33-spine"}
    liver_case = next(c for c in idx["cases"].values() if c["scans"][0].startswith("msd_liver/"))
    assert liver_case["gt"] == ["liver"] and set(liver_case["pseudo"]) | set(liver_case["unlabelled"]) == set(idx["classes"]) - {"liver"}

    # the universal export trains on pseudo-labels: no ignore label, values 0-33
    u = root / "nnUNet_raw" / "Dataset533_Universal33"
    dj = json.loads((u / "dataset.json").read_text())
    assert dj["partial_labels"] == "pseudo" and "ignore" not in dj["labels"] and len(dj["labels"]) == 34
    import nibabel as nib

    for p in sorted((u / "labelsTr").glob("*.nii.gz"))[:3]:
        assert set(np.unique(np.asarray(nib.load(str(p)).dataobj)).tolist()) <= set(range(34))

    # satds evaluate on every model's test split, and the summary (the paper's Tables 3-4)
    for task, n_labels in (("universal33", 33), ("universal33-organs", 5), ("universal33-pelvis", 3), ("universal33-spine", 25)):
        csv = run_dir / "evaluation" / f"{task}.csv"
        import pandas as pd

        df = pd.read_csv(csv)
        assert list(df.columns) == ["case", "label", "class", "dsc", "nsd", "hd95", "hd", "ref_ml", "pred_ml", "flag", "error"]
        assert df["error"].isna().all()  # every case of every model was scored
        assert df["label"].between(1, n_labels).all() and df["dsc"].dropna().between(0, 1).all()
    assert (run_dir / "evaluation" / "universal33.vertebrae.csv").is_file()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert set(summary["models"]) == {"universal33", "universal33-organs", "universal33-pelvis", "universal33-spine"}
    assert set(summary["models"]["universal33"]["groups"]) >= {"organs", "pelvic bones", "all vertebrae"}
    assert summary["models"]["universal33-spine"]["trainer"] == "nnUNetTrainer_SatdsCPTMSmoke"
    assert "vertebrae" in summary["models"]["universal33-spine"]

    again = subprocess.run([*cmd, "--dry-run"], capture_output=True, text=True, env=env)
    assert again.stdout.count("[       done]") == 21
