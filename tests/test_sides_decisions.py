"""Every bilateral structure a release labels with one value has a recorded decision: sides derived or not, and why.

``src/satds/specs/data/sides.yaml`` (rendered in docs/datasets.md) must agree with the specs' ``lateralize``
entries, and must cover every unsided source class that the ontology can split into left and right, so a new
spec cannot leave the question unanswered.
"""

from __future__ import annotations

from satds.ingest import dataset_classes
from satds.ontology import load_ontology
from satds.specs import all_specs
from satds.specs.decisions_doc import side_decisions


def _rows(sided: bool) -> set[tuple[str, str]]:
    return {(d, s.strip()) for r in side_decisions() if r["sides"] is sided for d in r["datasets"] for s in r["structure"].split(",")}


def test_rows_name_real_source_classes_with_a_reason():
    onto = load_ontology()
    specs = {s.key: s for s in all_specs()}
    for r in side_decisions():
        assert set(r) == {"datasets", "structure", "sides", "why"} and r["why"].strip(), r
        for d in r["datasets"]:
            source = {onto[c].name for c in dataset_classes(specs[d].key, "").source_classes}
            for s in r["structure"].split(","):
                assert onto.resolve(s.strip()).name in source, (d, s)


def test_sided_rows_are_the_specs_lateralize_entries():
    onto = load_ontology()
    declared = {(s.key, onto.resolve(n).name) for s in all_specs() for n in s.lateralize}
    assert _rows(True) == declared
    assert {d for d, _ in declared} >= {"kits19", "kits23", "abdomenct1k", "ct_org", "word", "crossmoda2021"}


def test_every_unsided_bilateral_source_class_has_a_decision():
    onto = load_ontology()
    undecided = []
    for spec in all_specs():
        dc = dataset_classes(spec.key, "")
        carried = set(dc.all_classes())
        for c in dc.source_classes:
            if c in dc.lateral:
                continue
            for part in onto[c].partitions:
                sides = {onto[m].laterality: m for m in part}
                if len(part) == 2 and set(sides) == {"left", "right"} and not set(part) <= carried:
                    if (spec.key, onto[c].name) not in _rows(False):
                        undecided.append((spec.key, onto[c].name))
    assert not undecided, f"bilateral classes with one value and no entry in specs/data/sides.yaml: {undecided}"
