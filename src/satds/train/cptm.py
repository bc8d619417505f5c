"""The cross-patch transformer module (CPTM) of "Universal Segmentation of 33 Anatomies" (Liu et al., arXiv
2203.02098, §2.1, Fig. 2, Eq. 1-4), around an nnU-Net v2 network.

The network sees one *window*: three consecutive patches of size P along the long axis, each overlapping the
next by half (a window of 2P, the paper's "merged patch with a double size"):

    window   [0 ............................. 2P)
    patch 1  [0 ........ P)
    patch 2        [P/2 ........ 3P/2)               <- the middle patch, the one decoded
    patch 3                [P ........... 2P)

1. A shared encoder (nnU-Net's own, from the plans) encodes the three patches (as one batch).
2. The bottleneck features of each patch get a fixed 3D sinusoidal position code of their place *within
   the patch* (the same for every patch, so a patch's result does not depend on where it sits in the
   window) and are flattened to tokens.
3. ``blocks`` CPTM blocks follow. Each applies T_s (Eq. 1: pre-norm multi-head self-attention and a
   feed-forward network, within one patch, weights shared by all patches) to every patch, then T_c
   (Eq. 2-4) to the middle patch: its first half (the intersection with patch 1) attends to patch 1's
   second half, its second half (the intersection with patch 3) to patch 3's first half, each with a
   residual and a feed-forward network, and the two halves are concatenated back into the patch.
4. nnU-Net's decoder decodes the middle patch from its fused bottleneck and its own skip connections.

Training (and nnU-Net's online validation) sees the middle patch only: the trainer crops the target to it.
At inference (eval mode with deep supervision off, as nnU-Net's predictor runs networks) the network returns
logits for the whole window, so nnU-Net's own sliding-window predictor works unchanged: the middle patch as
above, and the outer quarters from patches 1 and 3 decoded *as middles* of the window shifted half a patch
outward, whose outer neighbour is half zero padding (nnU-Net's padding value). That is exactly how the middle
patch at a volume's end is trained (the CPTM sampler lets windows overhang the volume by up to P/2), so the
first and last P/2 slices, which no window has in its middle, are predicted the way they were trained.
nnU-Net's tile step of 0.5 is one patch, so the middles of consecutive windows tile the volume.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def sinusoidal_3d(shape: tuple[int, int, int], dim: int) -> torch.Tensor:
    """(prod(shape), dim) position codes: per axis, ``dim // 3`` (even) sine/cosine channels of the token's
    index along that axis (Vaswani et al.'s frequencies); leftover channels are 0."""
    per = (dim // 3) // 2 * 2
    out = torch.zeros(*shape, dim)
    if per == 0:
        return out.reshape(-1, dim)
    freqs = torch.exp(torch.arange(0, per, 2, dtype=torch.float32) * (-math.log(10000.0) / per))
    for a in range(3):
        pos = torch.arange(shape[a], dtype=torch.float32)
        ang = pos[:, None] * freqs[None, :]
        enc = torch.cat([ang.sin(), ang.cos()], 1)  # (n_a, per)
        view = [1, 1, 1, per]
        view[a] = shape[a]
        out[..., a * per:(a + 1) * per] = enc.view(view)
    return out.reshape(-1, dim)


class FeedForward(nn.Sequential):
    def __init__(self, dim: int, ratio: float):
        hidden = int(dim * ratio)
        super().__init__(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))


class SelfBlock(nn.Module):
    """T_s (Eq. 1): x' = x + MSA(LN(x)); y = x' + FFN(LN(x'))."""

    def __init__(self, dim: int, heads: int, ratio: float):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.ffn = FeedForward(dim, ratio)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.ffn(self.norm2(x))


class CrossBlock(nn.Module):
    """T_c (Eq. 2-3): the middle patch's tokens of one intersection attend to the neighbour's tokens of it:
    q' = q + MCA(LN(q), LN(kv)); y = q' + FFN(LN(q'))."""

    def __init__(self, dim: int, heads: int, ratio: float):
        super().__init__()
        self.norm_q, self.norm_kv, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.ffn = FeedForward(dim, ratio)

    def forward(self, q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        k = self.norm_kv(kv)
        q = q + self.attn(self.norm_q(q), k, k, need_weights=False)[0]
        return q + self.ffn(self.norm2(q))


def _tokens(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(2).transpose(1, 2)  # (N, C, *s) -> (N, prod(s), C)


def _untokens(t: torch.Tensor, shape) -> torch.Tensor:
    return t.transpose(1, 2).reshape(t.shape[0], t.shape[2], *shape)


class CPTMBlock(nn.Module):
    """One CPTM: T_s on every patch, then T_c on the middle patch's two halves (Eq. 4: concatenated back)."""

    def __init__(self, dim: int, heads: int, ratio: float, axis: int):
        super().__init__()
        self.axis = axis
        self.t_s = SelfBlock(dim, heads, ratio)
        self.t_c = CrossBlock(dim, heads, ratio)

    def self_attend(self, x: torch.Tensor) -> torch.Tensor:
        """T_s on feature maps (N, C, d0, d1, d2)."""
        return _untokens(self.t_s(_tokens(x)), x.shape[2:])

    def fuse(self, mid: torch.Tensor, up: torch.Tensor, down: torch.Tensor) -> torch.Tensor:
        """T_c: ``mid``'s first half attends to ``up``'s second half, its second half to ``down``'s first half."""
        d = 2 + self.axis
        h = mid.shape[d] // 2
        first, second = mid.narrow(d, 0, h), mid.narrow(d, h, h)
        first = _untokens(self.t_c(_tokens(first), _tokens(up.narrow(d, h, h))), first.shape[2:])
        second = _untokens(self.t_c(_tokens(second), _tokens(down.narrow(d, 0, h))), second.shape[2:])
        return torch.cat([first, second], d)


class CrossPatchTransformer(nn.Module):
    """``blocks`` CPTM blocks over the bottleneck features of the patches of a window.

    ``forward(patches, middles)``: ``patches`` is a list of bottleneck maps (N, C, d0, d1, d2), consecutive along
    ``axis`` with half overlap; returns the fused maps of the patches at the indices ``middles`` (each must
    have a neighbour on both sides in ``patches``). Every patch gets the same position code (its tokens'
    places within the patch), so a patch's result does not depend on where it sits in the window.
    """

    def __init__(self, dim: int, bottleneck: tuple[int, int, int], axis: int, *, blocks: int = 2, heads: int = 8, ratio: float = 4.0):
        super().__init__()
        if bottleneck[axis] % 2:
            raise ValueError(f"the bottleneck has {bottleneck[axis]} positions along axis {axis}; CPTM needs an even number (two halves)")
        self.axis, self.bottleneck = axis, tuple(bottleneck)
        self.blocks = nn.ModuleList(CPTMBlock(dim, heads, ratio, axis) for _ in range(blocks))
        code = sinusoidal_3d(self.bottleneck, dim).T.reshape(dim, *self.bottleneck)
        self.register_buffer("position", code, persistent=False)  # (C, d0, d1, d2)

    def forward(self, patches: list[torch.Tensor], middles: list[int]) -> list[torch.Tensor]:
        plain = [p + self.position.to(p.dtype) for p in patches]
        fused = {m: plain[m] for m in middles}
        for blk in self.blocks:
            plain = [blk.self_attend(p) for p in plain]
            fused = {m: blk.fuse(blk.self_attend(f), plain[m - 1], plain[m + 1]) for m, f in fused.items()}
        return [fused[m] for m in middles]


class CPTMNet(nn.Module):
    """An nnU-Net encoder/decoder network with CPTM at its bottleneck, on windows of three patches.

    ``unet``: the network nnU-Net builds from the plans (``encoder`` returning skips, ``decoder``); ``axis``:
    the spatial axis (0-2) of the window's long side; ``patch``: P along that axis (the window is 2P).
    """

    def __init__(self, unet: nn.Module, *, axis: int, patch: int, bottleneck: tuple[int, int, int], blocks: int = 2, heads: int = 8, ratio: float = 4.0):
        super().__init__()
        self.encoder, self.decoder = unet.encoder, unet.decoder
        self.axis, self.patch = axis, int(patch)
        dim = int(self.encoder.output_channels[-1])
        self.cptm = CrossPatchTransformer(dim, bottleneck, axis, blocks=blocks, heads=heads, ratio=ratio)

    @property
    def step(self) -> int:
        return self.patch // 2

    def _patches(self, x: torch.Tensor) -> list[torch.Tensor]:
        d = 2 + self.axis
        if x.shape[d] != 2 * self.patch:
            raise ValueError(f"CPTMNet expects windows of {2 * self.patch} along axis {self.axis}, got {tuple(x.shape)}")
        return [x.narrow(d, i * self.step, self.patch) for i in range(3)]

    def forward(self, x: torch.Tensor):
        full = not self.training and not self.decoder.deep_supervision
        p = self._patches(x)
        b = x.shape[0]
        if not full:  # the paper's path: decode the fused middle patch
            skips = self.encoder(torch.cat(p, 0))
            bott = list(skips[-1].split(b, 0))
            mid = self.cptm(bott, [1])[0]
            return self.decoder([s[b:2 * b] for s in skips[:-1]] + [mid])
        # the whole window: patches 1 and 3 are decoded as the middles of the windows shifted half a patch
        # outward, whose outer neighbour is half zero padding (nnU-Net pads with 0): a volume's end
        d, s = 2 + self.axis, self.step
        z = torch.zeros_like(x.narrow(d, 0, s))
        up = torch.cat([z, x.narrow(d, 0, s)], d)
        down = torch.cat([x.narrow(d, 2 * self.patch - s, s), z], d)
        skips = self.encoder(torch.cat([up, *p, down], 0))
        fused = self.cptm(list(skips[-1].split(b, 0)), [1, 2, 3])
        out = self.decoder([t[b:4 * b] for t in skips[:-1]] + [torch.cat(fused, 0)])
        o1, o2, o3 = out.split(b, 0)
        return torch.cat([o1.narrow(d, 0, s), o2, o3.narrow(d, self.patch - s, s)], d)


def middle(t: torch.Tensor, axis: int) -> torch.Tensor:
    """The middle patch of a window-sized tensor (N, C, *spatial) along spatial ``axis``: a target, or full-window
    logits (the window is 2P, the middle patch its half-overlapping P in the middle)."""
    d = 2 + axis
    n = t.shape[d]
    return t.narrow(d, n // 4, n // 2)


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def saved_activation_bytes(net: nn.Module, input_shape: tuple[int, ...], *, dtype=torch.float16) -> int:
    """Bytes autograd keeps for the backward pass of one training step (``net`` in train mode, deep supervision
    as configured), measured on the ``meta`` device: shapes only, nothing allocated. An estimate of activation
    memory (weights, gradients, optimizer state and workspace come on top)."""
    import copy

    m = copy.deepcopy(net).to("meta").train()
    params = {id(p) for p in m.parameters()}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor):
        if t.is_floating_point() and t.device.type == "meta" and id(t) not in params:
            seen[id(t)] = t.numel() * torch.empty((), dtype=dtype).element_size()
        return t

    x = torch.empty(input_shape, device="meta", dtype=torch.float32)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = m(x)
        del out
    return sum(seen.values())
