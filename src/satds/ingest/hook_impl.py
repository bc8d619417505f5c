"""The built-in hooks (see :mod:`satds.ingest.hooks`). Each is a small function with a docstring that says why."""

from __future__ import annotations
