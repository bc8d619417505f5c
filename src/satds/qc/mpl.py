"""matplotlib for previews and the report: the Agg backend, and its caches out of ``$HOME``."""

from __future__ import annotations

import os
import sys


def pyplot():
    """``matplotlib.pyplot`` on Agg. Unless the user chose one (``MPLCONFIGDIR``), matplotlib's config and
    font cache live in satds's per-user folder of the system temp folder, not under ``$HOME``."""
    if "matplotlib" not in sys.modules:
        from ..log import user_temp

        os.environ.setdefault("MPLCONFIGDIR", str(user_temp("matplotlib")))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
