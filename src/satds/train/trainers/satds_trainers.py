"""nnU-Net trainers shipped with satds, found by nnU-Net through ``nnUNet_extTrainer`` (this folder).

This folder is deliberately not a Python package of satds: nnU-Net imports its modules by file, at train
*and* at predict time (the trainer's name is stored in the checkpoint), and satds never writes into
nnU-Net's installed files. Only nnU-Net is imported here.
"""

import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer


class nnUNetTrainer_SatdsSmoke(nnUNetTrainer):
    """The smallest honest training: 1 epoch of 3 iterations, 1 validation iteration, no mirroring at test time.

    For CI and for checking a whole export → train → predict loop on a CPU (about a minute on 2 cores for
    tiny cases). The model is useless; the loop is real.
    """

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict, device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs = 1
        self.num_iterations_per_epoch = 3
        self.num_val_iterations_per_epoch = 1
        self.save_every = 1

    def configure_rotation_dummyDA_mirroring_and_inital_patch_size(self):
        out = super().configure_rotation_dummyDA_mirroring_and_inital_patch_size()
        self.inference_allowed_mirroring_axes = None  # no 8x mirroring in the final validation and at predict time
        return out


class nnUNetTrainer_SatdsShort(nnUNetTrainer):
    """A short real run: 10 epochs x 30 iterations (300 training iterations), 5 validation iterations each.

    Enough for a model that finds large organs on a small dataset, e.g. to check a new export on a GPU in
    minutes (on a CPU, expect roughly 2-3 s per iteration for 64^3 patches).
    """

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict, device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs = 10
        self.num_iterations_per_epoch = 30
        self.num_val_iterations_per_epoch = 5
        self.save_every = 5
