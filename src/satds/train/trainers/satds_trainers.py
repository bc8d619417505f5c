"""nnU-Net trainers shipped with satds, found by nnU-Net through ``nnUNet_extTrainer`` (this folder).

This folder is deliberately not a Python package of satds: nnU-Net imports its modules by file, at train
*and* at predict time (the trainer's name is stored in the checkpoint), and satds never writes into
nnU-Net's installed files. The classes themselves live in :mod:`satds.train.nnunet_trainers` (an ordinary
module, so worker processes and pickles find them by their real name); this file only names them for
nnU-Net's search. See that module and docs/export-and-training.md for what each trainer does.
"""

from satds.train.nnunet_trainers import (  # noqa: F401
    nnUNetTrainer_Satds,
    nnUNetTrainer_SatdsCPTM,
    nnUNetTrainer_SatdsCPTMSmoke,
    nnUNetTrainer_SatdsMargExc,
    nnUNetTrainer_SatdsMargExcSmoke,
    nnUNetTrainer_SatdsShort,
    nnUNetTrainer_SatdsSmoke,
)
