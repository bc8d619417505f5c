"""Real scans laid out as TotalSegmentator subjects: exact classes, voxel counts, world centroids and sides.

ct_small + seg_small_total (ids of the `total` map) become a v2 CT subject, mr_small + seg_small_total_mr (ids of
`total_mr`) a TotalSegmentator MRI subject, each with one binary mask file per class name as the releases ship
them (absent classes as empty masks). Every expectation is computed from the source label map and its affine.
"""

from __future__ import annotations

import json
import shutil

import nibabel as nib
import numpy as np
from satds.ingest import ingest
from satds.ontology import load_ontology
from satds.specs import get_spec


def lay_out_subject(real, tmp_path, image, seg, classmap, spec_key, image_name, subject):
    """Write <subject>/<image_name> and <subject>/segmentations/<class>.nii.gz for every class file of the spec."""
    names = json.loads((real / "classmaps.json").read_text())[classmap]
    src = nib.load(real / seg)
    lab = np.asarray(src.dataobj)
    root = tmp_path / spec_key
    (root / subject / "segmentations").mkdir(parents=True)
    shutil.copy(real / image, root / subject / image_name)
    value_of = {n: int(v) for v, n in names.items()}
    files = [str(e.value) for e in get_spec(spec_key).labels]
    for name in files:
        mask = (lab == value_of[name]).astype(np.uint8) if name in value_of else np.zeros(lab.shape, np.uint8)
        nib.save(nib.Nifti1Image(mask, src.affine), root / subject / "segmentations" / f"{name}.nii.gz")
    (root / "meta.csv").write_text(f"image_id;age;gender;institute;study_type;split\n{subject};60;m;A;ct;test\n")
    return root, lab, src.affine, names


def expected(lab, affine, names):
    """Per present class name: (voxels, world centroid in mm) from the source label map."""
    out = {}
    for v in np.unique(lab):
        if v == 0:
            continue
        ijk = np.argwhere(lab == v)
        out[names[str(int(v))]] = (len(ijk), affine[:3, :3] @ ijk.mean(axis=0) + affine[:3, 3])
    return out


def annotations(catalog):
    con = catalog.connect()
    return {r[0]: r[1:] for r in con.execute("SELECT class_name, voxels, centroid_mm, derived FROM annotations").fetchall()}


def check(catalog, exp, n_present):
    onto = load_ontology()
    got = annotations(catalog)
    present_source = {n for n, (vox, _, derived) in got.items() if vox > 0 and not derived}
    want = {onto.resolve(n).name: v for n, v in exp.items()}
    assert len(want) == n_present
    assert present_source == set(want)
    for name, (vox, cen) in want.items():
        assert got[name][0] == vox, name
        np.testing.assert_allclose(got[name][1], cen, atol=1e-6, err_msg=name)
    return got


def test_ct_small_as_totalsegmentator_v2_subject(realdata, tmp_path, catalog):
    root, lab, aff, names = lay_out_subject(realdata, tmp_path, "ct_small.nii.gz", "seg_small_total.nii.gz", "total",
                                            "totalsegmentator", "ct.nii.gz", "s0001")
    assert len(list((root / "s0001" / "segmentations").glob("*.nii.gz"))) == 117
    s = ingest("totalsegmentator", root, catalog, workers=1)
    assert (s.scans, s.failed) == (1, 0), s.failures
    exp = expected(lab, aff, names)
    got = check(catalog, exp, 41)
    [(split, axcodes)] = catalog.connect().execute("SELECT official_split, axcodes FROM scans").fetchall()
    assert (split, axcodes) == ("test", "RAS")
    # Absent classes are annotated with 0 voxels (the release's empty mask files): e.g. the brain, the heart.
    assert got["brain"][0] == 0 and got["heart"][0] == 0
    # Derived unions: exact sums of their disjoint parts.
    assert got["kidney"][0] == exp["kidney_left"][0] + exp["kidney_right"][0] == 3676 + 3947
    assert got["rib"][0] == sum(v for n, (v, _) in exp.items() if n.startswith("rib_")) == 1925
    # L3-L5 lie outside this scan: their files are empty, so they are annotated and absent and the union is L1 + L2.
    assert got["lumbar vertebrae"][0] == exp["vertebrae_L1"][0] + exp["vertebrae_L2"][0] == 2139 + 1868
    # Patient sides from the affine (RAS+: x grows to the patient's right).
    onto = load_ontology()
    x = {n: c[0] for n, (_, c) in exp.items()}
    mid = x["spinal_cord"]
    for left, right in [("kidney_left", "kidney_right"), ("adrenal_gland_left", "adrenal_gland_right"),
                        ("autochthon_left", "autochthon_right"), ("iliopsoas_left", "iliopsoas_right"),
                        *((f"rib_left_{i}", f"rib_right_{i}") for i in range(7, 13))]:
        assert x[left] < mid < x[right], (left, right)
        assert got[onto.resolve(left).name][1][0] < mid < got[onto.resolve(right).name][1][0]
    assert x["liver"] > mid > x["spleen"]
    assert x["lung_lower_lobe_left"] < mid < x["lung_lower_lobe_right"]


def test_mr_small_as_totalsegmentator_mri_subject(realdata, tmp_path, catalog):
    root, lab, aff, names = lay_out_subject(realdata, tmp_path, "mr_small.nii.gz", "seg_small_total_mr.nii.gz", "total_mr",
                                            "totalsegmentator_mri", "mri.nii.gz", "s0001")
    s = ingest("totalsegmentator_mri", root, catalog, workers=1)
    assert (s.scans, s.failed) == (1, 0), s.failures
    exp = expected(lab, aff, names)
    got = check(catalog, exp, 23)
    [(axcodes,)] = catalog.connect().execute("SELECT axcodes FROM scans").fetchall()
    assert axcodes == "LPS"  # stored with x growing to the patient's left: sides must come from the affine
    assert got["kidney"][0] == exp["kidney_left"][0] + exp["kidney_right"][0] == 1442 + 1721
    assert got["lung"][0] == exp["lung_right"][0] == 6 and got["left lung"][0] == 0
    x = {n: c[0] for n, (_, c) in exp.items()}
    mid = x["spinal_cord"]
    for left, right in [("kidney_left", "kidney_right"), ("adrenal_gland_left", "adrenal_gland_right"),
                        ("autochthon_left", "autochthon_right"), ("iliopsoas_left", "iliopsoas_right")]:
        assert x[left] < mid < x[right], (left, right)
    assert x["liver"] > mid > x["spleen"]
