"""Path patterns with named captures: ``imagesTr/{case}.nii.gz``, ``**/{sub}/{sub}_ct.nii.gz``.

``{name}`` matches one path component part (no ``/``), ``{name:regex}`` a custom regex, ``*`` anything
within one folder, ``**/`` any number of folders. A name used twice must match the same text.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import SpecError
from ..specs.model import NNUNET_ENDING, PATTERN_TOKEN, Template, TemplateLike
from .walk import walk

_TOKEN = PATTERN_TOKEN


@dataclass(frozen=True)
class Pattern:
    text: str
    regex: re.Pattern
    names: tuple[str, ...]
    static_prefix: str  # folder part before the first wildcard: where the walk starts
    dirs: bool  # pattern ends with '/': it matches folders (DICOM series)


@functools.lru_cache(maxsize=4096)
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


def find(
    root: Path, pattern: Pattern, exclude: list[str] = (), cache: dict | None = None, within: str = ""
) -> list[tuple[str, dict[str, str]]]:
    """All (relative path, captures) under ``root`` matching the pattern, sorted by path.

    ``cache`` (a dict owned by the caller, e.g. one discovery run) keeps folder listings, so many
    searches of one tree read each folder once (see :mod:`satds.ingest.walk`: symlinks are followed, each
    real folder once). ``within`` (a folder under ``root``, ending in ``/``) keeps only the paths in it: the
    walk starts there, or at the pattern's own fixed folder when that lies deeper.
    """
    start = pattern.static_prefix + "/" if pattern.static_prefix else ""
    if within:
        if within.startswith(start):
            start = within
        elif not start.startswith(within):
            return []  # the pattern's fixed folder is not in ``within``
    folder = root / start if start else root
    if not folder.is_dir():
        return []
    hits = []
    for rel_dir, dirnames, filenames in walk(root, folder, cache):
        candidates = dirnames if pattern.dirs else filenames
        for name in candidates:
            rel = rel_dir + name
            m = pattern.regex.match(rel)
            if m and not excluded(rel, exclude):
                hits.append((rel, {k: v for k, v in m.groupdict().items() if v is not None}))
    hits.sort(key=lambda h: h[0])
    return hits


def excluded(rel: str, exclude: list[str] | tuple[str, ...]) -> bool:
    """Whether a layout's ``exclude`` (fnmatch patterns on the path or on its last name) drops ``rel``."""
    if not exclude:
        return False
    name = rel.rpartition("/")[2]
    return any(fnmatch.fnmatch(rel, x) or fnmatch.fnmatch(name, x) for x in exclude)


def norm(text: str | None) -> str:
    """A name compared without case, spaces or punctuation (``"Left Kidney"`` = ``left_kidney``; None is '')."""
    return re.sub(r"[^0-9a-z]", "", "" if text is None else str(text).lower())


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


# ---------------------------------------------------------------------- pattern anatomy (roots, diagnostics)
def components(text: str) -> list[str]:
    """The pattern's path components, split at the ``/`` outside captures (``**/`` gives ``**``)."""
    body = text.rstrip("/")
    out, cur, depth = [], [], 0
    for ch in body:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == "/" and depth == 0:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return out


def is_literal(component: str) -> bool:
    return _TOKEN.search(component) is None


_SIMPLE = re.compile(r"(?:\\.|[A-Za-z0-9_ -])")


def regex_literal_prefix(rx: str) -> str:
    """The literal text every match of ``rx`` starts with (``BDMAP_\\d{8}`` → ``BDMAP_``), or ''."""
    depth, i = 0, 0
    while i < len(rx):  # a top-level alternation has no common literal prefix a simple scan can tell
        ch = rx[i]
        if ch == "\\":
            i += 2
            continue
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "|" and depth == 0:
            return ""
        i += 1
    out, i = [], 0
    while i < len(rx):
        m = _SIMPLE.match(rx, i)
        if not m:
            break
        tok = m.group(0)
        if tok.startswith("\\") and tok[1].isalnum():  # \d, \w, \s ...: a class, not a literal
            break
        nxt = rx[m.end() : m.end() + 1]
        if nxt and nxt in "?*{":
            break  # an optional or repeated character is not a fixed prefix
        out.append(tok[-1])
        i = m.end()
    return "".join(out)


def literal_ends(component: str) -> tuple[str, str]:
    """(prefix, suffix) every name matching one pattern component starts and ends with."""
    toks = list(_TOKEN.finditer(component))
    if not toks:
        return component, component
    prefix = component[: toks[0].start()]
    if not prefix and toks[0].group(1) and toks[0].group(2):
        prefix = regex_literal_prefix(toks[0].group(2))
    return prefix, component[toks[-1].end() :]


def glob_of(text: str) -> str:
    """A pattern as a reader-friendly glob: ``AbdomenCT-1K-ImagePart{part:[123]}/{case:Case_\\d{5}}_0000.nii.gz``
    → ``AbdomenCT-1K-ImagePart*/Case_*_0000.nii.gz``."""

    def sub(m: re.Match) -> str:
        if m.group(1) == NNUNET_ENDING:
            return ".nii.gz"
        if m.group(1):
            return (regex_literal_prefix(m.group(2)) if m.group(2) else "") + "*"
        return m.group(0)

    out = _TOKEN.sub(sub, text)
    return re.sub(r"\*+", "*", out)
