"""nnU-Net plans as satds's trainers change them: tiny smoke networks, and the CPTM window.

nnU-Net keeps the plans a trainer was built with (``plans.json`` in the model folder, the ``init_args`` of its
checkpoints) and rebuilds the network from them at predict time, so a trainer that edits its plans before
nnU-Net's ``__init__`` sees them gets a model that nnU-Net's own predictor runs unchanged. Pure dict edits
here; nnU-Net is imported inside the functions.
"""

from __future__ import annotations

import copy
import math

#: The key of the CPTM settings inside a configuration of the plans.
CPTM_KEY = "satds_cptm"
#: The key recording that a configuration was shrunk for smoke runs.
TINY_KEY = "satds_tiny"


def _resolved(plans: dict, configuration: str) -> dict:
    """The configuration with nnU-Net's inheritance resolved, as a standalone dict."""
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    plans = {k: v for k, v in plans.items() if k != "continue_training"}
    cfg = copy.deepcopy(PlansManager(plans).get_configuration(configuration).configuration)
    cfg.pop("inherits_from", None)
    return cfg


def _strides_per_axis(arch: dict) -> list[int]:
    strides = arch["strides"]
    dim = len(strides[0]) if isinstance(strides[0], (list, tuple)) else 1
    return [math.prod(int(s[a]) for s in strides) for a in range(dim)]


def tiny_plans(plans: dict, configuration: str, *, max_patch: int = 32, feature_divisor: int = 8) -> dict:
    """A copy of ``plans`` whose ``configuration`` is a tiny network on small patches (smoke runs).

    Same stages and strides (so the preprocessed data and every downstream step stay nnU-Net's), features
    divided by ``feature_divisor`` (at least 4), one convolution per stage, and each patch axis cut to about
    ``max_patch`` (a multiple of the network's total stride on that axis).
    """
    plans = copy.deepcopy(plans)
    cfg = _resolved(plans, configuration)
    if cfg.get(TINY_KEY):
        return plans
    arch = cfg["architecture"]["arch_kwargs"]
    n = int(arch["n_stages"])
    arch["features_per_stage"] = [max(4, int(f) // feature_divisor) for f in arch["features_per_stage"]]
    for key in ("n_conv_per_stage", "n_blocks_per_stage"):
        if key in arch:
            arch[key] = [1] * n
    arch["n_conv_per_stage_decoder"] = [1] * (n - 1)
    d = _strides_per_axis(arch)
    cfg["patch_size"] = [max(da, min(int(p), math.ceil(max_patch / da) * da)) for p, da in zip(cfg["patch_size"], d)]
    cfg[TINY_KEY] = True
    plans["configurations"][configuration] = cfg
    return plans


def long_axis(plans: dict) -> int:
    """The axis of nnU-Net's (transposed) arrays that is the exported images' third axis, superior in RAS.

    SimpleITK (nnU-Net's reader for .nii.gz) gives arrays as (k, j, i), so the third image axis is array axis
    0; nibabel readers keep (i, j, k). nnU-Net then permutes axes by ``transpose_forward``.
    """
    reader = str(plans.get("image_reader_writer", "SimpleITKIO"))
    original = 2 if "nibabel" in reader.lower() else 0
    return list(plans["transpose_forward"]).index(original)


def cptm_plans(plans: dict, configuration: str, *, blocks: int = 2, heads: int = 8, ratio: float = 4.0) -> dict:
    """A copy of ``plans`` whose ``configuration`` trains CPTM on windows of three half-overlapping patches.

    The planned patch size P along the long axis (rounded to a multiple of twice the network's stride on that
    axis, so that the bottleneck splits into two halves) stays the size of one patch; nnU-Net's ``patch_size``
    becomes the window, 2P, which is what nnU-Net's sampler crops and its sliding window steps over. The
    settings are stored under :data:`CPTM_KEY` in the configuration, where the network builder reads them.
    Idempotent: plans already holding them are returned as they are.
    """
    plans = copy.deepcopy(plans)
    cfg = _resolved(plans, configuration)
    if CPTM_KEY in cfg:
        return plans
    if len(cfg["patch_size"]) != 3:
        raise ValueError(f"CPTM needs a 3D configuration; {configuration} has patch size {cfg['patch_size']}")
    axis = long_axis(plans)
    d = _strides_per_axis(cfg["architecture"]["arch_kwargs"])
    planned = [int(p) for p in cfg["patch_size"]]
    unit = 2 * d[axis]
    patch = max(unit, int(round(planned[axis] / unit)) * unit)
    window = list(planned)
    window[axis] = 2 * patch
    bottleneck = [w // da for w, da in zip(planned, d)]
    bottleneck[axis] = patch // d[axis]
    cfg["patch_size"] = window
    cfg[CPTM_KEY] = {
        "axis": axis,
        "patch": patch,
        "planned_patch_size": planned,
        "bottleneck": bottleneck,
        "blocks": int(blocks),
        "heads": int(heads),
        "mlp_ratio": float(ratio),
    }
    plans["configurations"][configuration] = cfg
    return plans


def heads_for(dim: int, wanted: int) -> int:
    """The largest head count <= ``wanted`` that divides ``dim``."""
    return max(h for h in range(1, max(1, wanted) + 1) if dim % h == 0)


def build_cptm_network(plans_manager, configuration_manager, num_input_channels: int, num_output_channels: int, enable_deep_supervision: bool = True):
    """nnU-Net's network from the plans, wrapped with CPTM (the settings of :func:`cptm_plans`)."""
    from nnunetv2.utilities.get_network_from_plans import get_network_from_plans

    from .cptm import CPTMNet

    c = configuration_manager.configuration.get(CPTM_KEY)
    if c is None:
        raise ValueError("these plans hold no CPTM settings (satds_cptm); train with nnUNetTrainer_SatdsCPTM")
    unet = get_network_from_plans(
        configuration_manager.network_arch_class_name,
        configuration_manager.network_arch_init_kwargs,
        configuration_manager.network_arch_init_kwargs_req_import,
        num_input_channels,
        num_output_channels,
        allow_init=True,
        deep_supervision=enable_deep_supervision,
    )
    dim = int(unet.encoder.output_channels[-1])
    return CPTMNet(unet, axis=c["axis"], patch=c["patch"], bottleneck=tuple(c["bottleneck"]), blocks=c["blocks"], heads=heads_for(dim, c["heads"]), ratio=c["mlp_ratio"])
