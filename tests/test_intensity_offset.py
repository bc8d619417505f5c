"""A layout's intensity_offset turns stored values into physical units on read (KiPA22: HU + 1024 stored)."""

from __future__ import annotations

import nibabel as nib
import numpy as np

from satds.ingest import discover
from satds.ingest.read import load_channels, shift_intensity
from satds.io import Volume
from satds.phantoms import generate
from satds.specs import get_spec


def test_kipa22_reads_hounsfield_units(tmp_path):
    root = generate("kipa22", tmp_path / "kipa")
    spec = get_spec("kipa22")
    case = discover(spec, root)[0][0]
    stored = np.asarray(nib.load(root / case.images[0]).dataobj)
    assert stored.dtype == np.uint16 and stored.min() == 0  # air clipped at 0, as the release stores it
    [vol] = load_channels(spec, case, root)
    assert vol.array.dtype == np.int32
    assert np.array_equal(vol.array, stored.astype(np.int32) - 1024)
    assert vol.array.min() == -1024 and -1030 < np.median(vol.array[vol.array < -500]) < -970  # air
    assert 0 < np.median(vol.array[vol.array > -500]) < 120  # soft tissue near 40 HU
    assert vol.meta["intensity_offset"] == -1024.0


def test_sega_offsets_per_sub_collection(tmp_path):
    root = generate("sega", tmp_path / "sega")
    spec = get_spec("sega")
    cases = {c.case_id: c for c in discover(spec, root)[0]}
    lows = {k: int(load_channels(spec, cases[k], root)[0].array.min()) for k in ("D1", "K10", "R1")}
    # Every sub-collection reads as HU (air near -1000) whatever its storage offset.
    assert all(-1060 < v < -960 for v in lows.values()), lows


def test_shift_intensity_dtypes():
    a = Volume(np.array([[[0, 65535]]], dtype=np.uint16), np.eye(4))
    assert shift_intensity(a, 0) is a
    s = shift_intensity(a, -1024)
    assert s.array.dtype == np.int32 and s.array.tolist() == [[[-1024, 64511]]]
    f = shift_intensity(a, -0.5)
    assert f.array.dtype == np.float32 and f.array.tolist() == [[[-0.5, 65534.5]]]
