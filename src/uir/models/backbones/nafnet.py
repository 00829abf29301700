"""NAFNet: a nonlinear-activation-free U-net of gated conv blocks.

Chen, Chu, Zhang, Sun, "Simple Baselines for Image Restoration", ECCV 2022. Each block replaces the
nonlinearity with SimpleGate (eq. 3: ``Gate(X) = X₁ ⊙ X₂``) and channel attention with Simplified Channel
Attention (eq. 5: ``SCA(X) = X ⊙ W·pool(X)``); the encoder downsamples with 2×2 stride-2 convs, the decoder
upsamples with 1×1 conv + pixel-shuffle and adds the skip connection; the output is a residual on the input.

Our additions, all optional and off by default: a pixel-unshuffle stem (``stem=2`` runs every level at half the
resolution, METHODS §8), MaskDCPT masking in :meth:`NAFNet.encode` (see :mod:`uir.models.layers`), and block
factories so that a conditioned block (AMIRNet's FTB, METHODS §5) replaces the plain one without touching this
file.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from uir.errors import UirError
from uir.models.layers import (
    BlockFactory,
    ConvDown,
    LayerNorm2d,
    PixelHead,
    PixelStem,
    ShuffleUp,
    SimpleGate,
    UNet,
    apply_mask,
    crop,
    local_mean,
    make_blocks,
    masked_mean,
    run_blocks,
)


class NAFBlock(nn.Module):
    """The NAFNet block (paper Fig. 3c): a gated depthwise-conv mixer, then a gated 1×1 feed-forward.

    ``y = x + β·Mix(LN(x))``, ``out = y + γ·FFN(LN(y))``, with ``β, γ`` per-channel scales initialised at 0
    so that every block starts as the identity.

    Args:
        channels: ``C``.
        dw_expansion: channel expansion before the depthwise conv (2 in the paper).
        ffn_expansion: channel expansion of the feed-forward (2 in the paper).
        dropout: dropout after each branch (0 in the paper's restoration configs).

    Example:
        >>> NAFBlock(8)(torch.rand(1, 8, 9, 11)).shape
        torch.Size([1, 8, 9, 11])
    """

    def __init__(self, channels: int, *, dw_expansion: int = 2, ffn_expansion: int = 2, dropout: float = 0.0) -> None:
        super().__init__()
        hidden = channels * dw_expansion
        self.norm1 = LayerNorm2d(channels)
        self.expand = nn.Conv2d(channels, hidden, 1)
        self.dwconv = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)
        self.gate = SimpleGate()
        self.attention = nn.Conv2d(hidden // 2, hidden // 2, 1)
        self.project = nn.Conv2d(hidden // 2, channels, 1)
        self.norm2 = LayerNorm2d(channels)
        self.ffn_in = nn.Conv2d(channels, channels * ffn_expansion, 1)
        self.ffn_out = nn.Conv2d(channels * ffn_expansion // 2, channels, 1)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.beta = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.pool_window: int | None = None  # test-time local pooling (NAFNet.set_local_pooling); None: global

    def forward(self, x: Tensor, mask: Tensor | None = None, cond: Tensor | None = None) -> Tensor:
        """``(B, C, H, W) -> (B, C, H, W)``.

        Args:
            x: features, zero at hidden positions when ``mask`` is given.
            mask: ``(B, 1, H, W)`` 0/1 (1 = visible) or ``None``.
            cond: ignored: this block is not conditioned.
        """
        y = self.expand(self.norm1(x))
        y = self.gate(self.dwconv(apply_mask(y, mask)))
        if self.pool_window is None or mask is not None:
            pooled = masked_mean(y, mask)
        else:
            pooled = local_mean(y, self.pool_window)
        y = y * self.attention(pooled)
        x = x + self.beta * self.dropout(self.project(y))
        y = self.ffn_out(self.gate(self.ffn_in(self.norm2(x))))
        return apply_mask(x + self.gamma * self.dropout(y), mask)


class NAFNet(UNet):
    """The NAFNet U-net in the uir backbone contract (``encode`` / ``decode`` / ``feature_dims``).

    Args:
        width: channels of the first level; level ``l`` has ``width·2^l``.
        encoder_blocks: blocks per encoder level, full resolution first (its length is the number of levels).
        middle_blocks: blocks at the bottleneck.
        decoder_blocks: blocks per decoder level, full resolution first (same length as ``encoder_blocks``).
        stem: pixel-unshuffle factor of the stem and pixel-shuffle factor of the head (1 = the paper).
        in_channels: image channels.
        block: factory of every block, called as ``block(channels=C)``; e.g. ``functools.partial`` of a
            conditioned block whose ``forward(x, mask, cond)`` uses ``cond``.
        encoder_block: factory of the encoder blocks if different (AMIRNet conditions only these).
        channels_last: store the conv weights channels-last, so that every feature map is channels-last: the
            depthwise convs and the layer norms run several times faster on a CPU (METHODS §8).
        icnr: ICNR-initialise every pixel-shuffle (the decoder's upsamplers and a ``stem > 1`` head), so that they
            start as nearest-neighbour upsampling rather than independent sub-pixel phases (a grid in the output).

    Example:
        >>> net = NAFNet(width=8, encoder_blocks=(1, 1), middle_blocks=1, decoder_blocks=(1, 1))
        >>> lq = torch.rand(1, 3, 37, 53)
        >>> [f.shape[1] for f in net.encode(lq)] == list(net.feature_dims), net(lq).shape
        (True, torch.Size([1, 3, 37, 53]))
    """

    def __init__(
        self,
        *,
        width: int = 32,
        encoder_blocks: Sequence[int] = (2, 2, 4, 8),
        middle_blocks: int = 12,
        decoder_blocks: Sequence[int] = (2, 2, 2, 2),
        stem: int = 1,
        in_channels: int = 3,
        block: BlockFactory = NAFBlock,
        encoder_block: BlockFactory | None = None,
        channels_last: bool = True,
        icnr: bool = False,
    ) -> None:
        super().__init__()
        if len(encoder_blocks) != len(decoder_blocks):
            raise UirError(f"encoder_blocks {encoder_blocks} and decoder_blocks {decoder_blocks} differ in length")
        self.levels = len(encoder_blocks)
        self.stem_factor = stem
        widths = [width * 2**level for level in range(self.levels + 1)]
        self.feature_dims: tuple[int, ...] = tuple(widths)
        self.size_multiple = stem * 2**self.levels
        self.stem = PixelStem(in_channels, width, stem)
        self.encoders = nn.ModuleList(
            make_blocks(encoder_block or block, count, channels=c)
            for count, c in zip(encoder_blocks, widths, strict=False)
        )
        self.downs = nn.ModuleList(ConvDown(c, 2 * c) for c in widths[:-1])
        self.middle = make_blocks(block, middle_blocks, channels=widths[-1])
        self.ups = nn.ModuleList(ShuffleUp(2 * c, c, kernel_size=1, icnr=icnr) for c in widths[:-1])
        self.decoders = nn.ModuleList(
            make_blocks(block, count, channels=c) for count, c in zip(decoder_blocks, widths, strict=False)
        )
        self.head = PixelHead(width, in_channels, stem, icnr=icnr)
        if channels_last:
            self.to(memory_format=torch.channels_last)

    def set_local_pooling(self, train_size: int | None, factor: float = 1.5) -> None:
        """Pool the channel attention over a local window at test time instead of the whole image (NAFNet's TLC,
        Chu et al. 2022): a network trained on ``train_size``² crops saw statistics pooled over that much image;
        each level pools over ``factor · train_size`` input pixels (a window of ``factor · train_size / scale`` at
        a level ``scale`` times smaller). ``None`` restores global pooling. Training is unaffected."""
        for scale, blocks in self._blocks_by_scale():
            window = None if train_size is None else max(1, round(factor * train_size / scale))
            for block in blocks:
                if hasattr(block, "pool_window"):
                    block.pool_window = window

    def _blocks_by_scale(self) -> list[tuple[int, list[nn.Module]]]:
        scales = [self.stem_factor * 2**level for level in range(self.levels)]
        pairs = [(s, [*e, *d]) for s, e, d in zip(scales, self.encoders, self.decoders, strict=True)]
        return [*pairs, (self.stem_factor * 2**self.levels, list(self.middle))]

    def decode(self, feats: list[Tensor], lq: Tensor, cond: Tensor | None = None) -> Tensor:
        """The restored image from :meth:`encode`'s features: ``(B, 3, H, W)``, a residual on ``lq``.

        Args:
            feats: the list :meth:`encode` returned (possibly mixed or modified, same shapes).
            lq: the unpadded input ``(B, 3, H, W)``; sets the output size and is added to the output.
            cond: per-image conditioning for conditioned blocks.
        """
        self.check_feats(feats, cond)
        x = feats[-1]
        for level in reversed(range(self.levels)):
            x = self.ups[level](x) + feats[level]
            x = run_blocks(self.decoders[level], x, cond=cond)
        return (crop(self.head(x), *lq.shape[-2:]) + lq).contiguous()
