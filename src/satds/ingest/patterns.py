"""Path patterns with named captures: ``imagesTr/{case}.nii.gz``, ``**/{sub}/{sub}_ct.nii.gz``.

``{name}`` matches one path component part (no ``/``), ``{name:regex}`` a custom regex, ``*`` anything
within one folder, ``**/`` any number of folders. A name used twice must match the same text.
"""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import SpecError
from ..specs.model import Template, TemplateLike

_TOKEN = re.compile(r"\{(\w+)(?::((?:[^{}]|\{[^{}]*\})+))?\}|\*\*/|\*|\?")


@dataclass(frozen=True)
class Pattern:
    text: str
    regex: re.Pattern
    names: tuple[str, ...]
    static_prefix: str  # folder part before the first wildcard: where the walk starts
    dirs: bool  # pattern ends with '/': it matches folders (DICOM series)


def compile_pattern(text: str) -> Pattern:
    dirs = text.endswith("/")
    body = text.rstrip("/")
    out, names, pos = [], [], 0
    for m in _TOKEN.finditer(body):
        out.append(re.escape(body[pos : m.start()]))
        tok = m.group(0)
        if m.group(1):
            name = m.group(1)
            if name in names:
                out.append(f"(?P={name})")
            else:
                names.append(name)
                out.append(f"(?P<{name}>{m.group(2) or '[^/]+?'})")
        elif tok == "**/":
            out.append("(?:.*/)?")
        elif tok == "*":
            out.append("[^/]*")
        else:
            out.append("[^/]")
        pos = m.end()
    out.append(re.escape(body[pos:]))
    try:
        rx = re.compile("^" + "".join(out) + "$")
    except re.error as e:
        raise SpecError(f"bad pattern {text!r}: {e}") from e
    first = _TOKEN.search(body)
    prefix = body[: first.start()] if first else body
    prefix = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
    return Pattern(text, rx, tuple(names), prefix, dirs)


def _hidden(name: str) -> bool:
    # macOS AppleDouble companions (._x.nii.gz) and dot files are never data.
    return name.startswith(".")


def _walk(root: Path, start: Path, cache: dict | None) -> list[tuple[str, list[str], list[str]]]:
    """(relative folder, sub-folders, files) under ``start``, hidden entries dropped; memoised in ``cache``."""
    key = str(start)
    if cache is not None and key in cache:
        return cache[key]
    out = []
    for dirpath, dirnames, filenames in os.walk(start, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not _hidden(d))
        rel_dir = os.path.relpath(dirpath, root).replace(os.sep, "/")
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        out.append((rel_dir, list(dirnames), [f for f in filenames if not _hidden(f)]))
    if cache is not None:
        cache[key] = out
    return out


def find(root: Path, pattern: Pattern, exclude: list[str] = (), cache: dict | None = None) -> list[tuple[str, dict[str, str]]]:
    """All (relative path, captures) under ``root`` matching the pattern, sorted by path.

    ``cache`` (a dict owned by the caller, e.g. one discovery run) keeps folder listings, so many
    searches of one tree walk it once.
    """
    start = root / pattern.static_prefix if pattern.static_prefix else root
    if not start.exists():
        return []
    hits = []
    for rel_dir, dirnames, filenames in _walk(root, start, cache):
        candidates = dirnames if pattern.dirs else filenames
        for name in candidates:
            rel = rel_dir + name
            m = pattern.regex.match(rel)
            if m and not any(fnmatch.fnmatch(rel, x) or fnmatch.fnmatch(name, x) for x in exclude):
                hits.append((rel, {k: v for k, v in m.groupdict().items() if v is not None}))
    hits.sort(key=lambda h: h[0])
    return hits


def has_wildcards(template: str) -> bool:
    """Whether a template still holds ``*``/``**/``/``?`` after its captures (a path to search for)."""
    return any(m.group(1) is None for m in _TOKEN.finditer(template))


def fill_partial(template: str, captures: dict[str, str], keep: tuple[str, ...] = ()) -> str:
    """Fill the captures a template uses, keeping wildcards and the names in ``keep`` as they are."""

    def sub(m: re.Match) -> str:
        name = m.group(1)
        if name is None or name in keep:
            return m.group(0)
        if name not in captures:
            raise SpecError(f"template {template!r} uses capture {{{name}}} that the pattern does not define")
        return captures[name]

    return _TOKEN.sub(sub, template)


def fill(template: TemplateLike, captures: dict[str, str]) -> str:
    """Fill ``{name}`` / ``{name:regex}`` fields with captures; a Template's regex then keeps group 1."""
    tpl = template.template if isinstance(template, Template) else template

    def sub(m: re.Match) -> str:
        name = m.group(1)
        if name is None:
            raise SpecError(f"template {tpl!r} has a wildcard {m.group(0)!r}; templates may only use captures")
        if name not in captures:
            raise SpecError(f"template {tpl!r} uses capture {{{name}}} that the pattern does not define")
        return captures[name]

    value = _TOKEN.sub(sub, tpl)
    if isinstance(template, Template) and template.regex:
        m = re.search(template.regex, value)
        if not m:
            raise SpecError(f"regex {template.regex!r} does not match {value!r}")
        value = m.group(1) if m.groups() else m.group(0)
    return value
