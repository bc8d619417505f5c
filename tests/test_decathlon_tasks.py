"""Decathlon tasks: the release's dataset.json decides label values; 4D channels; derived source values."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np

from satds.ingest import ingest
from satds.phantoms import generate


def test_prostate_zones_follow_dataset_json(tmp_path, catalog):
    """The release says 1 = PZ, 2 = TZ (SAT-DS assumed the reverse). A copy whose dataset.json says the
    reverse is read the reverse way: the table wins over the spec, with a note."""
    root = generate("msd_prostate", tmp_path / "Task05_Prostate")
    p = root / "labelsTr/prostate_00.nii.gz"
    img = nib.load(p)
    lab = np.asarray(img.dataobj).copy()
    lab[tuple(np.argwhere(lab == 1)[:3].T)] = 0  # make the two zones' sizes differ, so a swap shows
    nib.save(nib.Nifti1Image(lab, img.affine, img.header), p)
    n1, n2 = int((lab == 1).sum()), int((lab == 2).sum())
    assert n1 and n2 and n1 != n2
    s = ingest("msd_prostate", root, catalog, workers=1)
    assert (s.scans, s.failed) == (3, 0)
    q = "SELECT class_name, voxels FROM annotations WHERE scan_id = 'msd_prostate/prostate_00' AND class_name LIKE '%zone%'"
    assert dict(catalog.connect().execute(q).fetchall()) == {"peripheral zone of prostate": n1, "transition zone of prostate": n2}
    ds = json.loads((root / "dataset.json").read_text())
    ds["labels"] = {"0": "background", "1": "TZ", "2": "PZ"}
    (root / "dataset.json").write_text(json.dumps(ds))
    s = ingest("msd_prostate", root, catalog, workers=1)
    assert "label 'PZ' is value 2 in the release's table (spec said 1); the table wins" in s.notes
    assert dict(catalog.connect().execute(q).fetchall()) == {"peripheral zone of prostate": n2, "transition zone of prostate": n1}


def test_brain_tumour_channels_and_regions(tmp_path, catalog):
    root = generate("msd_braintumour", tmp_path / "Task01_BrainTumour")
    img = nib.load(root / "imagesTr/BRATS_001.nii.gz")
    assert img.shape[3] == 4
    s = ingest("msd_braintumour", root, catalog, workers=1)
    assert (s.scans, s.failed) == (3, 0)
    con = catalog.connect()
    [(channels, mods)] = con.execute("SELECT channels, channel_modalities FROM scans WHERE case_id = 'BRATS_001'").fetchall()
    assert list(channels) == ["FLAIR", "T1w", "t1gd", "T2w"]
    assert list(mods) == ["MRI FLAIR", "MRI T1", "MRI T1Gd", "MRI T2"]
    lab = np.asarray(nib.load(root / "labelsTr/BRATS_001.nii.gz").dataobj)
    rows = {r[0]: (r[1], sorted(r[2])) for r in con.execute("SELECT class_name, voxels, source_values FROM annotations WHERE scan_id = 'msd_braintumour/BRATS_001'").fetchall()}
    assert rows["brain tumor core"] == (int(np.isin(lab, [2, 3]).sum()), ["2", "3"])
    assert rows["brain tumor"] == (int((lab > 0).sum()), ["1", "2", "3"])
    assert rows["necrotic brain tumor core"] == (int((lab == 2).sum()), ["2"])
