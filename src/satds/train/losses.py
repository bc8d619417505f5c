"""Partial-label losses (Shi et al., "Marginal loss and exclusion loss for partially supervised multi-organ
segmentation", Med Image Anal 70, 2021): marginal cross-entropy and Dice, and the exclusion loss.

Pure torch, shaped like nnU-Net's losses so that a trainer can swap them in (``satds/train/trainers``):

- ``logits``: (B, C, *spatial), C = background + the task's classes;
- ``target``: (B, 1, *spatial) integer labels (what the export wrote);
- ``admits``: (B, C, C) bool, ``admits[b, y, k]``: class ``k`` is accepted at voxels of case ``b`` labelled
  ``y``. The identity for a case that annotates every class. For a case that does not annotate classes U,
  row 0 (background) also admits U: the label "background" there means "background or one of U"
  (``class_status.json`` of a ``marginal`` export lists these rows; :func:`admits_matrix` builds the tensor).

Marginal loss: each label ``y`` is scored against the *marginal* probability of the classes it admits,
``q_y = sum_k admits[y, k] p_k`` (Shi et al.'s merged background, generalised to a class that may hide an
unannotated class nested in it). Cross-entropy is ``-log q_y`` at every voxel; Dice compares ``q_y`` with the
voxels labelled ``y`` for every label that is a class of its own in the case (not absorbed into another
label), background excluded as in nnU-Net. With every class annotated both reduce exactly to nnU-Net's
``DC_and_CE_loss`` (CE + ``MemoryEfficientSoftDiceLoss``, smooth 1e-5, no background).

Exclusion loss: the voxels of a case labelled with an annotated class ``y`` are negatives for every other
class ``k`` that ``y`` does not admit (``e_k``, the union of those labels). It measures the probability of
``k`` on ``e_k``, averaged over the classes that have negatives: 0 when no class puts probability on another
annotated class; the only term that tells an unannotated class where it is not (inside the annotated
organs). Two forms (:func:`exclusion`): cross-entropy on the negatives (satds's default) and Shi et al.'s
soft Dice overlap.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

SMOOTH = 1e-5  # nnU-Net's Dice smoothing


def admits_matrix(rows: Sequence[dict], n_labels: int, device=None) -> torch.Tensor:
    """(B, C, C) bool from per-case ``{label: [admitted labels]}`` (keys may be str, as in the JSON)."""
    m = torch.eye(n_labels, dtype=torch.bool).repeat(len(rows), 1, 1)
    for b, row in enumerate(rows):
        for y, ks in (row or {}).items():
            m[b, int(y), [int(k) for k in ks]] = True
    return m if device is None else m.to(device)


def _onehot(target: torch.Tensor, n: int) -> torch.Tensor:
    t = target.long()
    if t.ndim == 1 or t.shape[1] != 1:
        raise ValueError(f"target must be (B, 1, *spatial), got {tuple(target.shape)}")
    out = torch.zeros((t.shape[0], n, *t.shape[2:]), dtype=torch.float32, device=t.device)
    return out.scatter_(1, t, 1.0)


def _admitted(target: torch.Tensor, admits: torch.Tensor) -> torch.Tensor:
    """(B, C, *spatial) bool: the classes accepted at each voxel."""
    t = target[:, 0].long()
    b = torch.arange(t.shape[0], device=t.device).view(-1, *([1] * (t.ndim - 1)))
    return admits[b, t].movedim(-1, 1)


def scored_labels(admits: torch.Tensor) -> torch.Tensor:
    """(B, C) bool: the labels that are classes of their own in each case (not absorbed into another label)."""
    eye = torch.eye(admits.shape[1], dtype=torch.bool, device=admits.device)
    return ~(admits & ~eye).any(1)


def marginal_ce(logits: torch.Tensor, target: torch.Tensor, admits: torch.Tensor) -> torch.Tensor:
    """Mean over voxels of ``-log sum_{k admitted} p_k`` (plain cross-entropy where only the label is admitted)."""
    return _marginal_ce(torch.log_softmax(logits.float(), 1), target, admits)


def _marginal_ce(lsm: torch.Tensor, target: torch.Tensor, admits: torch.Tensor) -> torch.Tensor:
    merged = torch.logsumexp(lsm.masked_fill(~_admitted(target, admits), float("-inf")), 1)
    return -merged.mean()


def _reduce(values: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` where ``weight`` (bool); 0 (keeping the graph) where nothing counts."""
    w = weight.to(values.dtype)
    n = w.sum()
    return (values * w).sum() / n if n > 0 else values.sum() * 0.0


def marginal_dice(logits: torch.Tensor, target: torch.Tensor, admits: torch.Tensor, *, batch_dice: bool = False, smooth: float = SMOOTH) -> torch.Tensor:
    """nnU-Net's soft Dice loss (negative, background excluded) on the marginal probabilities of each label."""
    p = torch.softmax(logits.float(), 1)
    return _marginal_dice(p, _onehot(target, p.shape[1]), admits, batch_dice, smooth)


def _marginal_dice(p: torch.Tensor, gt: torch.Tensor, admits: torch.Tensor, batch_dice: bool, smooth: float) -> torch.Tensor:
    q = torch.einsum("byk,bk...->by...", admits.to(p.dtype), p)
    axes = tuple(range(2, p.ndim))
    inter, s_pred, s_gt = (q * gt).sum(axes), q.sum(axes), gt.sum(axes)
    scored = scored_labels(admits)
    scored[:, 0] = False
    if batch_dice:
        w = scored.to(q.dtype)
        inter, s_pred, s_gt = (inter * w).sum(0), (s_pred * w).sum(0), (s_gt * w).sum(0)
        scored = scored.any(0)
    dc = (2 * inter + smooth) / (s_gt + s_pred + smooth).clamp_min(1e-8)
    return -_reduce(dc, scored)


def exclusion_mask(target: torch.Tensor, admits: torch.Tensor, n: int) -> torch.Tensor:
    """(B, C, *spatial) float: ``e[b, k]`` = 1 where case ``b``'s label is an annotated class that excludes ``k``."""
    return _exclusion_mask(_onehot(target, n), admits)


def _exclusion_mask(gt: torch.Tensor, admits: torch.Tensor) -> torch.Tensor:
    sources = scored_labels(admits)
    sources[:, 0] = False
    # negatives[b, y, k]: voxels labelled y are not class k (y a foreground label of its own that does not admit k)
    negatives = (~admits) & sources.unsqueeze(2)
    return torch.einsum("byk,by...->bk...", negatives.to(gt.dtype), gt)


def exclusion(logits: torch.Tensor, target: torch.Tensor, admits: torch.Tensor, *, form: str = "ce", batch_dice: bool = False, smooth: float = SMOOTH) -> torch.Tensor:
    """How much probability each class puts on the annotated labels that exclude it, averaged over the classes
    that have such negatives (0 = none).

    ``form="ce"``: per class, the mean over its negative voxels of ``-log(1 - p_k)``: the negatives are
    supervised like any known "not k" voxel, and only they get a gradient. ``form="dice"``: Shi et al.'s soft
    Dice overlap ``2 sum(p_k e_k) / (sum p_k + sum e_k)`` (per case, or over the batch with ``batch_dice``). Its
    denominator also falls when ``p_k`` grows *outside* the negatives, which the marginal loss does not
    oppose for an unannotated class, so satds's trainer uses the CE form by default.
    """
    p = torch.softmax(logits.float(), 1)
    return _exclusion(p, exclusion_mask(target, admits, p.shape[1]), form, batch_dice, smooth)


def _exclusion(p: torch.Tensor, e: torch.Tensor, form: str, batch_dice: bool, smooth: float) -> torch.Tensor:
    axes = tuple(range(2, p.ndim))
    s_neg = e.sum(axes)
    if form == "ce":
        nll = -(e * torch.log1p(-p.clamp(max=1 - 1e-6))).sum(axes)
        nll, s_neg = nll.sum(0), s_neg.sum(0)
        val = nll / s_neg.clamp_min(1)
    elif form == "dice":
        inter, s_pred = (p * e).sum(axes), p.sum(axes)
        if batch_dice:
            inter, s_pred, s_neg = inter.sum(0), s_pred.sum(0), s_neg.sum(0)
        val = 2 * inter / (s_pred + s_neg + smooth)
    else:
        raise ValueError(f"exclusion form must be 'ce' or 'dice', not {form!r}")
    has = s_neg > 0
    has[..., 0] = False
    return _reduce(val, has)


class PartialLabelLoss(nn.Module):
    """Marginal CE + marginal Dice (+ ``exclusion_weight`` x exclusion), over nnU-Net's deep-supervision outputs.

    ``admits`` is set per batch by the trainer (from the batch's case keys) before the loss is called;
    ``ds_weights`` are nnU-Net's deep-supervision weights (None: a single output).
    """

    def __init__(self, *, batch_dice: bool, exclusion_weight: float = 1.0, exclusion_form: str = "ce", ds_weights: Sequence[float] | None = None):
        super().__init__()
        self.batch_dice = batch_dice
        self.exclusion_weight = float(exclusion_weight)
        self.exclusion_form = exclusion_form
        self.ds_weights = None if ds_weights is None else [float(w) for w in ds_weights]
        self.admits: torch.Tensor | None = None

    def single(self, logits: torch.Tensor, target: torch.Tensor, admits: torch.Tensor) -> torch.Tensor:
        """The loss of one output: softmax, log-softmax and the one-hot target computed once for every term."""
        x = logits.float()
        p = torch.softmax(x, 1)
        gt = _onehot(target, p.shape[1])
        out = _marginal_ce(torch.log_softmax(x, 1), target, admits) + _marginal_dice(p, gt, admits, self.batch_dice, SMOOTH)
        if self.exclusion_weight:
            out = out + self.exclusion_weight * _exclusion(p, _exclusion_mask(gt, admits), self.exclusion_form, self.batch_dice, SMOOTH)
        return out

    def forward(self, output, target) -> torch.Tensor:
        if self.admits is None:
            raise RuntimeError("PartialLabelLoss: set .admits for the batch before calling the loss")
        if self.ds_weights is None:
            return self.single(output, target, self.admits)
        return sum(w * self.single(o, t, self.admits) for w, o, t in zip(self.ds_weights, output, target) if w != 0)
