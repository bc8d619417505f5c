"""BraTS 2023: the meningioma release's correction patch."""

from __future__ import annotations

import re
from pathlib import Path

from ...errors import CaseError
from ...specs.model import DatasetSpec, Layout
from ..discover import CaseFiles, _discover_layout
from ..hooks import hook

_FIX = re.compile(r"fix", re.IGNORECASE)


@hook("brats_men_fix", "discover")
def brats_men_fix(spec: DatasetSpec, layout: Layout, root: Path, cache: dict | None = None) -> tuple[list[CaseFiles], list[CaseError]]:
    """BraTS-MEN 2023 ships a later patch archive (BraTS-MEN-TRAIN-FIX-V4.zip, 47 case folders with corrected
    files) meant to overwrite the same-named case folders of BraTS-MEN-Train. Kept side by side, both folders
    match the layout; a case found in both is read from the patch (images and seg alike), the rest as is.
    """
    problems: list[CaseError] = []
    found = _discover_layout(spec, layout, root, problems, cache)
    patched = {cf.case_id: cf for cf in found if _FIX.search(cf.captures.get("release", ""))}
    # A case whose patched copy is broken fails; it must not fall back to the unpatched copy.
    patch_broken = {p.case for p in problems if _FIX.search(p.file or "")}
    replaced = set(patched) | patch_broken
    cases = [patched.get(cf.case_id, cf) for cf in found if cf.case_id not in patch_broken]
    cases = list({cf.case_id: cf for cf in cases}.values())
    problems = [p for p in problems if _FIX.search(p.file or "") or p.case not in replaced]
    return cases, problems
