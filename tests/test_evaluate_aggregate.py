"""Aggregations and vertebra identification, against numbers worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from satds.evaluate import aggregate
from satds.evaluate.vertebrae import identify, summarise

NAN = float("nan")


def _df(rows):
    return pd.DataFrame(rows, columns=["case", "label", "class", "dataset", "dsc", "nsd", "hd95", "hd", "flag", "region", "kind"])


@pytest.fixture
def two_datasets():
    return _df(
        [
            # dataset A: liver 0.9, 0.7 (mean 0.8); spleen 0.6
            ("a1", 1, "liver", "A", 0.9, 0.8, 2.0, 5.0, None, "abdomen", "anatomy"),
            ("a2", 1, "liver", "A", 0.7, 0.6, 4.0, 9.0, None, "abdomen", "anatomy"),
            ("a1", 2, "spleen", "A", 0.6, 0.5, 3.0, 6.0, None, "abdomen", "anatomy"),
            # dataset B: liver 0.5; a both-empty row and a false positive on an absent liver
            ("b1", 1, "liver", "B", 0.5, 0.4, 6.0, 11.0, None, "abdomen", "anatomy"),
            ("b2", 1, "liver", "B", NAN, NAN, NAN, NAN, "both_empty", "abdomen", "anatomy"),
            ("b3", 1, "liver", "B", 0.0, 0.0, NAN, NAN, "ref_empty", "abdomen", "anatomy"),
            # a missed tumour: DSC 0 counts, distances NaN drop out
            ("b1", 3, "liver tumour", "B", 0.0, 0.0, NAN, NAN, "pred_empty", "abdomen", "lesion"),
            ("b3", 3, "liver tumour", "B", 0.4, 0.3, 8.0, 20.0, None, "abdomen", "lesion"),
        ]
    )


def test_class_means_macro_over_datasets(two_datasets):
    cm = aggregate.class_means(two_datasets).set_index("class")
    # liver: A mean (0.9 + 0.7) / 2 = 0.8, B mean 0.5 -> (0.8 + 0.5) / 2 = 0.65 (micro would be 0.7)
    assert cm.loc["liver", "dsc"] == pytest.approx(0.65)
    assert cm.loc["liver", "nsd"] == pytest.approx((0.7 + 0.4) / 2)
    assert cm.loc["liver", "hd95"] == pytest.approx((3.0 + 6.0) / 2)
    assert cm.loc["liver", "n_cases"] == 3 and cm.loc["liver", "n_datasets"] == 2
    assert cm.loc["spleen", "dsc"] == pytest.approx(0.6)
    # tumour: (0 + 0.4) / 2 for DSC; HD95 only from the case with a prediction
    assert cm.loc["liver tumour", "dsc"] == pytest.approx(0.2)
    assert cm.loc["liver tumour", "hd95"] == pytest.approx(8.0)


def test_class_means_can_count_false_positives(two_datasets):
    cm = aggregate.class_means(two_datasets, include_ref_empty=True).set_index("class")
    # B's liver is now (0.5 + 0.0) / 2 = 0.25 -> (0.8 + 0.25) / 2
    assert cm.loc["liver", "dsc"] == pytest.approx(0.525)
    assert cm.loc["liver", "hd95"] == pytest.approx((3.0 + 6.0) / 2)  # the false positive has no distance


def test_dataset_means(two_datasets):
    dm = aggregate.dataset_means(two_datasets).set_index("dataset")
    # A: (liver 0.8 + spleen 0.6) / 2; B: (liver 0.5 + tumour 0.2) / 2
    assert dm.loc["A", "dsc"] == pytest.approx(0.7)
    assert dm.loc["B", "dsc"] == pytest.approx(0.35)
    assert dm.loc["A", "n_classes"] == 2 and dm.loc["B", "n_classes"] == 2


def test_region_means_lesions_apart(two_datasets):
    cm = aggregate.class_means(two_datasets)
    regions = aggregate.class_regions(two_datasets)
    assert regions == {"liver": "abdomen", "spleen": "abdomen", "liver tumour": "lesion"}
    rm = aggregate.region_means(cm, regions).set_index("region")
    assert rm.loc["abdomen", "dsc"] == pytest.approx((0.65 + 0.6) / 2)
    assert rm.loc["lesion", "dsc"] == pytest.approx(0.2)
    assert rm.loc["abdomen", "n_classes"] == 2
    # classes without a known region are kept apart, not dropped
    rm2 = aggregate.region_means(cm).set_index("region")
    assert list(rm2.index) == ["unassigned"]


def test_no_dataset_column_is_one_dataset():
    df = _df([("x", 1, "a", None, 0.5, 0.5, 1, 1, None, None, None), ("y", 1, "a", None, 0.7, 0.5, 1, 1, None, None, None)])
    assert aggregate.class_means(df).set_index("class").loc["a", "dsc"] == pytest.approx(0.6)


def test_ctspine1k_protocol():
    df = _df(
        [
            ("c1", 1, "C1", "ctspine", 0.9, 0, 0, 0, None, None, None),
            ("c1", 2, "C2", "ctspine", 0.8, 0, 0, 0, None, None, None),
            ("c1", 3, "C3", "ctspine", 0.0, 0, NAN, NAN, "ref_empty", None, None),  # not in the reference: NaN
            ("c2", 1, "C1", "ctspine", 0.7, 0, 0, 0, None, None, None),
            ("c2", 2, "C2", "ctspine", 0.0, 0, NAN, NAN, "pred_empty", None, None),  # missed: counts as 0
            ("c2", 3, "C3", "ctspine", NAN, NAN, NAN, NAN, "both_empty", None, None),
        ]
    )
    per_label, overall = aggregate.ctspine1k(df, labels=[1, 2, 3, 4])
    assert per_label[1] == pytest.approx(0.8)
    assert per_label[2] == pytest.approx(0.4)
    assert math.isnan(per_label[3]) and math.isnan(per_label[4])
    assert overall == pytest.approx(0.6)


def test_vertebra_identification_by_hand():
    ref = {1: (0.0, 0.0, 0.0), 2: (0.0, 0.0, 30.0), 3: (0.0, 0.0, 60.0), 4: (0.0, 0.0, 90.0)}
    pred = {
        1: (1.0, 0.0, 0.0),  # 1 mm off: identified
        2: (0.0, 0.0, 55.0),  # displaced 25 mm towards L3: nearest GT is 3, not identified
        3: (25.0, 0.0, 60.0),  # displaced 25 mm sideways: nearest GT is itself but 25 >= 20 mm
        # 4 missing: not identified, not in d
        9: (0.0, 0.0, 300.0),  # predicted but not in the reference: ignored
    }
    rows = identify(ref, pred)
    by = {r["label"]: r for r in rows}
    assert [r["label"] for r in rows] == [1, 2, 3, 4]
    assert by[1]["identified"] and by[1]["distance"] == pytest.approx(1.0)
    assert not by[2]["identified"] and by[2]["distance"] == pytest.approx(25.0)
    assert not by[3]["identified"] and by[3]["distance"] == pytest.approx(25.0)
    assert not by[4]["identified"] and not by[4]["predicted"] and math.isnan(by[4]["distance"])
    s = summarise(rows)
    assert s["id_rate"] == pytest.approx(1 / 4)
    assert s["d"] == pytest.approx((1 + 25 + 25) / 3)
    assert (s["n_ref"], s["n_identified"], s["n_missing"]) == (4, 1, 1)


def test_vertebra_pooled_over_cases():
    a = identify({1: (0, 0, 0), 2: (0, 0, 30)}, {1: (0, 0, 0), 2: (0, 0, 31)})
    b = identify({5: (0, 0, 0)}, {})
    s = summarise(a + b)
    assert s["id_rate"] == pytest.approx(2 / 3)
    assert s["d"] == pytest.approx(0.5)


def test_vertebra_limit_is_strict():
    rows = identify({1: (0, 0, 0), 2: (0, 0, 100)}, {1: (0, 0, 20.0)})
    assert not rows[0]["identified"]
    rows = identify({1: (0, 0, 0), 2: (0, 0, 100)}, {1: (0, 0, 19.99)})
    assert rows[0]["identified"]
    assert np.isclose(rows[0]["distance"], 19.99)
