"""One small exception hierarchy, so engines can tell a bad case (record it, go on) from a bad program.

Every case-level error names where it happened: ``dataset/case: file: message``. The file is relative to
the dataset root, so messages read the same on every machine.
"""

from __future__ import annotations

import errno

#: The errnos of a write that ran out of room: no space left (ENOSPC), a quota (EDQUOT), a file-size limit
#: (EFBIG: ``ulimit -f``/RLIMIT_FSIZE, or the file system's largest file). The CLI and the catalog report
#: each as one "disk full" line (naming the errno's own text), never a traceback.
DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def printable(text: str) -> str:
    """A name as satds shows and stores it: bytes that are not UTF-8 (a file name from another system,
    which Python carries as surrogate escapes) are written as ``\\xff`` escapes."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate that no file name carried
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def is_utf8(text: str) -> bool:
    """Whether a name can be stored as UTF-8 text (no surrogate escapes of another system's bytes)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


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

    def relative_to(self, root) -> "CaseError":
        """Make ``file`` relative to the dataset ``root`` when a reader named it by its absolute path."""
        import os

        if self.file and os.path.isabs(self.file) and root:
            rel = os.path.relpath(self.file, root)
            if rel != "." and not rel.startswith(".."):
                self.file = rel
        return self

    def __str__(self) -> str:
        where = "/".join(p for p in (self.dataset, self.case) if p)
        parts = [p for p in (where, self.file) if p]
        return printable((": ".join(parts) + ": " if parts else "") + self.message)


class ReadError(CaseError):
    """A file is missing, truncated, corrupt, or not the kind of image expected."""


class GeometryError(CaseError):
    """Grids that should match do not (a mask not on its image's grid, a 4D file where 3D is expected)."""


class LabelError(CaseError):
    """A label value or mask file the spec does not know, NaNs in a mask, an impossible derivation."""


class WorkerDied(CaseError):
    """The process working on a case died (killed by the system, most often for memory). The local pool
    records it after the case killed its worker twice, once among others and once alone, and starts a new
    pool; on Dask, after the scheduler's own retries (``distributed.scheduler.allowed-failures``)."""


class CatalogError(SatdsError):
    """The catalog itself cannot be read or written: a damaged or foreign part file, a full disk."""


class ExportError(SatdsError):
    """An export would produce something its consumer (nnU-Net, the CTSpine1K layout) rejects."""


class DataError(SatdsError):
    """A request to ``satds.data`` that the catalog cannot serve (unknown class, empty selection, unbuilt scans)."""
