"""``satds split``: patient- and image-level leakage groups, splits, CV and leave-one-dataset-out folds."""

from .assign import assign_splits, cv_folds, load_sat_splits, lodo_folds
from .engine import SplitSummary, run_split
from .groups import Groups, make_groups

__all__ = ["Groups", "SplitSummary", "assign_splits", "cv_folds", "load_sat_splits", "lodo_folds", "make_groups", "run_split"]
