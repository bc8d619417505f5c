"""Issue 13, items 17-19: empty volumes, decompression bombs, geometry that places no voxel, a folder where a
file belongs, and `failures.file` relative to the dataset root. Each: the clear message, the failures row,
the other cases ingested, the sources unchanged."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from isal import isal_zlib

from satds.errors import GeometryError, ReadError
from satds.geometry import reorient
from satds.ingest import ingest
from satds.io import read_header, read_volume
from satds.phantoms import generate

from _robust import tree_digest


@pytest.fixture
def liver(tmp_path, monkeypatch):
    monkeypatch.delenv("SATDS_MAX_VOXELS", raising=False)
    return generate("msd_liver", tmp_path / "Task03_Liver")


def _failures(catalog):
    return catalog.connect().execute('SELECT "case", file, error_type, error FROM failures ORDER BY "case"').fetchall()


def _scans(catalog):
    return sorted(r[0] for r in catalog.connect().execute("SELECT case_id FROM scans").fetchall())


def _save_with_header(path, arr, affine):
    """A NIfTI whose sform is ``affine`` as given (nibabel cannot store a degenerate one as a qform)."""
    hdr = nib.Nifti1Header()
    hdr.set_data_dtype(arr.dtype)
    hdr.set_data_shape(arr.shape)
    hdr.set_sform(affine, code=1)
    hdr.set_qform(None, code=0)
    nib.save(nib.Nifti1Image(arr, None, hdr), path)


def _bomb(path, shape, dtype=np.int16, data_bytes=None):
    """A .nii.gz declaring ``shape`` whose gzip stream holds ``data_bytes`` zero bytes after the header."""
    hdr = nib.Nifti1Header()
    hdr.set_data_dtype(dtype)
    hdr.set_data_shape(shape)
    hdr.set_sform(np.diag([1.0, 1.0, 1.0, 1.0]), code=1)
    hdr.set_qform(np.diag([1.0, 1.0, 1.0, 1.0]), code=1)
    hdr.set_data_offset(352)
    head = hdr.binaryblock + b"\0" * 4  # 348 bytes + the empty extension flag: data start at 352
    comp = isal_zlib.compressobj(1, wbits=31)
    out = [comp.compress(head)]
    left = data_bytes or 0
    chunk = b"\0" * (1 << 20)
    while left > 0:
        out.append(comp.compress(chunk[: min(left, len(chunk))]))
        left -= len(chunk)
    out.append(comp.flush())
    path.write_bytes(b"".join(out))
    return path


def test_zero_spacing_nan_affine_and_a_folder_for_a_file(liver, catalog):
    img = nib.load(liver / "imagesTr/liver_0.nii.gz")
    arr = np.asarray(img.dataobj)
    zero = img.affine.copy()
    zero[:, 1] = 0  # the second voxel axis has no length
    _save_with_header(liver / "imagesTr/liver_0.nii.gz", arr, zero)
    nan = img.affine.copy()
    nan[0, 0] = np.nan
    _save_with_header(liver / "imagesTr/liver_1.nii.gz", arr, nan)
    lab = liver / "labelsTr/liver_7.nii.gz"
    lab.unlink()
    lab.mkdir()  # a folder where the label file belongs
    before = tree_digest(liver)

    s = ingest("msd_liver", liver, catalog, workers=1)
    assert s.scans == 0 and s.failed == 3
    rows = _failures(catalog)
    assert [r[:3] for r in rows] == [
        ("liver_0", "imagesTr/liver_0.nii.gz", "GeometryError"),
        ("liver_1", "imagesTr/liver_1.nii.gz", "GeometryError"),
        ("liver_7", "labelsTr/liver_7.nii.gz", "ReadError"),  # relative to the dataset root, not absolute
    ]
    assert rows[0][3] == "msd_liver/liver_0: imagesTr/liver_0.nii.gz: zero voxel spacing along array axis 1 (spacing [1.5, 0.0, 3.0] mm): the header does not say where the voxels are"
    assert rows[1][3] == "msd_liver/liver_1: imagesTr/liver_1.nii.gz: the affine holds NaN or infinite values: the header does not say where the voxels are"
    assert rows[2][3] == "msd_liver/liver_7: labelsTr/liver_7.nii.gz: a folder where a .nii.gz file is expected"
    assert not any(w in r[3] for r in rows for w in ("SVD", "nan in start_ornt", "DICOM"))
    assert tree_digest(liver) == before
    # the geometry functions say the same when handed such an affine directly
    with pytest.raises(GeometryError, match="NaN or infinite"):
        reorient(arr, nan)


def test_empty_volume_is_a_failure_not_a_scan(liver, catalog):
    img = nib.load(liver / "imagesTr/liver_1.nii.gz")
    nib.save(nib.Nifti1Image(np.zeros((0, 36, 24), np.int16), img.affine), liver / "imagesTr/liver_1.nii.gz")
    before = tree_digest(liver)
    s = ingest("msd_liver", liver, catalog, workers=1)
    assert s.scans == 2 and _scans(catalog) == ["liver_0", "liver_7"]
    [(case, file, kind, msg)] = _failures(catalog)
    assert (case, file, kind) == ("liver_1", "imagesTr/liver_1.nii.gz", "ReadError")
    assert msg == "msd_liver/liver_1: imagesTr/liver_1.nii.gz: empty volume: the header declares shape (0, 36, 24)"
    with pytest.raises(ReadError, match="empty volume"):
        read_header(liver / "imagesTr/liver_1.nii.gz")  # ingest --headers-only refuses it too
    assert tree_digest(liver) == before


def test_a_header_declaring_gigabytes_is_refused_before_inflating(liver, catalog, tmp_path):
    # 2048^3 int16 = 17 GB declared in a 400-byte file: refused on the header, with the default cap.
    p = _bomb(liver / "imagesTr/liver_7.nii.gz", (2048, 2048, 2048))
    assert p.stat().st_size < 1000
    before = tree_digest(liver)
    s = ingest("msd_liver", liver, catalog, workers=1)
    assert s.scans == 2 and _scans(catalog) == ["liver_0", "liver_1"]
    [(case, file, kind, msg)] = _failures(catalog)
    assert (case, file, kind) == ("liver_7", "imagesTr/liver_7.nii.gz", "ReadError")
    assert msg == (
        "msd_liver/liver_7: imagesTr/liver_7.nii.gz: the header declares shape (2048, 2048, 2048) = 8,589,934,592 voxels "
        "(17.2 GB), above the limit of 1,073,741,824 voxels; refusing to read it (set SATDS_MAX_VOXELS to raise the limit)"
    )
    assert tree_digest(liver) == before


def test_the_cap_is_configurable_and_never_more_than_declared_is_inflated(tmp_path, monkeypatch):
    # 64^3 int16 declared, and the stream really holds them (plus 8 MB more zeros than declared)
    p = _bomb(tmp_path / "x.nii.gz", (64, 64, 64), data_bytes=64**3 * 2 + (8 << 20))
    monkeypatch.setenv("SATDS_MAX_VOXELS", "100000")
    with pytest.raises(ReadError, match=r"declares shape \(64, 64, 64\) = 262,144 voxels .* above the limit of 100,000") as e:
        read_volume(p)
    assert e.value.file == str(p)
    monkeypatch.setenv("SATDS_MAX_VOXELS", "1e6")
    vol = read_volume(p)
    assert vol.shape == (64, 64, 64) and not vol.array.any()
    assert len(vol.array.base) == 352 + 64**3 * 2  # the 8 MB the header does not declare were never inflated
    # the other readers check their headers too
    from satds.io.itk import to_sitk

    import SimpleITK as sitk
    import nrrd

    sitk.WriteImage(to_sitk(np.zeros((64, 64, 32), np.uint8), np.eye(4)), str(tmp_path / "y.mha"))
    nrrd.write(str(tmp_path / "z.nrrd"), np.zeros((64, 64, 32), np.uint8), {"space": "left-posterior-superior", "space directions": np.eye(3).tolist()})
    np.save(tmp_path / "w.npy", np.zeros((64, 64, 32), np.uint8))
    monkeypatch.setenv("SATDS_MAX_VOXELS", "100000")
    for name in ("y.mha", "z.nrrd", "w.npy"):
        with pytest.raises(ReadError, match=r"declares shape \(64, 64, 32\) = 131,072 voxels"):
            read_volume(tmp_path / name)
    with pytest.raises(ReadError, match="131,072 voxels"):
        read_header(tmp_path / "y.mha")
    monkeypatch.setenv("SATDS_MAX_VOXELS", "many")
    with pytest.raises(Exception, match="SATDS_MAX_VOXELS='many' is not a positive number of voxels"):
        read_volume(tmp_path / "y.mha")


def test_a_dicom_series_is_checked_against_the_cap_before_decoding(realdata, tmp_path, monkeypatch):
    """The real 20-slice series (512 x 512 x 20 = 5,242,880 voxels) is read under the default cap and refused,
    naming the folder and the declared size, under a lower one, before SimpleITK decodes any pixel."""
    import shutil

    from satds.io.itk import read_dicom_series

    series = tmp_path / "ct_dicom"
    shutil.copytree(realdata / "ct_dicom", series)
    before = {p.name: p.read_bytes() for p in series.iterdir()}
    assert read_dicom_series(series).shape == (512, 512, 20)
    monkeypatch.setenv("SATDS_MAX_VOXELS", "5000000")
    with pytest.raises(ReadError, match=r"declares shape \(512, 512, 20\) = 5,242,880 voxels \(0.0105 GB\), above the limit of 5,000,000") as e:
        read_dicom_series(series)
    assert e.value.file == str(series)
    assert {p.name: p.read_bytes() for p in series.iterdir()} == before
