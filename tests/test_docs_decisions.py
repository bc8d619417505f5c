"""docs/datasets.md is generated from the specs (decisions, SAT-DS class differences) and must be current."""

from __future__ import annotations

from pathlib import Path

from satds.specs import all_specs
from satds.specs.decisions_doc import render

PAGE = Path(__file__).resolve().parent.parent / "docs" / "datasets.md"


def test_datasets_page_is_current():
    assert PAGE.read_text() == render(), "docs/datasets.md is stale: run `python -m satds.specs.decisions_doc > docs/datasets.md`"


def test_page_lists_every_spec_and_decision():
    text = PAGE.read_text()
    for spec in all_specs():
        assert f"### `{spec.key}`:" in text
        for d in spec.decisions:
            assert d.strip() in text
