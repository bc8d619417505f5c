"""Dataset specs: one validated YAML file per public dataset (this folder), and their registry."""

from .model import Channel, DatasetSpec, LabelEntry, Layout
from .registry import all_specs, clear_cache, get_spec, spec_hash, spec_keys

__all__ = ["Channel", "DatasetSpec", "LabelEntry", "Layout", "all_specs", "clear_cache", "get_spec", "spec_hash", "spec_keys"]
