"""``satds ingest``: read a public dataset in its native layout and record every case in the catalog."""

from .discover import CaseFiles, discover
from .engine import IngestSummary, dataset_classes, ingest, ingest_case

__all__ = ["CaseFiles", "IngestSummary", "dataset_classes", "discover", "ingest", "ingest_case"]
