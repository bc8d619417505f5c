"""``satds`` command line. Each module in this package adds its subcommands to :data:`app.app`."""

from __future__ import annotations

import importlib
import pkgutil

from .app import app

for _m in pkgutil.iter_modules(__path__):
    if _m.name not in {"app"}:
        importlib.import_module(f"{__name__}.{_m.name}")


def main() -> None:
    app()
