"""Blocks shared by several backbones: channel LayerNorm, SimpleGate, masking helpers, padding, resampling.

Masking (MaskDCPT, METHODS §3) follows one rule that every backbone obeys, so that the values of hidden
pixels never influence anything and features at hidden positions stay exactly zero:

1. The input is multiplied by the mask (``1`` = visible) before padding; the mask is padded the same way.
2. Every level has its own mask (:func:`mask_pyramid`): a coarse position is visible when any of its
   ``2×2`` children is (max-pooling), so with patch-aligned masks all levels agree exactly.
3. The input of every op that mixes positions (3×3 and depthwise convs, strided convs, attention sums,
   global pooling) is zero at hidden positions: blocks multiply by their level's mask before such ops
   (:func:`apply_mask`) and pool with :func:`masked_mean`.
4. Every block's output is multiplied by its level's mask (biases and norms make hidden positions non-zero).

``LayerNorm2d`` normalizes over channels *per pixel*, so it never mixes positions and needs no masked
statistics; spatial statistics (global average pooling) use visible positions only.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from uir.errors import UirError

BlockFactory = Callable[..., nn.Module]
"""Builds one block; the block's ``forward(x, mask=None, cond=None)`` keeps ``x``'s shape ``(B, C, H, W)``."""


class LayerNorm2d(nn.Module):
    """LayerNorm over the channels of each pixel of a ``(B, C, H, W)`` map (as in NAFNet and Restormer).

    Args:
        channels: ``C``.
        eps: added to the variance.

    Example:
        >>> LayerNorm2d(8)(torch.rand(2, 8, 5, 7)).shape
        torch.Size([2, 8, 5, 7])
    """

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, H, W) -> (B, C, H, W)``, zero mean and unit variance along ``C`` before the affine.

        Runs as one fused ``layer_norm`` on the ``(B, H, W, C)`` view, free for channels-last tensors.
        """
        normalized = F.layer_norm(x.permute(0, 2, 3, 1), x.shape[1:2], self.weight, self.bias, self.eps)
        return normalized.permute(0, 3, 1, 2)


class SimpleGate(nn.Module):
    """NAFNet's nonlinearity (eq. 3): split the channels in two halves and multiply them.

    Example:
        >>> SimpleGate()(torch.rand(1, 8, 4, 4)).shape
        torch.Size([1, 4, 4, 4])
    """

    def forward(self, x: Tensor) -> Tensor:
        """``(B, 2C, H, W) -> (B, C, H, W)``."""
        first, second = x.chunk(2, dim=1)
        return first * second


def apply_mask(x: Tensor, mask: Tensor | None) -> Tensor:
    """Zero the hidden positions of ``x`` ``(B, C, H, W)`` with ``mask`` ``(B, 1, H, W)`` (1 = visible), if any."""
    return x if mask is None else x * mask


def masked_mean(x: Tensor, mask: Tensor | None) -> Tensor:
    """Spatial mean of ``x`` ``(B, C, H, W)`` over visible positions only: ``(B, C, 1, 1)``."""
    if mask is None:
        return x.mean(dim=(2, 3), keepdim=True)
    total = (x * mask).sum(dim=(2, 3), keepdim=True)
    return total / mask.sum(dim=(2, 3), keepdim=True).clamp_min(1.0)


def local_mean(x: Tensor, window: int) -> Tensor:
    """``(B, C, H, W)`` -> same shape: the mean over a ``window × window`` window (clipped to the image) at each
    position, the window kept inside the image at the borders (NAFNet's test-time local converter, TLC).

    Summed-area tables make it cost the same for any window. Where the image fits inside the window it is the
    global mean, as in training on crops no larger than the window.
    """
    _, _, h, w = x.shape
    kh, kw = min(window, h), min(window, w)
    if kh == h and kw == w:
        return x.mean(dim=(2, 3), keepdim=True).expand_as(x)
    table = F.pad(x.float().cumsum(2).cumsum(3), (1, 0, 1, 0))
    sums = table[..., kh:, kw:] - table[..., :-kh, kw:] - table[..., kh:, :-kw] + table[..., :-kh, :-kw]
    means = (sums / (kh * kw)).to(x.dtype)  # (H - kh + 1, W - kw + 1) full windows
    top, left = (kh - 1) // 2, (kw - 1) // 2
    return F.pad(means, (left, kw - 1 - left, top, kh - 1 - top), mode="replicate")


def downsample_mask(mask: Tensor | None, factor: int = 2) -> Tensor | None:
    """``(B, 1, H, W) -> (B, 1, H/f, W/f)``: a coarse position is visible if any of its children is."""
    if mask is None or factor == 1:
        return mask
    return F.max_pool2d(mask, factor)


def mask_pyramid(mask: Tensor | None, levels: int, stem: int = 1) -> list[Tensor | None]:
    """The mask of every level: ``levels`` masks, the first at ``1/stem`` of the (padded) input resolution.

    Args:
        mask: ``(B, 1, H, W)``, 0/1, at the padded input resolution; ``None`` for no masking.
        levels: how many resolutions, each half the previous one.
        stem: the downsampling factor before the first level (pixel-unshuffle stem).

    Returns:
        ``levels`` tensors ``(B, 1, H / (stem·2^l), W / (stem·2^l))`` or ``levels`` ``None``.
    """
    masks = [downsample_mask(mask, stem)]
    for _ in range(levels - 1):
        masks.append(downsample_mask(masks[-1]))
    return masks


def check_inputs(lq: Tensor, mask: Tensor | None = None) -> None:
    """Raise :class:`UirError` unless ``lq`` is ``(B, C, H, W)`` and ``mask`` is ``None`` or ``(B, 1, H, W)``."""
    if lq.ndim != 4:
        raise UirError(f"a backbone takes a (B, C, H, W) batch, got shape {tuple(lq.shape)}")
    if mask is not None and (mask.ndim != 4 or mask.shape[1] != 1 or mask.shape[2:] != lq.shape[2:]):
        raise UirError(
            f"the mask must be (B, 1, H, W) at the input resolution {tuple(lq.shape[2:])}, "
            f"got shape {tuple(mask.shape)}"
        )


def check_cond(module: nn.Module, cond: Tensor | None) -> None:
    """Raise :class:`UirError` when ``cond`` is given to a network none of whose modules uses it.

    A conditioned block (AMIRNet's FTB, Perceive-IR's guided block) declares ``uses_cond = True``.
    """
    if cond is not None and not any(getattr(m, "uses_cond", False) for m in module.modules()):
        raise UirError("this backbone has no conditioned blocks: build it with a conditioned block, or pass cond=None")


def prepare_inputs(lq: Tensor, mask: Tensor | None, multiple: int) -> tuple[Tensor, Tensor | None]:
    """Check ``lq`` and ``mask``, zero the hidden pixels, pad both to ``multiple`` (rule 1 of the module doc).

    Returns:
        ``lq`` ``(B, C, H', W')`` and ``mask`` ``(B, 1, H', W')`` (or ``None``), ``H', W'`` divisible by ``multiple``.
    """
    check_inputs(lq, mask)
    if mask is not None:
        mask = mask.to(lq.dtype)
        lq = lq * mask
        mask = pad_to_multiple(mask, multiple)
    return pad_to_multiple(lq, multiple), mask


def pad_to_multiple(x: Tensor, multiple: int) -> Tensor:
    """Pad ``(B, C, H, W)`` at the bottom and right to ``H, W`` divisible by ``multiple``.

    Reflection padding (no artificial edges); replication where the image is too small to reflect.
    Undo with :func:`crop`. The padded size is written ``ceil(H / m)·m`` and the pad is applied even when it is
    zero, so that ``torch.export`` proves every level's size divisible and exports one graph for any ``H × W``.
    """
    height, width = x.shape[-2:]
    pad_h = (height + multiple - 1) // multiple * multiple - height
    pad_w = (width + multiple - 1) // multiple * multiple - width
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)


def crop(x: Tensor, height: int, width: int) -> Tensor:
    """The top-left ``height × width`` of ``(B, C, H', W')``: undoes :func:`pad_to_multiple`."""
    return x[..., :height, :width]


def run_blocks(blocks: nn.ModuleList, x: Tensor, mask: Tensor | None = None, cond: Tensor | None = None) -> Tensor:
    """Apply ``blocks`` in turn, each as ``block(x, mask=mask, cond=cond)``."""
    for block in blocks:
        x = block(x, mask=mask, cond=cond)
    return x


class UNet(nn.Module):
    """What every uir U-net backbone shares: ``encode`` (stem, levels, bottleneck), ``forward``, input checks.

    A subclass builds ``stem`` (called as ``stem(x, mask)``), ``encoders`` (one ``ModuleList`` of blocks per
    level), ``downs`` (one downsampler per level, ``down(x, mask)``) and ``middle`` (the bottleneck blocks); sets
    ``levels``, ``stem_factor``, ``size_multiple`` and ``feature_dims``; and implements ``decode``.
    """

    levels: int
    stem_factor: int
    size_multiple: int
    feature_dims: tuple[int, ...]

    def encode(self, lq: Tensor, mask: Tensor | None = None, cond: Tensor | None = None) -> list[Tensor]:
        """Features of every encoder level and of the bottleneck.

        Args:
            lq: ``(B, 3, H, W)`` in [0, 1], any ``H, W`` (reflect-padded inside to :attr:`size_multiple`).
            mask: ``(B, 1, H, W)`` 0/1, 1 = visible (MaskDCPT); hidden pixels never influence the output,
                and features at hidden positions are zero at every level.
            cond: per-image conditioning for conditioned encoder blocks, e.g. ``(B, D)``.

        Returns:
            ``levels + 1`` tensors ``(B, feature_dims[l], H'/(stem·2^l), W'/(stem·2^l))``, ``H', W'`` padded,
            shallowest first.
        """
        check_cond(self, cond)
        x, mask = prepare_inputs(lq, mask, self.size_multiple)
        masks = mask_pyramid(mask, self.levels + 1, self.stem_factor)
        x = self.stem(x, masks[0])
        feats = []
        for level, (blocks, down) in enumerate(zip(self.encoders, self.downs, strict=True)):
            x = run_blocks(blocks, x, masks[level], cond)
            feats.append(x)
            x = down(x, masks[level])
        feats.append(run_blocks(self.middle, x, masks[-1], cond))
        return feats

    def decode(self, feats: list[Tensor], lq: Tensor, cond: Tensor | None = None) -> Tensor:
        raise NotImplementedError

    def check_feats(self, feats: list[Tensor], cond: Tensor | None) -> None:
        """The checks every ``decode`` starts with: usable ``cond``, one feature map per level and bottleneck."""
        check_cond(self, cond)
        if len(feats) != self.levels + 1:
            raise UirError(f"decode needs {self.levels + 1} feature maps (from encode), got {len(feats)}")

    def forward(self, lq: Tensor, cond: Tensor | None = None) -> Tensor:
        """Restore ``lq`` ``(B, 3, H, W)``: ``decode(encode(lq), lq)``."""
        return self.decode(self.encode(lq, cond=cond), lq, cond=cond)


def make_blocks(block: BlockFactory, count: int, **kwargs: object) -> nn.ModuleList:
    """``count`` blocks built by ``block(**kwargs)``."""
    return nn.ModuleList(block(**kwargs) for _ in range(count))


class PixelStem(nn.Module):
    """Image to features: pixel-unshuffle by ``factor`` (none if 1), then a 3×3 conv.

    A stem ``factor`` of 2 moves every level to half the resolution: about 4× fewer MACs for the
    full-resolution blocks, which dominate a U-net's cost (METHODS §8).

    Args:
        in_channels: image channels.
        out_channels: feature channels.
        factor: pixel-unshuffle factor.
        bias: conv bias.
    """

    def __init__(self, in_channels: int, out_channels: int, factor: int = 1, *, bias: bool = True) -> None:
        super().__init__()
        self.unshuffle = nn.PixelUnshuffle(factor) if factor > 1 else nn.Identity()
        self.conv = nn.Conv2d(in_channels * factor**2, out_channels, 3, padding=1, bias=bias)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``(B, C_in, H, W) -> (B, C_out, H/f, W/f)``; ``mask`` is the mask at the output resolution."""
        return apply_mask(self.conv(self.unshuffle(x)), mask)


@torch.no_grad()
def icnr_init(conv: nn.Conv2d, factor: int) -> None:
    """ICNR (Aitken et al. 2017, "Checkerboard artifact free sub-pixel convolution"): initialise a conv followed by
    ``PixelShuffle(factor)`` so that the ``factor²`` sub-pixels of each output channel start with the same kernel,
    making the pair a nearest-neighbour upsampling at initialisation instead of ``factor²`` independent phases
    (the source of a periodic grid in the output). Its own (default) initialisation of ``out / factor²`` kernels is
    repeated; the bias, if any, likewise."""
    groups = factor * factor
    base = nn.Conv2d(conv.in_channels, conv.out_channels // groups, conv.kernel_size, bias=conv.bias is not None)
    base = base.to(conv.weight.device, conv.weight.dtype)
    # PixelShuffle reads output channel c·f² + s as sub-pixel s of channel c: repeat each kernel f² times in a row.
    conv.weight.copy_(base.weight.repeat_interleave(groups, dim=0))
    if conv.bias is not None:
        conv.bias.copy_(base.bias.repeat_interleave(groups, dim=0))


class PixelHead(nn.Module):
    """Features to image: a 3×3 conv, then pixel-shuffle by ``factor`` (none if 1); inverse of :class:`PixelStem`."""

    def __init__(
        self, in_channels: int, out_channels: int, factor: int = 1, *, bias: bool = True, icnr: bool = False
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels * factor**2, 3, padding=1, bias=bias)
        self.shuffle = nn.PixelShuffle(factor) if factor > 1 else nn.Identity()
        if icnr and factor > 1:
            icnr_init(self.conv, factor)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C_in, H, W) -> (B, C_out, H·f, W·f)``."""
        return self.shuffle(self.conv(x))


class ConvDown(nn.Module):
    """Halve the resolution with a 2×2 stride-2 conv (NAFNet)."""

    def __init__(self, in_channels: int, out_channels: int, *, bias: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 2, stride=2, bias=bias)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``(B, C_in, H, W) -> (B, C_out, H/2, W/2)``; ``mask`` ``(B, 1, H, W)`` is the input's mask."""
        return apply_mask(self.conv(x), downsample_mask(mask))


class ShuffleDown(nn.Module):
    """Halve the resolution with a conv to ``out/4`` channels, then pixel-unshuffle (Restormer)."""

    def __init__(self, in_channels: int, out_channels: int, *, kernel_size: int = 3, bias: bool = False) -> None:
        super().__init__()
        assert out_channels % 4 == 0, "pixel-unshuffle by 2 multiplies the channels by 4"
        self.conv = nn.Conv2d(in_channels, out_channels // 4, kernel_size, padding=kernel_size // 2, bias=bias)
        self.unshuffle = nn.PixelUnshuffle(2)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``(B, C_in, H, W) -> (B, C_out, H/2, W/2)``; ``mask`` ``(B, 1, H, W)`` is the input's mask.

        Masking before the unshuffle zeroes exactly the coarse positions whose children are all hidden.
        """
        return self.unshuffle(apply_mask(self.conv(x), mask))


class ShuffleUp(nn.Module):
    """Double the resolution with a conv to ``4·out`` channels, then pixel-shuffle (NAFNet: 1×1, Restormer: 3×3)."""

    def __init__(
        self, in_channels: int, out_channels: int, *, kernel_size: int = 1, bias: bool = False, icnr: bool = False
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels * 4, kernel_size, padding=kernel_size // 2, bias=bias)
        self.shuffle = nn.PixelShuffle(2)
        if icnr:
            icnr_init(self.conv, 2)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C_in, H, W) -> (B, C_out, 2H, 2W)``."""
        return self.shuffle(self.conv(x))
