"""Every spec's release is read from whatever folder a user names, in every arrangement it may be kept in.

One parametrised test over all specs with a phantom: the release written three folders deep is found, to the
same cases, from its own folder and from each of its three ancestors (discovery level), and from one of its
own sub-folders (then the scans under that sub-folder); ingested from two levels above, it gives the rows
that each alternative arrangement (SAT-DS's folders) and the nnU-Net raw folder give: scans, patients,
splits, fingerprints, class voxels and centroids.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from satds.catalog import Catalog
from satds.ingest import ingest
from satds.ingest.roots import Anchor, FileIndex, locate
from satds.ingest.walk import walk
from satds.phantoms import generate
from satds.specs import get_spec, spec_keys
from satds.specs.model import NNUNET, RELEASE

KEYS = [k for k in spec_keys() if get_spec(k).phantom.cases]


def signature(cases, folder: Path) -> list[tuple]:
    """What discovery found, with absolute paths (whichever folder the paths are relative to)."""

    def at(p):
        return str(folder / p) if p else None

    return sorted(
        (c.scan_id, tuple(at(i) for i in c.images), at(c.label), tuple(sorted((k, at(v)) for k, v in c.label_files.items())), c.official_split, c.patient_id)
        for c in cases
    )


def matched(case) -> str:
    return case.captures.get("path") or case.images[0]


def rows(cat: Catalog) -> tuple[list, list]:
    con = cat.connect()
    scans = con.sql("SELECT scan_id, case_id, patient_id, sat_id, official_split, fingerprint FROM scans ORDER BY scan_id").fetchall()
    ann = con.sql("SELECT scan_id, class_name, voxels, centroid_mm FROM annotations ORDER BY scan_id, class_name").fetchall()
    return scans, ann


def nnunet_split_ok(spec, case_layout: dict[str, str], release_scan: tuple, nn_scan: tuple) -> bool:
    """An nnU-Net copy keeps a case's official split where its folder says it (a layout's constant split),
    says ``unknown`` where nnU-Net merged folders of different splits, and otherwise follows the spec's rule,
    which may need a file the copy lacks (TotalSegmentator's meta.csv): then ``unknown``."""
    lay = next(x for x in spec.layouts_of(NNUNET) if case_layout[release_scan[0]] in x.name.split("+"))
    rule = lay.official_split
    if rule is not None and isinstance(rule, str):
        return nn_scan[4] == rule
    return nn_scan[4] in (release_scan[4], "unknown")


@pytest.mark.parametrize("key", KEYS)
def test_release_is_read_from_any_root_and_every_arrangement(key, tmp_path):
    spec = get_spec(key)
    written = generate(key, tmp_path / "a" / "b" / "c" / "d" / "release")
    ref = locate(spec, written)
    assert not ref.ambiguous and ref.copies, ref.error()
    anchor = ref.copy.folder  # the phantom's folder, or a folder in it (a TCIA collection folder)
    want = signature(ref.copy.cases, anchor)
    assert len(want) == spec.expect.scans or spec.expect.scans is None
    # (a), (b): the release folder itself and each of its three ancestors.
    for root in (anchor, anchor.parent, anchor.parents[1], anchor.parents[2]):
        loc = locate(spec, root)
        assert not loc.ambiguous, loc.error()
        assert loc.copy is not None and loc.copy.folder == anchor and loc.copy.arrangement == RELEASE, (root, loc.error())
        assert signature(loc.copy.cases, loc.copy.folder) == want, root
    # A folder inside the release: the scans under it, their other files read where the release keeps them
    # (from the release's folder above, or from the sub-folder when it is a whole part of the release).
    subs = sorted({matched(c).split("/", 1)[0] for c in ref.copy.cases if "/" in matched(c)})
    if subs:
        loc = locate(spec, anchor / subs[0])
        assert loc.copy is not None and not loc.ambiguous, loc.error()
        assert loc.copy.folder in (anchor, anchor / subs[0])
        assert signature(loc.copy.cases, loc.copy.folder) == signature([c for c in ref.copy.cases if matched(c).startswith(subs[0] + "/")], anchor)
    if len(spec.arrangement_names) == 1:
        return
    # (c), (d): ingested from two levels above, the release's rows equal every other arrangement's.
    cat = Catalog(tmp_path / "cat-release")
    s = ingest(key, anchor.parents[1], cat, workers=1)
    assert (s.root, s.arrangement, s.failed) == (str(anchor), RELEASE, spec.expect.failures), s.failures
    expected = rows(cat)
    layout_of = {sid: lay for sid, lay in cat.connect().sql("SELECT scan_id, json_extract_string(case_files, '$.layout') FROM scans").fetchall()}
    for name in spec.arrangement_names[1:]:
        root = generate(key, tmp_path / name / "copy", arrangement=name)
        cat = Catalog(tmp_path / f"cat-{name}")
        s = ingest(key, root.parent, cat, workers=1)
        assert (s.arrangement, s.failed) == (name, spec.expect.failures), s.failures
        got = rows(cat)
        assert got[1] == expected[1], name  # class voxels and centroids
        if name == NNUNET:
            assert [r[:4] + r[5:] for r in got[0]] == [r[:4] + r[5:] for r in expected[0]]
            assert all(nnunet_split_ok(spec, layout_of, e, g) for e, g in zip(expected[0], got[0])), (expected[0], got[0])
        else:
            assert got[0] == expected[0], name


def test_nnunet_is_declared_for_the_datasets_passed_around_that_way():
    have = {k for k in spec_keys() if get_spec(k).nnunet is not None}
    decathlon = {k for k in spec_keys() if k.startswith("msd_")}
    assert have >= decathlon | {"amos22_ct", "amos22_mri", "kits19", "kits23", "btcv", "flare22", "word", "totalsegmentator", "totalsegmentator_v1", "totalsegmentator_mri", "abdomenatlas"}


def test_a_symlink_loop_is_walked_once_and_ingests(tmp_path, catalog):
    """A root holding links back up its own tree (a loop) walks each real folder once and ingests normally."""
    root = generate("msd_spleen", tmp_path / "Task09_Spleen")
    (root / "imagesTr" / "up").symlink_to(root, target_is_directory=True)
    (root / "loop").symlink_to(tmp_path, target_is_directory=True)
    (root / "labelsTr" / "again").symlink_to(root / "labelsTr", target_is_directory=True)
    folders = [rel for rel, _, _ in walk(tmp_path)]
    assert folders == ["", "Task09_Spleen/", "Task09_Spleen/imagesTr/", "Task09_Spleen/labelsTr/"]

    def hung(*_):
        raise TimeoutError("the walk did not end")

    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(60)
    try:
        s = ingest("msd_spleen", tmp_path, catalog, workers=1)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    assert (s.scans, s.failed, s.root) == (2, 0, str(root))


def test_a_link_to_a_release_elsewhere_is_followed(tmp_path, catalog):
    """~/data/Task09_Spleen links to the release kept on another disk: the link is the release's folder."""
    real = generate("msd_spleen", tmp_path / "disk" / "Task09_Spleen")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "Task09_Spleen").symlink_to(real, target_is_directory=True)
    s = ingest("msd_spleen", tmp_path / "data", catalog, workers=1)
    assert (s.scans, s.failed, s.root) == (2, 0, str(tmp_path / "data" / "Task09_Spleen"))  # the folder as the user sees it


def test_two_copies_at_different_depths_are_an_error_naming_both(tmp_path, catalog):
    generate("msd_liver", tmp_path / "downloads" / "Task03_Liver")
    generate("msd_liver", tmp_path / "backup" / "old" / "Task03_Liver")
    s = ingest("msd_liver", tmp_path, catalog, workers=1)
    assert (s.scans, s.failed) == (0, 1)
    msg = s.failures[0]
    assert "2 copies of the release" in msg and "at downloads/Task03_Liver" in msg and "at backup/old/Task03_Liver" in msg
    assert "--root" in msg
    # Naming one copy's folder (or one above it holding only it) resolves it.
    s = ingest("msd_liver", tmp_path / "backup", catalog, workers=1)
    assert (s.scans, s.failed, s.root) == (3, 0, str(tmp_path / "backup" / "old" / "Task03_Liver"))


def test_a_release_and_its_nnunet_copy_side_by_side_are_two_copies(tmp_path):
    generate("kits19", tmp_path / "kits19")
    generate("kits19", tmp_path / "nnUNet_raw" / "Dataset040_KiTS", arrangement=NNUNET)
    loc = locate(get_spec("kits19"), tmp_path)
    assert loc.ambiguous and sorted(c.arrangement for c in loc.copies) == ["nnunet", "release"]
    assert "--arrangement nnunet|release" in loc.error() and "--root" in loc.error()
    only = locate(get_spec("kits19"), tmp_path, NNUNET)
    assert not only.ambiguous and only.copy.folder == tmp_path / "nnUNet_raw" / "Dataset040_KiTS"


def test_folders_above_the_named_root_are_read_only_for_its_scans(tmp_path, catalog):
    """AbdomenCT-1K's image part named as the root: its scans, with their masks from the release's Mask/."""
    root = generate("abdomenct1k", tmp_path / "AbdomenCT-1K")
    parts = sorted(p.name for p in root.iterdir() if p.name.startswith("AbdomenCT-1K-ImagePart"))
    first = root / parts[0]
    n = len([p for p in first.iterdir() if p.name.endswith("_0000.nii.gz")])
    s = ingest("abdomenct1k", first, catalog, workers=1)
    assert (s.scans, s.failed, s.root) == (n, 0, str(root))
    labels = catalog.connect().sql("SELECT DISTINCT split_part(label_paths[1], '/', 1) FROM scans").fetchall()
    assert labels == [("Mask",)]


def test_index_matches_only_where_the_pattern_can_anchor(tmp_path):
    generate("msd_liver", tmp_path / "x" / "Task03_Liver")
    idx = FileIndex(tmp_path / "x" / "Task03_Liver" / "imagesTr")
    hits = dict(idx.matches("imagesTr/{case:liver_\\d+}.nii.gz"))
    assert sorted(hits) == ["liver_0.nii.gz", "liver_1.nii.gz", "liver_7.nii.gz"]
    assert {a for v in hits.values() for a in v} == {Anchor(up=1)}
    assert idx.where(next(iter(hits["liver_0.nii.gz"]))) == ".."
    assert dict(idx.matches("labelsTr/{case:liver_\\d+}.nii.gz")) == {}
