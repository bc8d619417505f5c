"""Label coverage: present / absent / unknown per scan x class, derived classes known only from known parts."""

from __future__ import annotations

from satds.ingest import ingest
from satds.phantoms import generate


def status(catalog, scan_id, cls):
    return catalog.connect().execute("SELECT status FROM coverage WHERE scan_id = ? AND class_name = ?", [scan_id, cls]).fetchone()[0]


def test_coverage_states_and_derived_classes(tmp_path, catalog):
    ts = generate("totalsegmentator", tmp_path / "ts")
    # One subject lacks its left-kidney mask file: left kidney, and so kidney, are unknown there.
    subjects = sorted(p.name for p in ts.iterdir() if p.is_dir())
    (ts / subjects[0] / "segmentations/kidney_left.nii.gz").unlink()
    for key, root in (("totalsegmentator", ts), ("msd_liver", generate("msd_liver", tmp_path / "liver")), ("kits23", generate("kits23", tmp_path / "kits"))):
        s = ingest(key, root, catalog, workers=1)
        assert s.failed == 0, s.failures
    a, b = (f"totalsegmentator/{x}" for x in subjects[:2])
    assert status(catalog, a, "left kidney") == "unknown"
    assert status(catalog, a, "kidney") == "unknown"  # derived: needs both sides
    assert status(catalog, a, "right kidney") == "present"
    assert status(catalog, b, "kidney") == "present"
    # A dataset that does not annotate a class: unknown, never absent.
    assert status(catalog, "msd_liver/liver_0", "spleen") == "unknown"
    # Annotated but empty in this scan: absent (a true negative).
    assert status(catalog, "msd_liver/liver_7", "liver tumor") == "absent"
    # KiTS23 annotates kidney (with lesions); its sides are derived from the affine (lateralize), not its liver.
    assert status(catalog, "kits23/case_00000", "kidney") == "present"
    assert status(catalog, "kits23/case_00000", "left kidney") == "present"
    assert status(catalog, "kits23/case_00000", "liver") == "unknown"
    n = catalog.connect().execute("SELECT count(DISTINCT status) FROM coverage").fetchone()[0]
    assert n == 3
