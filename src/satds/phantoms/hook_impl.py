"""Built-in phantom writers (see :mod:`satds.phantoms.hooks`)."""

from __future__ import annotations
