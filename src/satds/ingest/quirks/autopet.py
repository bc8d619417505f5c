"""autoPET family: DAP Atlas's anatomy masks belong to CTs that live in the autoPET release's tree."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from ...errors import CaseError
from ..discover import CaseFiles
from ..hooks import hook
from ..patterns import compile_pattern, fill, find

#: CT.nii.gz of an autoPET study: PETCT_<10 hex digits>/<MM-DD-YYYY>-NA-<description>-<last digits of the study UID>/
AUTOPET_CT = "{ctdir:(?:.*/)?}PETCT_{pid:[0-9a-f]{10}}/{study}/CT.nii.gz"


@hook("dap_atlas", "discover")
def dap_atlas_discover(spec, layout, root: Path, cache: dict | None = None) -> list:
    """Pair each mask AutoPET_<id>_<suffix>.nii.gz with CT.nii.gz of autoPET study PETCT_<id>/<...-suffix>/.

    The mask's name carries the patient id and the last digits of the study folder's name but not the
    folder's name itself (date and description), so the CT path cannot be a template: the autoPET tree
    under the same root is indexed once and masks are paired by (id, suffix). A mask with no matching
    study, or with several, is that case's error.
    """
    studies: dict[tuple[str, str], list[str]] = defaultdict(list)
    for rel, caps in find(root, compile_pattern(AUTOPET_CT), (), cache):
        studies[(caps["pid"], caps["study"].rsplit("-", 1)[-1])].append(rel)
    out: list = []
    for rel, caps in find(root, compile_pattern(layout.match), layout.exclude, cache):
        caps = {**caps, "path": rel}
        case_id = fill(spec.case_id, caps)
        cts = studies.get((caps["pid"], caps["suffix"]), [])
        if len(cts) != 1:
            where = f"PETCT_{caps['pid']}/*-{caps['suffix']}/CT.nii.gz"
            why = f"no autoPET study {where} under the root" if not cts else f"{len(cts)} autoPET studies match {where}: {cts}"
            out.append(CaseError(f"cannot pair the mask with its CT: {why}", case=case_id, file=rel))
            continue
        cf = CaseFiles(spec.key, layout.name, caps, case_id, fill(spec.patient_id, caps), f"{spec.key}/{case_id}", [cts[0]], [None])
        cf.label = fill(layout.label, caps) if layout.label else rel
        cf.sat_id = fill(spec.sat_id, caps) if spec.sat_id is not None else None
        out.append(cf)
    return out
