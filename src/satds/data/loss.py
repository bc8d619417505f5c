"""A loss for partially labelled batches: per-class sigmoid Dice + binary cross-entropy, masked by status.

Each class is its own binary problem (SAT, and MONAI's multi-label setting, train this way), so a class a
scan does not annotate can simply be left out:

- ``class_status`` UNKNOWN (-1): the class's term is dropped for that item, so its output gets **no
  gradient** from that item;
- ABSENT (0): an all-zero target, a true negative: predictions of the class are penalised everywhere;
- PRESENT (1): the mask is the target.

Voxels where ``valid`` is 0 (padding outside the scan) count for no class. The loss is the mean over the
(item, class) pairs that are known; a batch with none gives 0 (still differentiable).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def known_classes(class_status: torch.Tensor) -> torch.Tensor:
    """B×K float weights: 1 where the class is annotated (present or absent), 0 where unknown."""
    return (class_status >= 0).to(torch.float32)


def masked_dice_bce(
    logits: torch.Tensor,
    label: torch.Tensor,
    class_status: torch.Tensor,
    valid: torch.Tensor | None = None,
    *,
    dice_weight: float = 1.0,
    bce_weight: float = 1.0,
    smooth: float = 1e-5,
) -> torch.Tensor:
    """Dice + BCE per (item, class), averaged over the known pairs.

    ``logits`` and ``label`` are B×K×X×Y×Z (``label`` 0/1 of any dtype); ``class_status`` B×K;
    ``valid`` B×1×X×Y×Z or None.
    """
    if logits.shape != label.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and label {tuple(label.shape)} differ")
    if class_status.shape != logits.shape[:2]:
        raise ValueError(f"class_status {tuple(class_status.shape)} is not B×K = {tuple(logits.shape[:2])}")
    target = label.to(logits.dtype)
    v = torch.ones_like(logits[:, :1]) if valid is None else valid.to(logits.dtype)
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none") * v
    n_valid = v.flatten(2).sum(-1).clamp_min(1.0)  # B×1
    bce_bk = bce.flatten(2).sum(-1) / n_valid
    p = torch.sigmoid(logits) * v
    t = target * v
    inter = (p * t).flatten(2).sum(-1)
    denom = (p + t).flatten(2).sum(-1)
    dice_bk = 1.0 - (2.0 * inter + smooth) / (denom + smooth)
    per = dice_weight * dice_bk + bce_weight * bce_bk  # B×K
    w = known_classes(class_status).to(per.dtype)
    return (per * w).sum() / w.sum().clamp_min(1.0)
