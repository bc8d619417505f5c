"""``satds export monai`` read by MONAI's own loaders: load_decathlon_datalist, LoadImaged, Spacingd,
Orientationd; a small MONAI UNet trained a few CPU iterations with a coverage-masked Dice + CE; labels,
statuses and folds checked against the catalog; the universal33 task on the demo catalog."""

from __future__ import annotations

import json

import numpy as np
import pytest
from _data_catalog import coverage, demo_catalog
from _export_phantoms import build_catalog

from satds.errors import ExportError, SpecError
from satds.export.monai import DATALIST, STATUS_JSON, export_monai
from satds.export.recipe import adhoc_recipe, find_recipe

monai = pytest.importorskip("monai")
torch = pytest.importorskip("torch")

CODES = {"present": 1, "absent": 0, "unknown": -1}
TASK = ["liver", "spleen", "kidney", "left kidney"]  # kidney contains left kidney: the labels need masks


@pytest.fixture(scope="module")
def cat(tmp_path_factory):
    from satds.split import run_split

    c = build_catalog(tmp_path_factory.mktemp("monai"), ["msd_liver", "msd_spleen", "kits19"], build=True, folds=3)
    run_split(c, train_fraction=0.7, val_fraction=0.3, folds=3)  # one scan in the val split
    return c


@pytest.fixture(scope="module")
def exported(cat, tmp_path_factory):
    from typer.testing import CliRunner

    from satds.cli import app

    out = tmp_path_factory.mktemp("monai_out")
    r = CliRunner().invoke(app, ["export", "monai", "--classes", ",".join(TASK), "--datasets", "msd_liver,msd_spleen,kits19", "--name", "Organs",
                                 "--source", "normalised", "--out", str(out), "--catalog", str(cat.root)])
    assert r.exit_code == 0, r.output
    assert "labels as masks" in r.output
    return out / "Organs"


def _folds(cat):
    con = cat.connect()
    return dict(con.execute("SELECT scan_id, fold FROM folds WHERE scheme = 'cv' AND role = 'val'").fetchall()), dict(con.execute("SELECT scan_id, split FROM splits").fetchall())


def test_datalist_loads_in_monai_with_the_catalogs_folds_statuses_and_masks(cat, exported):
    from monai.data import load_decathlon_datalist
    from monai.transforms import EnsureChannelFirstd, LoadImaged

    side = json.loads((exported / STATUS_JSON).read_text())
    fold_of, split_of = _folds(cat)
    cov = coverage(cat)
    con = cat.connect()
    vt = {(s, c): v for s, c, v in con.execute("SELECT scan_id, class_id, voxels_target FROM annotations").fetchall()}
    ids = [c["id"] for c in side["classes"]]
    assert ids == ["liver", "spleen", "kidney", "kidney_left"]
    seen = {}
    for key in ("training", "validation", "testing"):
        items = load_decathlon_datalist(exported / DATALIST, data_list_key=key)
        seen[key] = items
        for e in items:
            case = side["cases"][e["case_id"]]
            scan = case["scans"][0]
            assert {"training": "train", "validation": "val", "testing": "test"}[key] == split_of[scan] == case["split"]
            assert e.get("fold") == (fold_of.get(scan) if key != "testing" else None)
            assert e["class_status"] == [CODES[cov[(scan, c)]] for c in ids]
            if "label" not in e:
                assert key == "testing" and set(e["class_status"]) == {-1}
                continue
            d = EnsureChannelFirstd(["image", "label"])(LoadImaged(["image", "label"])(e))
            img, lab = d["image"], d["label"]
            assert tuple(lab.shape) == (4, *img.shape[1:])
            assert np.allclose(np.asarray(lab.affine), np.asarray(img.affine))
            for k, c in enumerate(ids):
                assert int(lab[k].sum()) == vt.get((scan, c), 0) == case["voxels"].get(c, 0), (scan, c)
            assert bool((lab[2] >= lab[3]).all())  # the left kidney lies inside the kidney: overlap kept
    assert len(seen["validation"]) == 1 and len(seen["training"]) == 4 and len(seen["testing"]) == 3
    assert sum(int(any(s == 1 for s in e["class_status"][2:])) for e in seen["training"]) == 2  # kits19's kidneys
    # what the channel holds; nnU-Net's 'noNorm' (its normalisation choice for the normalised source) is no modality
    assert json.loads((exported / DATALIST).read_text())["modality"] == {"0": "CT"}


@pytest.fixture
def one_thread():
    """One torch thread: on a shared 2-core machine, two threads contending with other jobs run ~15x slower."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def test_monai_pipeline_trains_a_unet_with_a_coverage_masked_loss(exported, one_thread):
    import torch.nn.functional as F
    from monai.data import DataLoader, Dataset, load_decathlon_datalist
    from monai.losses import DiceLoss
    from monai.networks.nets import UNet
    from monai.transforms import Compose, EnsureChannelFirstd, LoadImaged, Orientationd, ResizeWithPadOrCropd, Spacingd, ToTensord

    files = load_decathlon_datalist(exported / DATALIST, data_list_key="training") + load_decathlon_datalist(exported / DATALIST, data_list_key="validation")
    keys = ["image", "label"]
    transform = Compose(
        [
            LoadImaged(keys),
            EnsureChannelFirstd(keys),
            Orientationd(keys, axcodes="RAS", labels=None),
            Spacingd(keys, pixdim=(2.0, 2.0, 3.0), mode=("bilinear", "nearest")),
            ResizeWithPadOrCropd(keys, spatial_size=(32, 32, 24)),
            ToTensord(["class_status"]),
        ]
    )
    loader = DataLoader(Dataset(files, transform), batch_size=len(files), num_workers=0)
    batch = next(iter(loader))
    x, y, status = batch["image"].as_tensor(), batch["label"].as_tensor(), batch["class_status"]
    assert tuple(x.shape) == (5, 1, 32, 32, 24) and tuple(y.shape) == (5, 4, 32, 32, 24) and tuple(status.shape) == (5, 4)
    assert (status == -1).any()
    torch.manual_seed(0)
    net = UNet(spatial_dims=3, in_channels=1, out_channels=4, channels=(8, 16, 32), strides=(2, 2), num_res_units=1)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    dice = DiceLoss(sigmoid=True, reduction="none")
    known = (status >= 0).float()
    losses = []
    for _ in range(12):
        opt.zero_grad()
        logits = net(x)
        per = dice(logits, y).flatten(1) + F.binary_cross_entropy_with_logits(logits, y, reduction="none").flatten(2).mean(-1)
        loss = (per * known).sum() / known.sum()  # unknown (item, class) pairs carry no gradient
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(np.isfinite(losses))
    assert np.mean(losses[-3:]) < 0.8 * np.mean(losses[:3]), losses


def test_universal33_on_the_demo_catalog_as_a_value_map(tmp_path_factory, realdata, tmp_path):
    from monai.data import load_decathlon_datalist
    from monai.transforms import LoadImaged

    demo = demo_catalog(tmp_path_factory.getbasetemp())
    res = export_monai(demo, find_recipe("universal33"), tmp_path)
    assert res.label_format == "values"
    side = json.loads((res.folder / STATUS_JSON).read_text())
    dl = json.loads((res.folder / DATALIST).read_text())
    assert dl["labels"]["29"] == "liver" and len(side["classes"]) == 33
    ids = [c["id"] for c in side["classes"]]
    cov = coverage(demo)
    con = demo.connect()
    vox = {(s, c): v for s, c, v in con.execute("SELECT scan_id, class_id, voxels FROM annotations").fetchall()}
    for e in load_decathlon_datalist(res.folder / DATALIST, data_list_key="training"):
        case = side["cases"][e["case_id"]]
        lab = np.asarray(LoadImaged(["label"])(e)["label"])
        counts = np.bincount(lab.astype(np.int64).ravel(), minlength=34)
        for k, c in enumerate(ids):
            assert counts[k + 1] == case["voxels"].get(c, 0), (e["case_id"], c)
        if len(case["scans"]) == 1:  # one scan: the native grid's counts are the catalog's source counts
            scan = case["scans"][0]
            assert e["class_status"] == [CODES[cov[(scan, c)]] for c in ids]
            for k, c in enumerate(ids):
                assert counts[k + 1] == vox.get((scan, c), 0), (scan, c)
        else:  # a merged image knows what any of its scans knows
            for k, c in enumerate(ids):
                st = {cov[(s, c)] for s in case["scans"]} - {"unknown"}
                assert e["class_status"][k] == (-1 if not st else (1 if counts[k + 1] else 0))


def test_the_recipes_channel_names_reach_the_datalist(cat, tmp_path):
    r = adhoc_recipe(name="Venous", dataset_id=998, classes=["spleen"], datasets=["msd_spleen"], channels=["venous CT"])
    res = export_monai(cat, r, tmp_path)
    dl = json.loads((res.folder / DATALIST).read_text())
    assert dl["modality"] == {"0": "venous CT"}  # as nnU-Net's channel_names: the recipe's `channels:` win
    assert dl["licence"] == "msd_spleen: CC-BY-SA 4.0" and dl["description"] == "satds task Venous: spleen from msd_spleen"


def test_bad_exports_are_refused_with_reasons(cat, tmp_path):
    r = adhoc_recipe(name="Nested", dataset_id=999, classes=TASK, datasets=["msd_liver", "msd_spleen", "kits19"], source="normalised")
    with pytest.raises(SpecError, match="values cannot hold classes that overlap.*kidney/kidney_left"):
        export_monai(cat, r, tmp_path, labels="values")
    (tmp_path / "Nested").mkdir()
    (tmp_path / "Nested" / "mine.txt").write_text("not an export")
    with pytest.raises(ExportError, match="is not a satds MONAI export"):
        export_monai(cat, r, tmp_path)
    assert (tmp_path / "Nested" / "mine.txt").exists()
    # an earlier satds export is replaced atomically; a file satds did not write in it is moved aside, never deleted
    first = export_monai(cat, r, tmp_path / "again")
    assert first.replaced is None
    (first.folder / "imagesTr" / "stale.nii.gz").write_bytes(b"user's")
    second = export_monai(cat, r, tmp_path / "again")
    assert second.written and not (second.folder / "imagesTr" / "stale.nii.gz").exists()
    assert sorted(p.name for p in (tmp_path / "again").iterdir()) == ["Nested", second.replaced.name]
    assert second.replaced.name.startswith("replaced-Nested-")
    assert [str(p.relative_to(second.replaced)) for p in second.replaced.rglob("*") if p.is_file()] == ["imagesTr/stale.nii.gz"]
    assert (second.replaced / "imagesTr" / "stale.nii.gz").read_bytes() == b"user's"
    bad = adhoc_recipe(name="Prostate", dataset_id=999, classes=["liver", "prostate"], datasets=["msd_liver"], source="normalised")
    with pytest.raises(ExportError, match="prostate is annotated by no training scan of msd_liver"):
        export_monai(cat, bad, tmp_path)
    assert not list(tmp_path.glob(".*tmp*"))


def test_cli_names_what_an_ad_hoc_task_lacks(cat):
    from typer.testing import CliRunner

    from satds.cli import app

    r = CliRunner().invoke(app, ["export", "monai", "--classes", "liver", "--datasets", "msd_liver", "--catalog", str(cat.root)])
    assert r.exit_code == 1 and "needs --classes, --datasets and --name" in r.output
    r = CliRunner().invoke(app, ["export", "monai", "--task", "universal33", "--catalog", str(cat.root), "--dry-run"])
    assert r.exit_code == 1 and "dataset ctspine1k is not in the catalog" in r.output
