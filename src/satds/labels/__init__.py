"""From source label files to ontology classes: value maps, class files, lesion rules, laterality, atoms."""

from .atoms import AtomLabels, ClassStats
from .classes import UNLABELLED, DatasetClasses, read_label_table, resolve_classes
from .compose import LabelPiece, compose

__all__ = ["AtomLabels", "ClassStats", "DatasetClasses", "LabelPiece", "UNLABELLED", "compose", "read_label_table", "resolve_classes"]
