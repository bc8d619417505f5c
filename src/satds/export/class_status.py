"""``class_status.json``: what each exported case says about each task class, for partial-label trainers.

Written by ``satds export nnunet`` beside ``dataset.json`` (and copied by ``satds train`` into the
preprocessed folder, where nnU-Net trainers look). Per case:

- ``status``: label value → ``present`` / ``absent`` / ``unknown``, from the catalog's ``coverage`` view
  (the scan that supplied the class; ``unknown``: no member scan annotates it);
- ``admits``: only where a label stands for more than itself, label value → the values the loss must accept
  there. Under the ``marginal`` policy, background (0) of a liver-only case admits every class the case does
  not annotate (``{"0": [0, 2, 3]}``), and a class may admit an unannotated class nested in it. Empty for the
  other policies (their labels mean exactly what they say; ``ignore`` marks the unknown voxels instead).

The marginal/exclusion trainer (``nnUNetTrainer_SatdsMargExc``) reads ``admits``; ``status`` is the record.

``satds export monai`` writes a sidecar of the same name (:mod:`satds.export.monai`) with its own layout: there
``status`` is keyed by class id (``{"liver": "present"}``), here by nnU-Net label value (``{"1": "present"}``).
"""

from __future__ import annotations

from typing import Any

CLASS_STATUS = "class_status.json"


def class_status(catalog, plan, admits: dict[str, dict[int, list[int]]]) -> dict[str, Any]:
    """The ``class_status.json`` document of an export plan; ``admits``: case id → label → admitted values."""
    from ..data.select import coverage_status

    rr = plan.resolved
    con = catalog.connect()
    try:
        cov = coverage_status(con, sorted({s for u in plan.units for s in u.scan_ids}), rr.ids)
    finally:
        con.close()
    cases: dict[str, Any] = {}
    for u in plan.units:
        source = {c: s for s, cls in u.annotated.items() for c in cls}  # class → the member scan that supplies it
        status = {}
        for c in rr.ids:
            s = source.get(c)
            status[str(rr.value[c])] = "unknown" if s is None else ("present" if cov.get((s, c)) == "present" else "absent")
        for cid in u.case_ids:
            cases[cid] = {
                "split": u.split,
                "status": status,
                "admits": {str(k): v for k, v in sorted(admits.get(cid, {}).items())},
            }
    return {
        "format": 1,
        "task": plan.recipe.folder_name,
        "policy": plan.recipe.partial_labels,
        "labels": {str(rr.value[c]): c for c in rr.ids},
        "cases": cases,
    }
