"""The partial-label losses (satds.train.losses) on tiny tensors: hand-computed values, nnU-Net's own loss as
the reference when every class is annotated, and the gradients that make them partial-label losses."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from satds.train.losses import PartialLabelLoss, admits_matrix, exclusion, marginal_ce, marginal_dice, scored_labels  # noqa: E402

SMOOTH = 1e-5


def logits_of(probs) -> "torch.Tensor":
    """(1, C, V) logits whose softmax over C is ``probs`` (V voxels x C classes)."""
    return torch.log(torch.tensor(probs, dtype=torch.float64)).T.unsqueeze(0).float()


def target_of(labels) -> "torch.Tensor":
    return torch.tensor(labels).view(1, 1, -1)


# ---------------------------------------------------------------------- marginal loss
@pytest.mark.parametrize("batch_dice", [False, True])
def test_marginal_loss_is_nnunets_loss_when_every_class_is_annotated(batch_dice):
    pytest.importorskip("nnunetv2")
    from nnunetv2.training.loss.compound_losses import DC_and_CE_loss
    from nnunetv2.training.loss.dice import MemoryEfficientSoftDiceLoss

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 4, 5, 6, 3, generator=g)
    target = torch.randint(0, 4, (2, 1, 5, 6, 3), generator=g)
    eye = admits_matrix([{}, {}], 4)
    ref = DC_and_CE_loss({"batch_dice": batch_dice, "smooth": SMOOTH, "do_bg": False, "ddp": False}, {}, weight_ce=1, weight_dice=1, ignore_label=None, dice_class=MemoryEfficientSoftDiceLoss)
    ours = marginal_ce(logits, target, eye) + marginal_dice(logits, target, eye, batch_dice=batch_dice)
    assert float(ours) == pytest.approx(float(ref(logits, target)), abs=1e-6)
    assert float(marginal_ce(logits, target, eye)) == pytest.approx(float(torch.nn.functional.cross_entropy(logits, target[:, 0])), abs=1e-6)


def test_marginal_values_by_hand():
    # classes: 0 background, 1 liver, 2 spleen; the case annotates the liver only: background may be spleen
    probs = [[0.5, 0.25, 0.25], [0.2, 0.7, 0.1]]
    logits, target = logits_of(probs), target_of([0, 1])
    adm = admits_matrix([{"0": [0, 2]}], 3)
    assert float(marginal_ce(logits, target, adm)) == pytest.approx((-math.log(0.75) - math.log(0.7)) / 2, rel=1e-5)
    # Dice: only the liver is a class of its own here (background is skipped as in nnU-Net, spleen is merged)
    assert scored_labels(adm).tolist() == [[True, True, False]]
    liver = (2 * 0.7 + SMOOTH) / (1 + (0.25 + 0.7) + SMOOTH)
    assert float(marginal_dice(logits, target, adm)) == pytest.approx(-liver, rel=1e-5)
    # the same case seen as fully annotated: plain CE, and the spleen's Dice (0 + smooth / 0.35 + smooth) counts
    eye = admits_matrix([{}], 3)
    assert float(marginal_ce(logits, target, eye)) == pytest.approx((-math.log(0.5) - math.log(0.7)) / 2, rel=1e-5)
    spleen = SMOOTH / (0.35 + SMOOTH)
    assert float(marginal_dice(logits, target, eye)) == pytest.approx(-(liver + spleen) / 2, rel=1e-4)


def test_an_unannotated_class_gets_no_gradient_of_its_own():
    # Background and the unannotated spleen (class 2) share probability mass exp(m) in a fixed ratio r:
    # logit_bg = m + log(1 - r), logit_spleen = m + log(r). The marginal loss only sees their sum: d/dr = 0.
    g = torch.Generator().manual_seed(1)
    n = 12
    m = torch.randn(n, generator=g)
    r = torch.full((n,), 0.3, requires_grad=True)
    liver = torch.randn(n, generator=g, requires_grad=True)
    target = torch.tensor([0, 1] * (n // 2)).view(1, 1, n)  # background or liver

    def logits():
        return torch.stack([m + torch.log(1 - r), liver, m + torch.log(r)]).unsqueeze(0)  # (1, 3, n)

    loss = PartialLabelLoss(batch_dice=False, exclusion_weight=0.0)
    loss.admits = admits_matrix([{0: [0, 2]}], 3)
    loss(logits(), target).backward()
    assert torch.allclose(r.grad, torch.zeros_like(r), atol=1e-6)
    assert liver.grad.abs().sum() > 1e-3  # the annotated class is trained
    # the same tensors under plain CE + Dice (spleen taken as known absent): its share of background is pushed down
    r.grad = None
    loss.admits = admits_matrix([{}], 3)
    loss(logits(), target).backward()
    assert (r.grad[target[0, 0] == 0] > 1e-3).all()


# ---------------------------------------------------------------------- exclusion loss
def test_exclusion_by_hand_penalises_overlap_with_another_annotated_class():
    # classes 0 bg, 1 liver, 2 spleen, both annotated; voxels labelled liver, spleen, background
    probs = [[0.1, 0.6, 0.3], [0.1, 0.2, 0.7], [0.8, 0.1, 0.1]]
    target = target_of([1, 2, 0])
    eye = admits_matrix([{}], 3)
    logits = logits_of(probs).requires_grad_(True)
    # cross-entropy form: the liver is a negative for the spleen and vice versa
    value = exclusion(logits, target, eye, form="ce")
    assert float(value.detach()) == pytest.approx((-math.log(1 - 0.2) - math.log(1 - 0.3)) / 2, rel=1e-5)
    value.backward()
    assert logits.grad[0, 2, 0] > 0  # descending lowers the spleen on the liver's voxel
    assert logits.grad[0, 1, 1] > 0  # and the liver on the spleen's voxel
    assert logits.grad[:, :, 2].abs().max() < 1e-7  # the background voxel excludes nothing
    # Shi et al.'s Dice form of the same masks
    liver = 2 * 0.2 / ((0.6 + 0.2 + 0.1) + 1 + SMOOTH)
    spleen = 2 * 0.3 / ((0.3 + 0.7 + 0.1) + 1 + SMOOTH)
    assert float(exclusion(logits.detach(), target, eye, form="dice")) == pytest.approx((liver + spleen) / 2, rel=1e-5)


def test_exclusion_is_zero_without_overlap_and_teaches_the_unannotated_class():
    target = target_of([1, 2, 0])
    sure = logits_of([[1e-6, 1 - 2e-6, 1e-6], [1e-6, 1e-6, 1 - 2e-6], [1 - 2e-6, 1e-6, 1e-6]])
    for form in ("ce", "dice"):
        assert float(exclusion(sure, target, admits_matrix([{}], 3), form=form)) < 1e-5
    # a case annotating only the liver: its liver voxels are negatives for the unannotated spleen
    t = target_of([1, 0])
    adm = admits_matrix([{0: [0, 2]}], 3)
    logits = logits_of([[0.1, 0.6, 0.3], [0.4, 0.2, 0.4]]).requires_grad_(True)
    value = exclusion(logits, t, adm, form="ce")
    assert float(value.detach()) == pytest.approx(-math.log(1 - 0.3), rel=1e-5)  # the liver itself has no negatives
    value.backward()
    assert logits.grad[0, 2, 0] > 0 and logits.grad[0, :, 1].abs().max() < 1e-7  # only where the liver is annotated
    # The Dice form's denominator rewards spleen probability outside the liver, where the marginal loss lets
    # it be: why satds defaults to the cross-entropy form.
    logits.grad = None
    exclusion(logits, t, adm, form="dice").backward()
    assert logits.grad[0, 2, 1] < 0


def test_exclusion_spares_a_class_the_label_admits():
    # liver (1) may hide an unannotated liver tumour (3): tumour probability on liver voxels is no overlap
    logits = logits_of([[0.1, 0.5, 0.1, 0.3], [0.2, 0.1, 0.6, 0.1]])
    t = target_of([1, 2])
    admitted = exclusion(logits, t, admits_matrix([{1: [1, 3]}], 4))
    plain = exclusion(logits, t, admits_matrix([{}], 4))
    # negatives: the spleen voxel for liver and tumour (p 0.1 each), the liver voxel for the spleen (p 0.1);
    # without the admission the tumour is also a negative on the liver voxel (p 0.3)
    assert float(admitted) == pytest.approx(-math.log(0.9), rel=1e-5)
    assert float(plain) == pytest.approx((-math.log(0.9) * 2 + (-math.log(0.7) - math.log(0.9)) / 2) / 3, rel=1e-5)


# ---------------------------------------------------------------------- the nnU-Net wrapper
def test_deep_supervision_weights_and_admits_required():
    g = torch.Generator().manual_seed(2)
    outs = [torch.randn(2, 3, 8, 8, 4, generator=g), torch.randn(2, 3, 4, 4, 2, generator=g)]
    tgts = [torch.randint(0, 3, (2, 1, 8, 8, 4), generator=g), torch.randint(0, 3, (2, 1, 4, 4, 2), generator=g)]
    loss = PartialLabelLoss(batch_dice=True, exclusion_weight=2.0, exclusion_form="ce", ds_weights=[0.75, 0.25])
    with pytest.raises(RuntimeError, match="admits"):
        loss(outs, tgts)
    adm = admits_matrix([{"0": [0, 2]}, {}], 3)
    loss.admits = adm
    single = [marginal_ce(o, t, adm) + marginal_dice(o, t, adm, batch_dice=True) + 2.0 * exclusion(o, t, adm, form="ce") for o, t in zip(outs, tgts)]
    assert float(loss(outs, tgts)) == pytest.approx(float(0.75 * single[0] + 0.25 * single[1]), rel=1e-6)


def test_admits_matrix_from_json_rows():
    m = admits_matrix([{"0": [0, 2, 3]}, {}], 4)
    assert m.shape == (2, 4, 4) and m.dtype == torch.bool
    assert m[0, 0].tolist() == [True, False, True, True] and m[0, 1].tolist() == [False, True, False, False]
    assert torch.equal(m[1], torch.eye(4, dtype=torch.bool))
