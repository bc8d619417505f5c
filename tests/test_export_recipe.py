"""Task recipes: the shipped universal33 recipe, validation errors, overlap decisions."""

from __future__ import annotations

import pytest

from satds.errors import SpecError
from satds.export.recipe import adhoc_recipe, find_recipe, parse_recipe, read_recipe

BASE = {"name": "T", "dataset_id": 600, "datasets": ["msd_liver"], "classes": ["liver"]}


def test_universal33_recipe():
    r = find_recipe("universal33")
    rr = r.resolve()
    assert r.folder_name == "Dataset533_Universal33"
    assert r.partial_labels == "ignore" and r.source == "native"
    assert set(r.datasets) == {"btcv", "msd_liver", "msd_spleen", "msd_pancreas", "kits19", "ctpelvic1k", "ctspine1k"}
    assert rr.n == 33 and rr.ignore_value == 34
    vert = [f"cervical_vertebra_{i}" for i in range(1, 8)] + [f"thoracic_vertebra_{i}" for i in range(1, 13)] + [f"lumbar_vertebra_{i}" for i in range(1, 7)]
    assert rr.ids[:25] == vert  # the VerSe/CTSpine1K codes 1-25 map onto themselves
    assert rr.ids[25:] == ["sacrum", "hip_left", "hip_right", "liver", "spleen", "pancreas", "kidney_left", "kidney_right"]
    assert [rr.value[c] for c in rr.ids] == list(range(1, 34))
    # usable with the pseudo policy too
    parse_recipe(r.model_dump() | {"partial_labels": "pseudo", "pseudo_labels": "somewhere"})


def test_find_recipe_by_name_is_case_insensitive():
    assert find_recipe("UNIVERSAL33").dataset_id == 533


def test_unknown_keys_are_rejected_with_the_field():
    with pytest.raises(SpecError, match=r"labels_policy"):
        parse_recipe(BASE | {"labels_policy": "ignore"}, "x.yaml")


def test_all_value_errors_reported_at_once():
    with pytest.raises(SpecError) as e:
        parse_recipe(BASE | {"name": "bad name", "dataset_id": 1000, "partial_labels": "maybe"})
    msg = str(e.value)
    assert "name" in msg and "dataset_id" in msg and "partial_labels" in msg


def test_unresolvable_and_duplicate_classes():
    r = parse_recipe(BASE | {"classes": ["liver", "livre", "hepar", "C1", "cervical vertebrae 1 (c1)"]})
    with pytest.raises(SpecError) as e:
        r.resolve()
    msg = str(e.value)
    assert "'livre'" in msg and "did you mean" in msg
    assert "same concept" in msg  # C1 twice under two names


def test_precedence_must_name_recipe_classes():
    with pytest.raises(SpecError, match="not one of the recipe's classes"):
        parse_recipe(BASE | {"precedence": ["spleen"]}).resolve()


def test_regions_cannot_take_precedence():
    with pytest.raises(SpecError, match="regions"):
        parse_recipe(BASE | {"overlap": "regions", "precedence": ["liver"]})


def test_normalised_images_must_not_be_ct_normalised_again():
    with pytest.raises(SpecError, match="noNorm"):
        parse_recipe(BASE | {"source": "normalised", "channels": ["CT"]})
    parse_recipe(BASE | {"source": "normalised", "channels": ["noNorm"]})


def test_pseudo_folder_only_with_pseudo_policy():
    with pytest.raises(SpecError, match="pseudo_labels"):
        parse_recipe(BASE | {"pseudo_labels": "x"})


def test_default_precedence_and_regions():
    rr = adhoc_recipe(name="L", dataset_id=601, classes=["liver tumor", "liver", "spleen"], datasets=["msd_liver"], overlap="regions").resolve()
    assert rr.value == {"liver_tumor": 1, "liver": 2, "spleen": 3}
    assert rr.order[-1] == "liver_tumor"  # nested wins, painted last
    labels, order = rr.regions()
    assert labels == {"liver": [1, 2], "spleen": 3, "liver_tumor": 1}
    assert list(labels) == ["spleen", "liver", "liver_tumor"] and order == [3, 2, 1]  # ties: earlier listed wins


def test_read_recipe_file(tmp_path):
    p = tmp_path / "t.yaml"
    p.write_text("name: T\ndataset_id: 7\ndatasets: [msd_liver]\nclasses: [liver]\nview: per_channel\n")
    r = read_recipe(p)
    assert r.view == "per_channel" and r.folder_name == "Dataset007_T"
    assert find_recipe(str(p)).name == "T"
    p.write_text("name: [unclosed\n")
    with pytest.raises(SpecError, match="YAML"):
        read_recipe(p)
