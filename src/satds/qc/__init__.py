"""Quality control a person can look at: previews, automatic checks (``qc_flags``) and an HTML report."""

from .colors import class_color, class_hex
from .config import QCConfig
from .engine import QCSummary, run_qc
from .flags import CHECKS, SEVERITIES

__all__ = ["CHECKS", "QCConfig", "QCSummary", "SEVERITIES", "class_color", "class_hex", "run_qc"]
