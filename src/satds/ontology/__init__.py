"""The unified label ontology (``label_ontology.yaml``): one concept per structure, any modality."""

from .core import Finding, Ontology, load_ontology, normalise_name
from .model import REGIONS, Concept

__all__ = ["Concept", "Finding", "Ontology", "REGIONS", "load_ontology", "normalise_name"]
