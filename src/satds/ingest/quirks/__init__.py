"""Dataset quirks that data cannot say: one module per release family, each registering named hooks.

Every module in this package is imported when a hook is first looked up; a module registers its
functions with :func:`satds.ingest.hooks.hook`. Keep each function small, with a docstring saying why
the release needs it.
"""

import importlib
import pkgutil

for _m in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_m.name}")
