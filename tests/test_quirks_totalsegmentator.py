"""TotalSegmentator: releases as specs, SAT-DS's subsets as views (`keep_labels`), the family's overlaps."""

from __future__ import annotations

import shutil

import pytest
import yaml

from satds.errors import SpecError
from satds.ingest import ingest
from satds.phantoms import generate
from satds.resources import specs_dir
from satds.specs import get_spec
from satds.specs.registry import clear_cache
from satds.split.engine import scan_rows
from satds.split.groups import make_groups


def rows(catalog, sql):
    return catalog.connect().execute(sql).fetchall()


def test_view_keeps_only_its_classes_and_never_reads_the_other_files(tmp_path, catalog):
    root = generate("totalsegmentator_organs", tmp_path / "ts")
    # The view's phantom is the release: all 104 v1 mask files per subject, the view's 20 of them painted.
    assert len(list((root / "s0000" / "segmentations").glob("*.nii.gz"))) == 104
    # An ignored file is never read: a corrupt one does not fail the case.
    (root / "s0000" / "segmentations" / "face.nii.gz").write_bytes(b"not a nifti")
    s = ingest("totalsegmentator_organs", root, catalog, workers=1)
    assert (s.scans, s.failed) == (2, 0), s.failures
    [(paths,)] = rows(catalog, "SELECT label_paths FROM scans WHERE case_id = 's0000'")
    assert len(paths) == 20 and "s0000/segmentations/liver.nii.gz" in paths
    assert not any("face" in p or "vertebrae" in p for p in paths)
    names = {r[0] for r in rows(catalog, "SELECT DISTINCT class_name FROM annotations")}
    assert len(names) == 24 and "face" not in names and "lumbar vertebrae 1 (l1)" not in names
    # A derived class lists the files its voxels come from.
    [(src, rule)] = rows(catalog, "SELECT source_values, rule FROM annotations WHERE scan_id = 'totalsegmentator_organs/s0000' AND class_name = 'kidney'")
    assert (sorted(src), rule) == (["kidney_left", "kidney_right"], "partition")
    [(src,)] = rows(catalog, "SELECT source_values FROM annotations WHERE scan_id = 'totalsegmentator_organs/s0000' AND class_name = 'lung upper lobe'")
    assert sorted(src) == ["lung_upper_lobe_left", "lung_upper_lobe_right"]


def test_release_reads_every_file_and_its_meta_csv_split(tmp_path, catalog):
    root = generate("totalsegmentator_v1", tmp_path / "ts")
    assert (root / "meta.csv").read_text().splitlines()[0] == "image_id;age;gender;institute;study_type;split"
    s = ingest("totalsegmentator_v1", root, catalog, workers=1)
    assert (s.scans, s.failed) == (2, 0), s.failures
    got = dict(rows(catalog, "SELECT case_id, official_split FROM scans"))
    assert got == {"s0000": "train", "s0011": "test"}
    [(paths,)] = rows(catalog, "SELECT label_paths FROM scans WHERE case_id = 's0011'")
    assert len(paths) == 104
    # The ribs and vertebrae are derived by the ontology's partitions.
    names = {r[0] for r in rows(catalog, "SELECT DISTINCT class_name FROM annotations")}
    assert {"rib", "left rib", "rib 7", "vertebrae", "thoracic vertebrae", "lung", "heart atrium", "face"} <= names


def test_unknown_keep_label_is_a_spec_error(tmp_path):
    folder = tmp_path / "specs"
    folder.mkdir()
    for k in ("totalsegmentator_v1", "totalsegmentator_organs"):
        shutil.copy(specs_dir() / f"{k}.yaml", folder / f"{k}.yaml")
    data = yaml.safe_load((folder / "totalsegmentator_organs.yaml").read_text())
    data["keep_labels"] = data["keep_labels"] + ["livre"]
    (folder / "totalsegmentator_organs.yaml").write_text(yaml.safe_dump(data))
    clear_cache()
    try:
        with pytest.raises(SpecError, match=r"keep_labels names label keys the spec does not have: \['livre'\]"):
            get_spec("totalsegmentator_organs", folder)
    finally:
        clear_cache()


def test_family_overlaps_link_the_same_subject_across_views(tmp_path, catalog):
    for key in ("totalsegmentator_organs", "totalsegmentator_ribs", "totalsegmentator_v2"):
        ingest(key, generate(key, tmp_path / key), catalog, workers=1)
    groups = make_groups(scan_rows(catalog))
    g = groups.group_of["totalsegmentator_organs/s0000"]
    assert groups.members[g] == ["totalsegmentator_organs/s0000", "totalsegmentator_ribs/s0000", "totalsegmentator_v2/s0000"]
    assert groups.group_of["totalsegmentator_ribs/s0011"] != g
    assert groups.group_of["totalsegmentator_v2/s0011"] == groups.group_of["totalsegmentator_organs/s0011"]
    assert groups.reasons[g] == {"declared same_image with totalsegmentator_organs", "declared same_image with totalsegmentator_ribs",
                                 "declared same_image with totalsegmentator_v2"}


def test_overlap_list_naming_the_spec_itself_adds_no_link():
    lone = {"scan_id": "totalsegmentator_organs/s0000", "dataset": "totalsegmentator_organs", "case_id": "s0000",
            "patient_id": "s0000", "fingerprint": None, "case_files": None}
    groups = make_groups([lone])
    assert list(groups.members.values()) == [["totalsegmentator_organs/s0000"]]
    assert groups.reasons == {}
