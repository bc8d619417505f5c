"""One small exception hierarchy, so engines can tell a bad case (record it, go on) from a bad program.

Every case-level error names where it happened: ``dataset/case: file: message``. The file is relative to
the dataset root, so messages read the same on every machine.
"""

from __future__ import annotations


class SatdsError(Exception):
    """Base of every error satds raises on purpose."""


class SpecError(SatdsError):
    """A dataset spec, task recipe or the ontology file is invalid."""


class OntologyError(SpecError):
    """A name does not resolve, or the ontology file is inconsistent."""


class CaseError(SatdsError):
    """One case of one dataset cannot be processed; the rest of the run goes on."""

    stage = "ingest"

    def __init__(self, message: str, *, dataset: str = "", case: str = "", file: str = "", stage: str | None = None):
        super().__init__(message)
        self.message = message
        self.dataset = dataset
        self.case = case
        self.file = file
        if stage:
            self.stage = stage

    def located(self, *, dataset: str | None = None, case: str | None = None, file: str | None = None) -> "CaseError":
        """Fill in whatever location the raiser did not know (engines know dataset and case)."""
        self.dataset = self.dataset or dataset or ""
        self.case = self.case or case or ""
        self.file = self.file or file or ""
        return self

    def __str__(self) -> str:
        where = "/".join(p for p in (self.dataset, self.case) if p)
        parts = [p for p in (where, self.file) if p]
        return (": ".join(parts) + ": " if parts else "") + self.message


class ReadError(CaseError):
    """A file is missing, truncated, corrupt, or not the kind of image expected."""


class GeometryError(CaseError):
    """Grids that should match do not (a mask not on its image's grid, a 4D file where 3D is expected)."""


class LabelError(CaseError):
    """A label value or mask file the spec does not know, NaNs in a mask, an impossible derivation."""


class ExportError(SatdsError):
    """An export would produce something its consumer (nnU-Net, the CTSpine1K layout) rejects."""


class DataError(SatdsError):
    """A request to ``satds.data`` that the catalog cannot serve (unknown class, empty selection, unbuilt scans)."""
