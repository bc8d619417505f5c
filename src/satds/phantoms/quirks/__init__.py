"""Phantom writers for releases the generic writer cannot produce: one module per release family.

Each module registers its writers with :func:`satds.phantoms.hooks.writer`.
"""

import importlib
import pkgutil

for _m in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_m.name}")
