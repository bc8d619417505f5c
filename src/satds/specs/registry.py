"""All dataset specs: YAML files in this package folder, loaded, merged (``extends``) and validated."""

from __future__ import annotations

import copy
import functools
import hashlib
import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ..errors import SpecError
from ..resources import specs_dir
from .model import DatasetSpec


def _merge(base: dict, over: dict) -> dict:
    """Deep merge for ``extends``: mappings merge key by key; anything else is replaced."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _format_error(path: Path, e: ValidationError) -> str:
    lines = [f"{path.name}: invalid spec"]
    for err in e.errors():
        loc = ".".join(str(x) for x in err["loc"])
        lines.append(f"  {loc}: {err['msg']}")
    return "\n".join(lines)


def _folders(folder: str) -> list[Path]:
    """The package's spec folder plus any in ``$SATDS_SPEC_PATH`` (os.pathsep-separated): local specs."""
    import os

    extra = [Path(p) for p in os.environ.get("SATDS_SPEC_PATH", "").split(os.pathsep) if p]
    return [Path(folder), *extra]


@functools.lru_cache(maxsize=8)
def _raw_specs(folder: str) -> dict[str, tuple[Path, dict]]:
    out: dict[str, tuple[Path, dict]] = {}
    for path in sorted(p for d in _folders(folder) for p in d.glob("*.yaml")):
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise SpecError(f"{path.name}: not valid YAML: {e}") from e
        if not isinstance(data, dict):
            raise SpecError(f"{path.name}: a spec must be a mapping")
        key = str(data.get("key", path.stem)).lower()
        if key in out:
            raise SpecError(f"{path.name}: key {key!r} already defined in {out[key][0].name}")
        out[key] = (path, data)
    return out


def _resolved_dict(key: str, raw: dict[str, tuple[Path, dict]], seen: tuple[str, ...] = ()) -> dict:
    if key in seen:
        raise SpecError(f"spec inheritance cycle: {' -> '.join(seen + (key,))}")
    path, data = raw[key]
    data = copy.deepcopy(data)
    parent = data.get("extends")
    if parent:
        parent = parent.lower()
        if parent not in raw:
            raise SpecError(f"{path.name}: extends unknown spec {parent!r}")
        base = _resolved_dict(parent, raw, seen + (key,))
        base.pop("abstract", None)
        data = _merge(base, data)
    return data


@functools.lru_cache(maxsize=512)
def _load(key: str, folder: str) -> DatasetSpec:
    raw = _raw_specs(folder)
    path = raw[key][0]
    data = _resolved_dict(key, raw)
    data.pop("abstract", None)
    try:
        return DatasetSpec.model_validate(data)
    except ValidationError as e:
        raise SpecError(_format_error(path, e)) from None


def spec_keys(folder: str | Path | None = None, include_abstract: bool = False) -> list[str]:
    raw = _raw_specs(str(folder or specs_dir()))
    return sorted(k for k, (_, d) in raw.items() if include_abstract or not d.get("abstract"))


def get_spec(key: str, folder: str | Path | None = None) -> DatasetSpec:
    """The spec for a dataset key (case-insensitive); the error lists close keys."""
    folder = str(folder or specs_dir())
    k = key.lower()
    raw = _raw_specs(folder)
    if k not in raw or raw[k][1].get("abstract"):
        import difflib

        close = difflib.get_close_matches(k, spec_keys(folder), n=4, cutoff=0.6)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise SpecError(f"unknown dataset {key!r}{hint}; `satds datasets` lists them")
    return _load(k, folder)


def all_specs(folder: str | Path | None = None) -> list[DatasetSpec]:
    return [get_spec(k, folder) for k in spec_keys(folder)]


def spec_hash(spec: DatasetSpec) -> str:
    """Content hash of the resolved spec minus its phantom/expect blocks (they do not change outputs)."""
    d: dict[str, Any] = spec.model_dump(mode="json", exclude={"phantom", "expect", "decisions"})
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def clear_cache() -> None:
    _raw_specs.cache_clear()
    _load.cache_clear()
