"""nnU-Net v2 launcher: folders and environment, planning, grouped folds, training and prediction."""

from .nnunet import TRAINERS_DIR, NnunetPaths, TrainError, TrainResult, predict, train

__all__ = ["NnunetPaths", "TRAINERS_DIR", "TrainError", "TrainResult", "predict", "train"]
