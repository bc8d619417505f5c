"""Phantom releases: tiny, faithful copies of each dataset's native layout, written from its spec."""

from .generate import generate

__all__ = ["generate"]
