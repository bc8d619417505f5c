"""The cross-patch transformer module around nnU-Net's network (satds.train.cptm, satds.train.plans): plans,
shapes, gradients, the window the predictor sees, nnU-Net's own sliding window, size and memory at the
paper's scale."""

from __future__ import annotations

import copy

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("nnunetv2")

from satds.train.cptm import middle as middle_patch, parameter_count, saved_activation_bytes  # noqa: E402
from satds.train.plans import CPTM_KEY, TINY_KEY, build_cptm_network, cptm_plans, long_axis, tiny_plans  # noqa: E402


def plans_for(patch, features, strides, *, kernel=3, transpose=(0, 1, 2), reader="SimpleITKIO", batch_dice=False) -> dict:
    """nnU-Net v2 plans (the keys its PlansManager and network builder read) for one 3d_fullres configuration."""
    n = len(features)
    return {
        "dataset_name": "Dataset999_Test",
        "plans_name": "nnUNetPlans",
        "transpose_forward": list(transpose),
        "transpose_backward": [list(transpose).index(i) for i in range(3)],
        "image_reader_writer": reader,
        "label_manager": "LabelManager",
        "configurations": {
            "3d_fullres": {
                "data_identifier": "nnUNetPlans_3d_fullres",
                "preprocessor_name": "DefaultPreprocessor",
                "batch_size": 2,
                "patch_size": list(patch),
                "spacing": [1.0, 1.0, 1.0],
                "normalization_schemes": ["CTNormalization"],
                "use_mask_for_norm": [False],
                "batch_dice": batch_dice,
                "architecture": {
                    "network_class_name": "dynamic_network_architectures.architectures.unet.PlainConvUNet",
                    "arch_kwargs": {
                        "n_stages": n,
                        "features_per_stage": list(features),
                        "conv_op": "torch.nn.modules.conv.Conv3d",
                        "kernel_sizes": [[kernel] * 3] * n,
                        "strides": [list(s) for s in strides],
                        "n_conv_per_stage": [2] * n,
                        "n_conv_per_stage_decoder": [2] * (n - 1),
                        "conv_bias": True,
                        "norm_op": "torch.nn.modules.instancenorm.InstanceNorm3d",
                        "norm_op_kwargs": {"eps": 1e-05, "affine": True},
                        "dropout_op": None,
                        "dropout_op_kwargs": None,
                        "nonlin": "torch.nn.LeakyReLU",
                        "nonlin_kwargs": {"inplace": True},
                    },
                    "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"],
                },
            }
        },
    }


#: nnU-Net's 3d_fullres plan for CTSpine1K's data (mean spacing 1.1 x 0.77 x 0.77 mm, 501 x 512 x 512 voxels):
#: what `nnUNetv2_plan_experiment` (2.8.1, default planner) gives for that fingerprint. The paper's own patch
#: size is lost from its text; this is the nnU-Net it built CPTM into.
PAPER = dict(patch=(128, 128, 128), features=(32, 64, 128, 256, 320, 320), strides=((1, 1, 1),) + ((2, 2, 2),) * 5)
SMALL = dict(patch=(20, 32, 32), features=(8, 16, 32, 32), strides=((1, 1, 1), (2, 2, 2), (2, 2, 2), (2, 2, 2)))


def network(spec: dict, n_classes: int = 4, *, deep_supervision: bool = True, **kw):
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    plans = cptm_plans(plans_for(spec["patch"], spec["features"], spec["strides"]), "3d_fullres", **kw)
    pm = PlansManager(plans)
    cm = pm.get_configuration("3d_fullres")
    torch.manual_seed(0)
    return build_cptm_network(pm, cm, 1, n_classes, deep_supervision), cm


# ---------------------------------------------------------------------- plans
def test_cptm_plans_window_and_bottleneck():
    plans = plans_for(**SMALL)
    out = cptm_plans(plans, "3d_fullres", blocks=3, heads=4)
    c = out["configurations"]["3d_fullres"]
    # P along the long axis (array axis 0 for SimpleITK) rounded to twice the stride (8): 20 -> 16; window 32
    assert c["patch_size"] == [32, 32, 32]
    assert c[CPTM_KEY] == {"axis": 0, "patch": 16, "planned_patch_size": [20, 32, 32], "bottleneck": [2, 4, 4], "blocks": 3, "heads": 4, "mlp_ratio": 4.0}
    assert plans["configurations"]["3d_fullres"]["patch_size"] == [20, 32, 32]  # the input is not changed
    assert cptm_plans(out, "3d_fullres") == out  # idempotent: plans saved with a model are used as they are
    # the long axis follows nnU-Net's transpose and reader
    assert long_axis(plans_for(**SMALL, transpose=(2, 0, 1))) == 1
    assert long_axis(plans_for(**SMALL, reader="NibabelIOWithReorient")) == 2


def test_tiny_plans_keep_stages_and_shrink_the_rest():
    t = tiny_plans(plans_for(**PAPER), "3d_fullres")["configurations"]["3d_fullres"]
    a = t["architecture"]["arch_kwargs"]
    assert a["n_stages"] == 6 and a["features_per_stage"] == [4, 8, 16, 32, 40, 40]
    assert a["n_conv_per_stage"] == [1] * 6 and a["n_conv_per_stage_decoder"] == [1] * 5
    assert t["patch_size"] == [32, 32, 32] and t[TINY_KEY] is True  # a multiple of the stride (32)


# ---------------------------------------------------------------------- the network
def test_forward_backward_shapes_and_gradients():
    net, cm = network(SMALL, n_classes=4, blocks=1, heads=2)
    x = torch.randn(2, 1, *cm.patch_size)
    out = net.train()(x)
    # training: deep-supervision outputs of the middle patch (16 along the long axis)
    assert [tuple(o.shape) for o in out] == [(2, 4, 16, 32, 32), (2, 4, 8, 16, 16), (2, 4, 4, 8, 8)]
    sum(o.square().mean() for o in out).backward()
    for name, module in (("encoder", net.encoder), ("transformer", net.cptm), ("decoder", net.decoder)):
        grads = [p.grad for p in module.parameters()]
        assert all(g is not None for g in grads) and sum(float(g.abs().sum()) for g in grads) > 0, name
    net.eval()
    net.decoder.deep_supervision = False
    with torch.no_grad():
        full = net(x)
    assert tuple(full.shape) == (2, 4, 32, 32, 32)  # inference: logits for the whole window
    with pytest.raises(ValueError, match="windows of 32"):
        net(torch.randn(1, 1, 16, 32, 32))


def test_the_window_output_is_the_trained_middle_and_the_volume_end_convention():
    net, cm = network(SMALL, blocks=2, heads=2)
    net.eval()
    x = torch.randn(1, 1, *cm.patch_size)
    p, s = 16, 8
    with torch.no_grad():
        middle = net(x)[0]  # eval with deep supervision on: nnU-Net's online validation path
        net.decoder.deep_supervision = False
        full = net(x)
        net.decoder.deep_supervision = True
        # the window shifted half a patch up / down, zero-padded like a window overhanging a volume's end
        up = net(torch.cat([torch.zeros_like(x[:, :, :s]), x[:, :, : 2 * p - s]], 2))[0]
        down = net(torch.cat([x[:, :, s:], torch.zeros_like(x[:, :, :s])], 2))[0]
    same = dict(atol=1e-5, rtol=1e-5)  # batch composition may change the convolution algorithm's rounding
    assert torch.allclose(full[:, :, s : s + p], middle, **same)
    assert torch.equal(middle_patch(full, 0), full[:, :, s : s + p])  # what the trainer crops targets with
    assert torch.allclose(full[:, :, :s], up[:, :, :s], **same)
    assert torch.allclose(full[:, :, s + p :], down[:, :, s:], **same)
    # the neighbours matter: change only patch 1's first half (outside the middle patch) and the middle moves
    y = x.clone()
    y[:, :, :s] = torch.randn_like(y[:, :, :s])
    with torch.no_grad():
        assert (net(y)[0] - middle).abs().max() > 1e-3


@pytest.mark.parametrize("length", [32, 40, 57, 96, 130])
def test_nnunet_sliding_window_gives_every_slice_a_middle(length):
    from nnunetv2.inference.sliding_window_prediction import compute_steps_for_sliding_window

    window, p = 32, 16
    steps = compute_steps_for_sliding_window((length, 32, 32), (window, 32, 32), 0.5)[0]
    covered = set()
    for s in steps:
        covered |= set(range(s + p // 2, s + p // 2 + p))
    # every slice is some window's middle except the first and last half patch, which the outer quarters
    # (the volume-end convention above) predict
    assert set(range(p // 2, length - p // 2)) <= covered


def test_nnunet_predictor_runs_the_network_unchanged():
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    plans = cptm_plans(plans_for(**SMALL), "3d_fullres", blocks=1, heads=2)
    pm = PlansManager(plans)
    cm = pm.get_configuration("3d_fullres")
    net = build_cptm_network(pm, cm, 1, 3, False)
    dataset_json = {"labels": {"background": 0, "a": 1, "b": 2}, "channel_names": {"0": "CT"}, "file_ending": ".nii.gz"}
    pred = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=True, perform_everything_on_device=False, device=torch.device("cpu"), allow_tqdm=False)
    pred.manual_initialization(net, pm, cm, None, dataset_json, "nnUNetTrainer_SatdsCPTM", (0,))  # mirroring swaps patches 1 and 3
    logits = pred.predict_sliding_window_return_logits(torch.randn(1, 45, 32, 30))  # longer than a window, padded in-plane
    assert tuple(logits.shape) == (3, 45, 32, 30) and torch.isfinite(logits.float()).all()


# ---------------------------------------------------------------------- the paper's scale
def test_parameter_count_and_memory_at_the_papers_patch_size():
    from nnunetv2.utilities.get_network_from_plans import get_network_from_plans
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    net, cm = network(PAPER, n_classes=26)  # 25 vertebrae + background; defaults: 2 blocks, 8 heads, MLP x4
    assert cm.patch_size == [256, 128, 128] and cm.configuration[CPTM_KEY]["bottleneck"] == [4, 4, 4]  # 64 tokens a patch
    pm = PlansManager(plans_for(**PAPER))
    plain = pm.get_configuration("3d_fullres")
    unet = get_network_from_plans(plain.network_arch_class_name, plain.network_arch_init_kwargs, plain.network_arch_init_kwargs_req_import, 1, 26, allow_init=True, deep_supervision=True)
    c = 320  # bottleneck channels
    mha, ffn = 4 * c * c + 4 * c, 2 * 4 * c * c + 4 * c + c
    per_block = (2 * 2 * c + mha + ffn) + (3 * 2 * c + mha + ffn)  # T_s (2 norms) + T_c (3 norms)
    assert parameter_count(net.cptm) == 2 * per_block == 4_933_120
    assert parameter_count(net) == parameter_count(unet) + parameter_count(net.cptm)  # the encoder is shared
    # activation memory of one training step (batch 2), counted on the meta device in half precision
    base = saved_activation_bytes(unet, (2, 1, 128, 128, 128))
    cptm = saved_activation_bytes(net.train(), (2, 1, 256, 128, 128))
    assert 3.0 < base / 2**30 < 3.7  # nnU-Net's own network: ~3.3 GiB
    assert 1.6 < cptm / base < 2.1  # three encoder passes, one decoder pass: ~1.8x, ~6 GiB
    assert copy.deepcopy(net).training  # the estimate left the network alone
