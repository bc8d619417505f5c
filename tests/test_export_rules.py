"""The partial-label rules voxel by voxel: ignore policy, background, and the pseudo-label merge."""

from __future__ import annotations

import numpy as np
import pytest

from satds.export.labels import body_mask, known_labels, merged_labels
from satds.export.recipe import adhoc_recipe
from satds.export.rules import VoxelRules

F = frozenset


def rules(*classes: str, precedence=(), overlap="precedence") -> VoxelRules:
    r = adhoc_recipe(name="T", dataset_id=900, classes=list(classes), datasets=["x"], precedence=list(precedence) or None, overlap=overlap)
    return VoxelRules.of(r.resolve())


# ---------------------------------------------------------------------- ignore policy
def test_unknown_class_is_ignored_never_background():
    r = rules("liver", "spleen")  # 1 liver, 2 spleen, 3 ignore
    ann = F({"liver"})
    assert r.known(F({"liver"}), ann) == 1  # GT liver: spleen cannot overlap it
    assert r.known(F(), ann) == 3  # not liver; spleen unknown -> ignore
    assert r.known(F(), ann, inside=False) == 0  # air: no class lies there
    assert r.known(F({"liver"}), ann, inside=False) == 1  # GT is never overridden by the body rule


def test_all_known_gives_background():
    r = rules("liver", "spleen")
    ann = F({"liver", "spleen"})
    assert r.known(F(), ann) == 0
    assert r.known(F({"spleen"}), ann) == 2


def test_non_recipe_annotated_classes_rule_unknown_ones_out():
    # A scan annotating the stomach (not a task class): spleen cannot be where the stomach is.
    r = rules("liver", "spleen")
    ann = F({"liver", "stomach"})
    assert r.known(F({"stomach"}), ann) == 0
    assert r.known(F(), ann) == 3


def test_containment_makes_background_known_outside_the_container():
    # CTPelvic1K-like: the coarse lumbar label is annotated, single vertebrae are task classes.
    r = rules("L1", "L2", "sacrum")
    ann = F({"lumbar_vertebrae", "sacrum"})
    assert r.known(F(), ann) == 0  # outside the lumbar GT no L1/L2 can be
    assert r.known(F({"lumbar_vertebrae"}), ann) == r.ignore_value  # inside: which vertebra is unknown
    assert r.known(F({"sacrum"}), ann) == 3


def test_nested_unknown_class_makes_its_container_uncertain():
    # BTCV-like: liver annotated, liver tumour unknown (and nested: it wins over liver by default).
    r = rules("liver", "liver tumor")
    assert r.rank["liver_tumor"] > r.rank["liver"]
    ann = F({"liver"})
    assert r.known(F({"liver"}), ann) == 3  # could be tumour
    assert r.known(F(), ann) == 0  # a tumour lies in the liver; the liver is absent here


def test_unknown_container_is_certain_where_a_part_is_present():
    r = rules("kidney", "spleen")
    ann = F({"kidney_left", "kidney_right", "spleen"})
    assert r.known(F({"kidney_left"}), ann) == 1
    assert r.known(F(), ann) == 0  # kidney = left + right, both absent here


def test_explicit_precedence_beats_nesting():
    r = rules("liver", "liver tumor", precedence=["liver"])
    assert r.known(F({"liver", "liver_tumor"}), F({"liver", "liver_tumor"})) == 1


def test_known_labels_volume_with_body_mask():
    r = rules("liver", "spleen")
    atoms = np.array([[[0, 1, 1, 0, 0]]], dtype=np.uint8).reshape(1, 5, 1)
    atom_sets = [F(), F({"liver"})]
    inside = np.array([0, 1, 1, 1, 0], bool).reshape(1, 5, 1)
    out, stats = known_labels(r, atoms, atom_sets, F({"liver"}), inside, atoms.shape)
    assert out.ravel().tolist() == [0, 1, 1, 3, 0]
    assert stats["outside_body_gt_voxels"] == 0


def test_body_mask_fills_air_inside_the_body():
    img = np.full((9, 9, 2), -1000.0)
    img[1:8, 1:8, :] = 40.0
    img[3:6, 3:6, :] = -900.0  # lung-like air inside the body
    m = body_mask(img, ct=True, normalised=False)
    assert m[4, 4, 0] and m[1, 1, 1] and not m[0, 0, 0]
    assert m.sum() == 2 * 49


# ---------------------------------------------------------------------- pseudo-label merge
def test_merge_gt_wins_and_is_authoritative_about_absence():
    r = rules("liver", "spleen", "kidney")  # 1 2 3
    ann = F({"liver"})
    # voxels:      0  1  2  3  4  5  6
    gt = np.array([0, 1, 1, 1, 0, 0, 0])  # atom 1 = liver
    pred = np.array([0, 2, 0, 1, 1, 3, 2])  # spleen over GT liver, liver outside GT, kidney, spleen
    out = merged_labels(r, gt.reshape(7, 1, 1), [F(), F({"liver"})], ann, pred.reshape(7, 1, 1)).ravel().tolist()
    assert out == [0, 1, 1, 1, 0, 3, 2]


def test_merge_keeps_a_predicted_lesion_inside_its_gt_organ():
    r = rules("liver", "liver tumor", "spleen")  # 1 liver, 2 tumour, 3 spleen
    ann = F({"liver", "spleen"})
    gt = np.array([1, 1, 0, 2])  # liver, liver, -, spleen
    pred = np.array([2, 0, 2, 2])  # tumour inside GT liver, -, tumour outside any liver, tumour on the spleen
    out = merged_labels(r, gt.reshape(4, 1, 1), [F(), F({"liver"}), F({"spleen"})], ann, pred.reshape(4, 1, 1)).ravel().tolist()
    assert out == [2, 1, 0, 3]


def test_merge_fully_annotated_scan_ignores_the_prediction():
    r = rules("liver", "spleen")
    gt = np.array([1, 0, 2])
    pred = np.array([2, 1, 2])
    out = merged_labels(r, gt.reshape(3, 1, 1), [F(), F({"liver"}), F({"spleen"})], F({"liver", "spleen"}), pred.reshape(3, 1, 1))
    assert out.ravel().tolist() == [1, 0, 2]


@pytest.mark.parametrize("overlap", ["precedence", "regions"])
def test_closure_of_a_nested_prediction(overlap):
    r = rules("liver", "liver tumor", overlap=overlap)
    assert r.closure("liver_tumor") == F({"liver", "liver_tumor"})
    assert r.closure("liver") == F({"liver"})
