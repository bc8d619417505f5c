"""Declared overlaps point at datasets satds has, with case templates their layouts can fill."""

from __future__ import annotations

import re

import pytest

from satds.ingest.patterns import compile_pattern
from satds.specs import all_specs, spec_keys

_FIELD = re.compile(r"\{(\w+)(?::[^{}]*)?\}")


def _captures(spec) -> list[set[str]]:
    """Per layout: the names a case's captures hold (pattern captures, vars, path, case)."""
    out = []
    for lay in spec.layout:
        names = set(compile_pattern(lay.match).names) | set(lay.vars) | {"path", "case"}
        out.append(names)
    return out


@pytest.mark.parametrize("spec", all_specs(), ids=lambda s: s.key)
def test_overlap_targets_exist_and_templates_fill(spec):
    keys = set(spec_keys())
    layouts = _captures(spec)
    hooked = any(lay.hook for lay in spec.layout)  # a discovery hook may add captures of its own
    for ov in spec.overlaps:
        assert ov.dataset in keys, f"{spec.key}: overlap with unknown dataset {ov.dataset!r}"
        if ov.case is None or hooked:
            continue
        tpl = ov.case if isinstance(ov.case, str) else ov.case.template
        used = set(_FIELD.findall(tpl))
        assert any(used <= names for names in layouts), f"{spec.key}: overlap template {tpl!r} uses captures no layout has"
