"""satds's nnU-Net v2 trainers. nnU-Net finds them by name through ``nnUNet_extTrainer`` (``satds/train/trainers``
re-exports them), at train and at predict time; they live here so that they are importable as
``satds.train.nnunet_trainers`` wherever satds is installed (worker processes included).

| trainer | what |
|---|---|
| ``nnUNetTrainer_Satds`` | nnU-Net's default trainer; ``SATDS_EPOCHS`` / ``SATDS_ITERATIONS`` / ``SATDS_VAL_ITERATIONS`` set its schedule (``satds train --epochs``); fold ``all`` skips the final validation (it would score the training cases) |
| ``nnUNetTrainer_SatdsMargExc`` | marginal + exclusion losses (Shi et al. 2021) from the export's ``class_status.json`` |
| ``nnUNetTrainer_SatdsCPTM`` | the cross-patch transformer module on windows of three patches (universal-33 paper §2.1) |
| ``..._SatdsSmoke``, ``..._SatdsMargExcSmoke``, ``..._SatdsCPTMSmoke`` | the same on a tiny network (features / 8, one conv per stage, patches of about 32), 1 epoch x 2 iterations, no test-time mirroring: CI and loop checks |
| ``nnUNetTrainer_SatdsShort`` | 10 epochs x 30 iterations: a quick real run |

Importing this module imports torch and nnU-Net: only nnU-Net processes do.
"""

from __future__ import annotations

import json
import os

import numpy as np
import torch
from batchgenerators.dataloading.nondet_multi_threaded_augmenter import NonDetMultiThreadedAugmenter
from batchgenerators.dataloading.single_threaded_augmenter import SingleThreadedAugmenter
from nnunetv2.training.dataloading.data_loader import nnUNetDataLoader
from nnunetv2.training.dataloading.nnunet_dataset import infer_dataset_class
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.utilities.default_n_proc_DA import get_allowed_n_proc_DA

from ..export.class_status import CLASS_STATUS
from .cptm import middle
from .losses import PartialLabelLoss, admits_matrix
from .plans import CPTM_KEY, build_cptm_network, cptm_plans, tiny_plans

CUDA = torch.device("cuda")


def _env_int(name: str, default: int) -> int:
    v = os.environ.get(name, "").strip()
    return int(v) if v else default


class nnUNetTrainer_Satds(nnUNetTrainer):
    """nnU-Net's default trainer with satds's schedule knobs (environment, set by ``satds train``):
    ``SATDS_EPOCHS``, ``SATDS_ITERATIONS`` (per epoch), ``SATDS_VAL_ITERATIONS``. Fold ``all`` trains on every
    case and skips the final validation, which would only score training cases."""

    epochs, iterations, val_iterations = 1000, 250, 50
    tiny = False  # smoke variants: a tiny network on small patches
    mirror_at_inference = True

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict, device: torch.device = CUDA):
        plans = self.adapt_plans(plans, configuration)
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs = _env_int("SATDS_EPOCHS", self.epochs)
        self.num_iterations_per_epoch = _env_int("SATDS_ITERATIONS", self.iterations)
        self.num_val_iterations_per_epoch = _env_int("SATDS_VAL_ITERATIONS", self.val_iterations)
        self.save_every = max(1, min(50, self.num_epochs))

    def adapt_plans(self, plans: dict, configuration: str) -> dict:
        """The plans this trainer builds its network from (saved with the model, used again at predict time)."""
        return tiny_plans(plans, configuration) if self.tiny else plans

    def configure_rotation_dummyDA_mirroring_and_inital_patch_size(self):
        out = super().configure_rotation_dummyDA_mirroring_and_inital_patch_size()
        if not self.mirror_at_inference:
            self.inference_allowed_mirroring_axes = None  # no 8x mirroring in the final validation and at predict time
        return out

    def perform_actual_validation(self, save_probabilities: bool = False):
        if self.fold == "all":
            self.print_to_log_file("fold 'all': every case is a training case; the final validation is skipped")
            return
        return super().perform_actual_validation(save_probabilities)


class _Smoke:
    """The smoke settings, mixed in before a satds trainer: a tiny network, 1 epoch of 2 iterations, 1 validation
    iteration, no mirroring at test time (the class names stay nnU-Net's way to find a trainer and its checkpoints)."""

    epochs, iterations, val_iterations = 1, 2, 1
    tiny = True
    mirror_at_inference = False


class nnUNetTrainer_SatdsSmoke(_Smoke, nnUNetTrainer_Satds):
    """The smallest honest training: a tiny network, 1 epoch of 2 iterations, 1 validation iteration, no mirroring
    at test time. For CI and for checking a whole loop on a CPU; the model is useless, the loop is real."""


class nnUNetTrainer_SatdsShort(nnUNetTrainer_Satds):
    """A short real run: 10 epochs x 30 iterations (300 training iterations), 5 validation iterations each."""

    epochs, iterations, val_iterations = 10, 30, 5


# ---------------------------------------------------------------------- marginal + exclusion
class nnUNetTrainer_SatdsMargExc(nnUNetTrainer_Satds):
    """Marginal loss and exclusion loss (Shi et al. 2021) for partially labelled tasks.

    Reads ``class_status.json`` (written by ``satds export nnunet`` beside ``dataset.json``; ``satds train``
    copies it into the preprocessed folder): per case, which labels stand for more than themselves (under
    the ``marginal`` policy, background stands for "background or a class this case does not annotate"). Each
    batch's cases select their rows; the loss is marginal CE + marginal Dice + ``exclusion_weight`` x
    exclusion (``exclusion_form``: cross-entropy on the negatives, or Shi et al.'s Dice overlap), with
    nnU-Net's deep-supervision weights. Needs labels without nnU-Net's ignore value.
    """

    exclusion_weight = 1.0
    exclusion_form = "ce"  # or "dice": Shi et al.'s Dice overlap (see satds.train.losses.exclusion)

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict, device: torch.device = CUDA):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.class_status = self._read_class_status()

    def _read_class_status(self) -> dict:
        from nnunetv2.paths import nnUNet_raw

        dataset = self.plans_manager.dataset_name
        candidates = [os.path.join(self.preprocessed_dataset_folder_base or "", CLASS_STATUS)]
        if nnUNet_raw.is_set():
            candidates.append(os.path.join(nnUNet_raw, dataset, CLASS_STATUS))
        for c in candidates:
            if os.path.isfile(c):
                with open(c) as f:
                    return json.load(f)
        raise RuntimeError(
            f"{type(self).__name__} needs {CLASS_STATUS} (per-case annotated classes), looked in: {', '.join(candidates)}. "
            f"Export the task with satds (`satds export nnunet --policy marginal`) and train it with `satds train`."
        )

    def _build_loss(self):
        lm = self.label_manager
        if lm.has_regions:
            raise RuntimeError(f"{type(self).__name__} works on label maps, not nnU-Net regions (export with overlap: precedence)")
        if lm.has_ignore_label:
            raise RuntimeError(
                f"{type(self).__name__}: dataset.json declares an ignore label; the marginal loss needs the `marginal` export "
                "policy (`satds export nnunet --policy marginal`), where unannotated classes are merged, not ignored"
            )
        weights = None
        if self.enable_deep_supervision:
            w = np.array([1 / (2**i) for i in range(len(self._get_deep_supervision_scales()))])
            w[-1] = 0
            weights = (w / w.sum()).tolist()
        return PartialLabelLoss(
            batch_dice=self.configuration_manager.batch_dice, exclusion_weight=self.exclusion_weight, exclusion_form=self.exclusion_form, ds_weights=weights
        )

    def _set_admits(self, keys) -> None:
        cases = self.class_status.get("cases", {})
        missing = [k for k in keys if k not in cases]
        if missing:
            raise RuntimeError(f"{CLASS_STATUS} has no entry for case(s) {missing}; export the task again")
        rows = [cases[k].get("admits", {}) for k in keys]
        self.loss.admits = admits_matrix(rows, self.label_manager.num_segmentation_heads, self.device)

    def train_step(self, batch: dict) -> dict:
        self._set_admits(batch["keys"])
        return super().train_step(batch)

    def validation_step(self, batch: dict) -> dict:
        self._set_admits(batch["keys"])
        return super().validation_step(batch)


class nnUNetTrainer_SatdsMargExcSmoke(_Smoke, nnUNetTrainer_SatdsMargExc):
    """:class:`nnUNetTrainer_SatdsMargExc` on the smoke schedule and tiny network."""


# ---------------------------------------------------------------------- cross-patch transformer
class nnUNetTrainer_SatdsCPTM(nnUNetTrainer_Satds):
    """nnU-Net with the cross-patch transformer module (universal-33 paper, §2.1; :mod:`satds.train.cptm`).

    The plans' patch size becomes a window of three half-overlapping patches along the long axis
    (:func:`satds.train.plans.cptm_plans`); the sampler lets windows overhang the volume by half a patch on
    that axis so that middle patches reach the end slices; the loss and online validation see the middle
    patch. nnU-Net's predictor runs the model unchanged (the network returns logits for the whole window).
    """

    cptm_blocks, cptm_heads = 2, 8

    def adapt_plans(self, plans: dict, configuration: str) -> dict:
        return cptm_plans(super().adapt_plans(plans, configuration), configuration, blocks=self.cptm_blocks, heads=self.cptm_heads)

    @staticmethod
    def build_network_architecture(plans_manager, configuration_manager, num_input_channels, num_output_channels, enable_deep_supervision: bool = True):
        return build_cptm_network(plans_manager, configuration_manager, num_input_channels, num_output_channels, enable_deep_supervision)

    @property
    def cptm(self) -> dict:
        return self.configuration_manager.configuration[CPTM_KEY]

    def _middle_batch(self, batch: dict) -> dict:
        target, axis = batch["target"], self.cptm["axis"]
        target = [middle(t, axis) for t in target] if isinstance(target, list) else middle(target, axis)
        return {**batch, "target": target}

    def train_step(self, batch: dict) -> dict:
        return super().train_step(self._middle_batch(batch))

    def validation_step(self, batch: dict) -> dict:
        return super().validation_step(self._middle_batch(batch))

    def get_dataloaders(self):
        """nnU-Net's loaders, with windows that may overhang the volume by half a patch along the long axis."""
        if self.dataset_class is None:
            self.dataset_class = infer_dataset_class(self.preprocessed_dataset_folder)
        patch_size = self.configuration_manager.patch_size
        ds_scales = self._get_deep_supervision_scales()
        rotation, dummy_2d, initial_patch_size, mirror_axes = self.configure_rotation_dummyDA_mirroring_and_inital_patch_size()
        lm = self.label_manager
        regions = lm.foreground_regions if lm.has_regions else None
        tr_transforms = self.get_training_transforms(
            patch_size, rotation, ds_scales, mirror_axes, dummy_2d, use_mask_for_norm=self.configuration_manager.use_mask_for_norm,
            is_cascaded=self.is_cascaded, foreground_labels=lm.foreground_labels, regions=regions, ignore_label=lm.ignore_label,
        )
        val_transforms = self.get_validation_transforms(ds_scales, is_cascaded=self.is_cascaded, foreground_labels=lm.foreground_labels, regions=regions, ignore_label=lm.ignore_label)
        dataset_tr, dataset_val = self.get_tr_and_val_datasets()
        pad = [0] * len(patch_size)
        pad[self.cptm["axis"]] = int(self.cptm["patch"])  # half a patch on each side
        common = dict(oversample_foreground_percent=self.oversample_foreground_percent, sampling_probabilities=None, pad_sides=pad, probabilistic_oversampling=self.probabilistic_oversampling)
        dl_tr = nnUNetDataLoader(dataset_tr, self.batch_size, initial_patch_size, patch_size, lm, transforms=tr_transforms, **common)
        dl_val = nnUNetDataLoader(dataset_val, self.batch_size, patch_size, patch_size, lm, transforms=val_transforms, **common)
        n = get_allowed_n_proc_DA()
        if n == 0:
            gen_tr, gen_val = SingleThreadedAugmenter(dl_tr, None), SingleThreadedAugmenter(dl_val, None)
        else:
            pin = self.device.type == "cuda"
            gen_tr = NonDetMultiThreadedAugmenter(data_loader=dl_tr, transform=None, num_processes=n, num_cached=max(6, n // 2), seeds=None, pin_memory=pin, wait_time=0.002)
            gen_val = NonDetMultiThreadedAugmenter(data_loader=dl_val, transform=None, num_processes=max(1, n // 2), num_cached=max(3, n // 4), seeds=None, pin_memory=pin, wait_time=0.002)
        _ = next(gen_tr)
        _ = next(gen_val)
        return gen_tr, gen_val


class nnUNetTrainer_SatdsCPTMSmoke(_Smoke, nnUNetTrainer_SatdsCPTM):
    """:class:`nnUNetTrainer_SatdsCPTM` on the smoke schedule and tiny network (CPTM with 1 block, 2 heads)."""

    cptm_blocks, cptm_heads = 1, 2

