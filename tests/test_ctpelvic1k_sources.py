"""CTPelvic1K sub-datasets 1-5: each mask finds its source image by the release's name, once."""

from __future__ import annotations

import shutil

from satds.ingest import ingest
from satds.phantoms import generate


def test_every_source_found(tmp_path, catalog):
    root = generate("ctpelvic1k", tmp_path / "CTPelvic1K")
    s = ingest("ctpelvic1k", root, catalog, workers=1)
    assert (s.scans, s.failed) == (7, 0), s.failures
    got = dict(catalog.connect().execute("SELECT case_id, image_paths[1] FROM scans").fetchall())
    assert got == {
        "dataset1_img0001": "ABDOMEN/RawData/Training/img/img0001.nii.gz",
        "dataset2_1.3.6.1.4.1.9328.50.4.0001_3": "COLONOG/CT COLONOGRAPHY/1.3.6.1.4.1.9328.50.4.0001/01-01-2000-1-Abdomen24ACRINColoIRB2415-04 Adult-0.4.1/3.000000-Colosupine  1.0  B30f-0.4.3",
        "dataset3_colon_001": "MSD_T10/imagesTs/colon_001.nii.gz",
        "dataset4_case_00014": "KITS19/data/case_00014/imaging.nii.gz",
        "dataset5_0507688": "CERVIX/RawData/Training/img/0507688-Image.nii.gz",
        "dataset6_CLINIC_0001": "CTPelvic1K_dataset6_data/dataset6_CLINIC_0001_data.nii.gz",
        "dataset7_CLINIC_metal_0004": "CTPelvic1K_dataset7_data/dataset7_CLINIC_metal_0004_data.nii.gz",
    }


def test_missing_and_ambiguous_source_images(tmp_path, catalog):
    root = generate("ctpelvic1k", tmp_path / "CTPelvic1K")
    (root / "KITS19/data/case_00014/imaging.nii.gz").unlink()
    (root / "ABDOMEN/RawData/Testing/img").mkdir(parents=True)
    shutil.copy(root / "ABDOMEN/RawData/Training/img/img0001.nii.gz", root / "ABDOMEN/RawData/Testing/img/img0001.nii.gz")
    s = ingest("ctpelvic1k", root, catalog, workers=1)
    assert (s.scans, s.failed) == (5, 2)
    assert sorted(s.failures) == [
        "ctpelvic1k/dataset1_img0001: ABDOMEN/RawData/Testing/img/img0001.nii.gz: 2 files match 'ABDOMEN/**/img0001.nii.gz' "
        "(ABDOMEN/RawData/Testing/img/img0001.nii.gz, ABDOMEN/RawData/Training/img/img0001.nii.gz); expected one",
        "ctpelvic1k/dataset4_case_00014: KITS19/**/case_00014/imaging.nii.gz: image file is missing",
    ]
