"""satds.data on the demo catalog (universal-33 phantoms + the real CT/MR/DICOM scans): masks against the
catalog's voxel counts, statuses against ``coverage``, names against the ontology, patches, determinism,
DataLoader workers, the loss's masking, the cache, and the errors of bad requests."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _data_catalog import coverage, demo_catalog, voxels_target

from satds.data.cache import CACHE_VERSION
from satds.data import ABSENT, PRESENT, UNKNOWN, CatalogDataset, collate, masked_dice_bce, select_scans
from satds.errors import DataError
from satds.export.recipe import find_recipe
from satds.ontology import load_ontology

CODE = {PRESENT: "present", ABSENT: "absent", UNKNOWN: "unknown"}
REAL = ["btcv/img0041", "totalsegmentator/s9001", "totalsegmentator_mri/s9002", "ctspine1k/HN_P001"]
REAL_WHERE = "scan_id IN (" + ", ".join(f"'{s}'" for s in REAL) + ")"
REAL_CLASSES = ["liver", "spleen", "left kidney", "right kidney", "T12", "L1", "aorta", "kidney"]


@pytest.fixture(scope="module")
def cat(tmp_path_factory, realdata):
    return demo_catalog(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def u33():
    return find_recipe("universal33")


def _check_item(item, vt, cov):
    scan = item["meta"]["scan_id"]
    for k, cid in enumerate(item["class_ids"]):
        st = int(item["class_status"][k])
        assert CODE[st] == cov[(scan, cid)], (scan, cid)
        n = int(item["label"][k].sum())
        if st == UNKNOWN:
            assert n == 0 and (scan, cid) not in vt
        else:
            assert n == vt[(scan, cid)], (scan, cid, n, vt[(scan, cid)])
            assert (n > 0) == (st == PRESENT), (scan, cid)


def test_universal33_masks_statuses_and_names(cat, u33):
    ds = CatalogDataset(cat, u33.classes, datasets=u33.datasets)
    onto = load_ontology()
    ids = [onto.resolve(n).id for n in u33.classes]
    vt, cov = voxels_target(cat), coverage(cat)
    con = cat.connect()
    expected = {r[0] for r in con.execute("SELECT scan_id FROM scans WHERE dataset IN (SELECT unnest($d))", {"d": u33.datasets}).fetchall()}
    assert {it.scan_id for it in ds.items} == expected and len(ds) == len(expected)
    seen = set()
    for i in range(len(ds)):
        item = ds[i]
        assert item["class_ids"] == ids and item["class_names"] == [onto[c].name for c in ids]
        assert item["class_synonyms"] == [list(onto[c].synonyms) for c in ids]
        assert item["image"].dtype == torch.float32 and item["label"].dtype == torch.uint8
        assert item["image"].shape[1:] == item["label"].shape[1:] and item["label"].shape[0] == 33
        m = item["meta"]
        assert m["shape"] == list(item["image"].shape[1:]) and bool(item["valid"].all())
        assert np.allclose(m["affine"], np.asarray(ds.items[i].affine)) and m["spacing"] == [1.0, 1.0, 3.0]
        _check_item(item, vt, cov)
        seen |= {(c, int(s)) for c, s in zip(ids, item["class_status"])}
    # every universal33 class is present somewhere and unknown somewhere (partial labels), and L6 absent somewhere
    for c in ids:
        assert (c, PRESENT) in seen and (c, UNKNOWN) in seen, c
    assert any(s == ABSENT for _, s in seen)


def test_real_scans_through_a_dataloader_with_two_workers(cat):
    ds = CatalogDataset(cat, REAL_CLASSES, where=REAL_WHERE)
    assert sorted(it.scan_id for it in ds.items) == sorted(REAL)
    vt, cov = voxels_target(cat), coverage(cat)
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2, collate_fn=collate)
    n = 0
    for batch in loader:
        assert batch["image"].ndim == 5 and batch["label"].shape[1] == len(REAL_CLASSES)
        for b, meta in enumerate(batch["meta"]):
            x, y, z = meta["shape"]
            item = {"meta": meta, "class_ids": batch["class_ids"], "class_status": batch["class_status"][b], "label": batch["label"][b, :, :x, :y, :z]}
            _check_item(item, vt, cov)
            assert int(batch["valid"][b].sum()) == x * y * z  # padding to the batch's largest scan is marked
            assert int(batch["label"][b].sum()) == int(item["label"].sum())  # nothing on the padding
            n += 1
    assert n == len(REAL)
    # real anatomy: the liver lies on the patient's right (smaller world x is left in RAS)
    item = ds[[it.scan_id for it in ds.items].index("totalsegmentator/s9001")]
    liver = np.argwhere(item["label"][0].numpy())
    kidneys = [np.argwhere(item["label"][k].numpy()).mean(0) for k in (2, 3)]
    aff = item["meta"]["affine"]
    world = lambda ijk: aff[:3, :3] @ ijk + aff[:3, 3]  # noqa: E731
    assert world(kidneys[0])[0] < world(kidneys[1])[0]  # left kidney at smaller x
    assert world(liver.mean(0))[0] > world(kidneys[0])[0]
    # a nested class keeps its overlap: both kidneys lie inside "kidney"
    assert bool((item["label"][7] >= item["label"][2]).all()) and int(item["label"][2].sum()) > 0


def test_patches_are_seeded_foreground_balanced_and_read_only_the_patch(cat):
    kw = dict(where=REAL_WHERE, patch_size=(64, 64, 40), foreground=1.0, seed=7)
    a, b = CatalogDataset(cat, REAL_CLASSES, **kw), CatalogDataset(cat, REAL_CLASSES, **kw)
    volumes = CatalogDataset(cat, REAL_CLASSES, where=REAL_WHERE, cache=False)  # whole, from the .nii.gz
    for i in range(len(a)):
        x, y = a[i], b[i]
        assert x["meta"]["start"] == y["meta"]["start"] and torch.equal(x["image"], y["image"]) and torch.equal(x["label"], y["label"])
        assert tuple(x["image"].shape) == (1, 64, 64, 40) and tuple(x["label"].shape) == (len(REAL_CLASSES), 64, 64, 40)
        # z: the scans have 13-30 slices, so the patch pads; valid marks exactly the scan's part
        s, st = x["meta"]["shape"], x["meta"]["start"]
        inside = np.prod([min(st[d] + p, s[d]) - max(st[d], 0) for d, p in enumerate((64, 64, 40))])
        assert int(x["valid"].sum()) == inside and inside < 64 * 64 * 40
        assert int((x["label"] * (1 - x["valid"])).sum()) == 0
        # foreground=1: every patch holds a voxel of a class present in the scan
        if (x["class_status"] == PRESENT).any():
            assert int(x["label"].sum()) > 0
        # the patch is the scan's voxels where valid: compare with the whole volume read from the .nii.gz
        whole = volumes[i]
        lo = [max(v, 0) for v in st]
        hi = [min(v + p, n) for v, p, n in zip(st, (64, 64, 40), s)]
        sub = tuple(slice(a0 - v, h - v) for a0, h, v in zip(lo, hi, st))
        full = tuple(slice(a0, h) for a0, h in zip(lo, hi))
        assert torch.equal(x["image"][(slice(None), *sub)], whole["image"][(slice(None), *full)])
        assert torch.equal(x["label"][(slice(None), *sub)], whole["label"][(slice(None), *full)])
        assert np.allclose(x["meta"]["affine"][:3, 3], whole["meta"]["affine"][:3, :3] @ np.array(st) + whole["meta"]["affine"][:3, 3])
    starts0 = [a[i]["meta"]["start"] for i in range(len(a))]
    a.set_epoch(1)
    assert [a[i]["meta"]["start"] for i in range(len(a))] != starts0
    # the same patches come back from DataLoader workers
    a.set_epoch(0)
    loader = torch.utils.data.DataLoader(a, batch_size=2, num_workers=2, collate_fn=collate)
    got = [m["start"] for batch in loader for m in batch["meta"]]
    assert got == starts0
    # the cache was written beside the normalised files, keyed by the build hash
    it = a.items[0]
    assert (it.image.parent / f"cache-{it.build_hash}-v{CACHE_VERSION}" / "image.npy").is_file()


def test_unknown_classes_get_no_gradient(cat):
    ds = CatalogDataset(cat, REAL_CLASSES + ["pancreas"], where=REAL_WHERE, patch_size=32, foreground=1.0)
    batch = collate([ds[i] for i in range(len(ds))])
    status = batch["class_status"]
    assert (status == UNKNOWN).any() and (status != UNKNOWN).any()
    logits = torch.zeros(batch["label"].shape, requires_grad=True)
    loss = masked_dice_bce(logits, batch["label"], status, batch["valid"])
    loss.backward()
    g = logits.grad.abs().flatten(2).sum(-1)  # B×K
    assert bool((g[status == UNKNOWN] == 0).all())
    assert bool((g[status != UNKNOWN] > 0).all())
    # absent classes are true negatives: a positive prediction of an absent class costs more than none
    absent = (status == ABSENT).nonzero()
    if len(absent):
        b, k = absent[0].tolist()
        hot = torch.zeros(batch["label"].shape)
        hot[b, k] = 5.0
        assert masked_dice_bce(hot, batch["label"], status, batch["valid"]) > masked_dice_bce(torch.zeros_like(hot), batch["label"], status, batch["valid"])


def test_items_work_with_monai_dictionary_transforms(cat):
    monai = pytest.importorskip("monai")
    from monai.transforms import Compose, RandFlipd, Spacingd

    flip = Compose([RandFlipd(keys=["image", "label", "valid"], prob=1.0, spatial_axis=0)])
    plain = CatalogDataset(cat, ["liver"], where="scan_id = 'btcv/img0041'")[0]
    flipped = CatalogDataset(cat, ["liver"], where="scan_id = 'btcv/img0041'", transform=flip)[0]
    assert torch.equal(torch.as_tensor(flipped["label"]), torch.flip(plain["label"], dims=[1]))
    # with MetaTensors MONAI's spatial transforms see the affine: respacing to 2x2x3 mm keeps the world extent
    mt = CatalogDataset(cat, ["liver"], where="scan_id = 'btcv/img0041'", metatensor=True)[0]
    assert isinstance(mt["image"], monai.data.MetaTensor)
    out = Spacingd(keys=["image", "label"], pixdim=(2.0, 2.0, 3.0), mode=("bilinear", "nearest"))(mt)
    assert tuple(out["image"].shape[1:]) == (182, 144, 30)
    assert np.allclose(np.asarray(out["image"].affine)[:3, :3], np.diag([2.0, 2.0, 3.0]))
    ml_2x2x3, ml_1x1x3 = float(out["label"].sum()) * 12 / 1000, float(plain["label"].sum()) * 3 / 1000
    assert abs(ml_2x2x3 - ml_1x1x3) / ml_1x1x3 < 0.02


def test_cache_matches_the_nifti_and_follows_the_build_hash(cat, tmp_path):
    from satds.data.cache import cache_folder, open_scan, write_cache

    sel = select_scans(cat, ["liver"], where="scan_id = 'btcv/img0041'")
    it = sel.items[0]
    cached = open_scan(it, cache=True, cache_dir=tmp_path)
    direct = open_scan(it, cache=False)
    assert cached.cached and not direct.cached
    assert open_scan(it, cache=True, cache_dir=tmp_path).image is cached.image  # opened once per process
    assert np.array_equal(np.asarray(cached.image), np.asarray(direct.image))
    assert np.array_equal(np.asarray(cached.label), np.asarray(direct.label))
    first = cache_folder(it, tmp_path)
    assert first.is_dir() and not list(first.parent.glob(".cache-*"))  # no temporary folder left
    # a rebuilt scan (new build hash) gets a new cache; the stale one is removed
    it.build_hash = "0" * 24
    write_cache(it, cache_folder(it, tmp_path))
    assert not first.exists() and cache_folder(it, tmp_path).is_dir()


def test_an_unwritable_cache_is_tried_once_and_each_file_decoded_once(cat, tmp_path, monkeypatch):
    import satds.io
    from satds.data.cache import open_scan

    sel = select_scans(cat, ["liver"])
    it = min(sel.items, key=lambda i: int(np.prod(i.shape)))
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")  # mkdir under a regular file fails, even as root
    reads: list[str] = []
    real = satds.io.read_volume
    monkeypatch.setattr(satds.io, "read_volume", lambda p, *a, **k: reads.append(str(p)) or real(p, *a, **k))
    with pytest.warns(UserWarning, match="cannot write the patch cache"):
        first = open_scan(it, cache=True, cache_dir=blocker / "cache")
    assert not first.cached and sorted(reads) == sorted([str(it.image), str(it.label)])  # read once, not again after the failed write
    reads.clear()
    second = open_scan(it, cache=True, cache_dir=blocker / "cache")  # the folder is known to be unwritable: no second try
    assert sorted(reads) == sorted([str(it.image), str(it.label)])
    assert np.array_equal(np.asarray(first.image), np.asarray(second.image)) and np.array_equal(np.asarray(first.label), np.asarray(second.label))
    direct = open_scan(it, cache=False)
    assert np.array_equal(np.asarray(first.image), np.asarray(direct.image)) and first.channel_min == direct.channel_min


def test_bad_requests_name_what_to_fix(cat, tmp_path):
    with pytest.raises(DataError, match="'livr'.*did you mean 'liver'"):
        CatalogDataset(cat, ["livr"])
    with pytest.raises(DataError, match=r"none of the selected datasets \(msd_liver\): 'prostate' \(prostate\): datasets that annotate it: msd_prostate"):
        CatalogDataset(cat, ["liver", "prostate"], datasets=["msd_liver"])
    with pytest.raises(DataError, match=r"no scan matches the selection \(split=\['val'\].*per split: test"):
        CatalogDataset(cat, ["liver"], split="val")
    with pytest.raises(DataError, match="not in the catalog"):
        CatalogDataset(cat, ["liver"], datasets=["amos22"])
    with pytest.raises(DataError, match="not a valid condition"):
        CatalogDataset(cat, ["liver"], where="no_such_column = 1")
    # ``where`` is SQL over the catalog, restricted like `satds query`: it cannot read files elsewhere.
    outside = tmp_path / "outside.csv"
    outside.write_text("scan_id\nbtcv/img0041\n")
    with pytest.raises(DataError, match="not a valid condition.*(disabled|Permission)"):
        CatalogDataset(cat, ["liver"], where=f"scan_id IN (SELECT scan_id FROM read_csv('{outside}'))")
    with pytest.raises(DataError, match="fold 9 does not exist"):
        CatalogDataset(cat, ["liver"], fold=9)
    with pytest.raises(DataError, match="different channel counts"):
        CatalogDataset(cat, ["liver", "prostate"], datasets=["msd_liver", "msd_prostate"])
    with pytest.raises(DataError, match="no catalog at"):
        CatalogDataset(tmp_path / "nowhere", ["liver"])
    # an ingested but unbuilt catalog
    from satds.catalog import Catalog
    from satds.ingest import ingest
    from satds.phantoms import generate

    unbuilt = Catalog(tmp_path / "unbuilt")
    ingest("msd_spleen", generate("msd_spleen", tmp_path / "raw"), unbuilt, workers=1)
    with pytest.raises(DataError, match=r"2 of 2 selected scan\(s\) are not built.*satds build"):
        CatalogDataset(unbuilt, ["spleen"])


def test_folds_select_grouped_train_and_val_parts(cat):
    con = cat.connect()
    fold_of = dict(con.execute("SELECT scan_id, fold FROM folds WHERE scheme = 'cv' AND role = 'val'").fetchall())
    val = CatalogDataset(cat, ["liver"], fold=0, fold_role="val", datasets=["btcv", "msd_liver"])
    train = CatalogDataset(cat, ["liver"], fold=0, datasets=["btcv", "msd_liver"])
    assert {it.scan_id for it in val.items} == {s for s, f in fold_of.items() if f == 0 and s.split("/")[0] in ("btcv", "msd_liver")}
    assert {it.scan_id for it in train.items} == {s for s, f in fold_of.items() if f != 0 and s.split("/")[0] in ("btcv", "msd_liver")}
    assert all(it.split in ("train", "val") for it in train.items)


def test_items_work_with_torchio_transforms(cat):
    tio = pytest.importorskip("torchio")
    ds = CatalogDataset(cat, ["liver", "spleen"], where="scan_id = 'btcv/img0041'", patch_size=(96, 96, 24), foreground=1.0)
    item = ds[0]
    # as is: a dict with include/label_keys (TorchIO then assumes an identity affine)
    flip = tio.RandomFlip(axes=(0,), flip_probability=1.0, include=["image", "label", "valid"], label_keys=["label", "valid"])
    out = flip(item)
    assert torch.equal(out["label"], torch.flip(item["label"], dims=[1])) and torch.equal(out["image"], torch.flip(item["image"], dims=[1]))
    assert out["class_names"] == ["liver", "spleen"] and out["meta"]["scan_id"] == "btcv/img0041"
    # with the item's affine, TorchIO's physical transforms are right: 1x1x3 mm resampled to 3 mm isotropic
    aff = item["meta"]["affine"]
    subject = tio.Subject(image=tio.ScalarImage(tensor=item["image"], affine=aff), label=tio.LabelMap(tensor=item["label"], affine=aff))
    iso = tio.Resample(3.0)(subject)
    assert tuple(iso["image"].shape) == (1, 32, 32, 24) and np.allclose(iso["label"].spacing, (3.0, 3.0, 3.0))
    ml = float(item["label"].sum()) * 3 / 1000
    assert ml > 5 and abs(float(iso["label"].data.sum()) * 27 / 1000 - ml) <= 0.05 * ml
