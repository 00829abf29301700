"""Restormer: a U-net of Transformer blocks with transposed (channel) attention and a gated feed-forward.

Zamir, Arora, Khan, Hayat, Khan, Yang, "Restormer: Efficient Transformer for High-Resolution Image
Restoration", CVPR 2022. Attention is computed across channels, not pixels (MDTA, eqs. 1–2), so its cost is
linear in the image size; the feed-forward is gated with depthwise convs (GDFN, eqs. 3–4). The encoder
downsamples with conv + pixel-unshuffle; the decoder upsamples with conv + pixel-shuffle, concatenates the
skip and reduces the channels with a 1×1 conv (except at full resolution, where it keeps both halves); a few
refinement blocks follow; the output is a residual on the input.

Our additions, all optional and off by default: a pixel-unshuffle stem (METHODS §8), MaskDCPT masking in
:meth:`Restormer.encode` (see :mod:`uir.models.layers`), block factories for conditioned blocks, and a
``decoder_prompt`` hook before every decoder upsampling, where PromptIR inserts its prompts (``promptir.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from uir.errors import UirError
from uir.models.layers import (
    BlockFactory,
    LayerNorm2d,
    PixelHead,
    PixelStem,
    ShuffleDown,
    ShuffleUp,
    UNet,
    apply_mask,
    crop,
    make_blocks,
    run_blocks,
)


class ChannelAttention(nn.Module):
    """Multi-Dconv head Transposed Attention (MDTA, eqs. 1–2): a ``C×C`` attention map per head.

    ``Q, K, V = W_d·W_p·X``; ``Attention = softmax(Q̂·K̂ᵀ·τ)·V̂`` with ``Q̂, K̂`` L2-normalised along the
    pixels and ``τ`` a learned temperature per head. With a mask, ``Q, K, V`` are zero at hidden positions, so
    the pixel sums of ``Q̂·K̂ᵀ`` and the norms run over visible pixels only.

    Args:
        dim: channels ``C``.
        num_heads: attention heads; must divide ``C``.
        bias: biases of the convs.
    """

    def __init__(self, dim: int, num_heads: int, *, bias: bool = False) -> None:
        super().__init__()
        if dim % num_heads:
            raise UirError(f"{num_heads} attention heads do not divide {dim} channels")
        self.num_heads = num_heads
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))
        self.qkv = nn.Conv2d(dim, 3 * dim, 1, bias=bias)
        self.qkv_dwconv = nn.Conv2d(3 * dim, 3 * dim, 3, padding=1, groups=3 * dim, bias=bias)
        self.project = nn.Conv2d(dim, dim, 1, bias=bias)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``(B, C, H, W) -> (B, C, H, W)``; ``mask`` ``(B, 1, H, W)`` or ``None``."""
        batch, channels, height, width = x.shape
        qkv = apply_mask(self.qkv_dwconv(apply_mask(self.qkv(x), mask)), mask)
        qkv = qkv.reshape(batch, 3, self.num_heads, channels // self.num_heads, height * width)
        query, key, value = qkv.unbind(1)
        query = F.normalize(query, dim=-1)
        key = F.normalize(key, dim=-1)
        attention = (query @ key.transpose(-2, -1) * self.temperature).softmax(dim=-1)
        out = (attention @ value).reshape(batch, channels, height, width)
        return self.project(out)


class GatedFeedForward(nn.Module):
    """Gated-Dconv Feed-forward Network (GDFN, eqs. 3–4): ``W_p⁰·(GELU(W_d¹W_p¹X) ⊙ W_d²W_p²X)``.

    Args:
        dim: channels ``C``.
        expansion: hidden channels are ``int(C·expansion)`` (2.66 in the paper).
        bias: biases of the convs.
    """

    def __init__(self, dim: int, expansion: float = 2.66, *, bias: bool = False) -> None:
        super().__init__()
        hidden = int(dim * expansion)
        self.project_in = nn.Conv2d(dim, 2 * hidden, 1, bias=bias)
        self.dwconv = nn.Conv2d(2 * hidden, 2 * hidden, 3, padding=1, groups=2 * hidden, bias=bias)
        self.project_out = nn.Conv2d(hidden, dim, 1, bias=bias)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``(B, C, H, W) -> (B, C, H, W)``; ``mask`` ``(B, 1, H, W)`` or ``None``."""
        gate, value = self.dwconv(apply_mask(self.project_in(x), mask)).chunk(2, dim=1)
        return self.project_out(F.gelu(gate) * value)


class TransformerBlock(nn.Module):
    """The Restormer block (eqs. 1 and 3): ``y = x + MDTA(LN(x))``, ``out = y + GDFN(LN(y))``.

    Args:
        dim: channels ``C``.
        num_heads: attention heads.
        ffn_expansion: GDFN expansion factor.
        bias: biases of the convs.

    Example:
        >>> TransformerBlock(16, 2)(torch.rand(1, 16, 9, 11)).shape
        torch.Size([1, 16, 9, 11])
    """

    def __init__(self, dim: int, num_heads: int, ffn_expansion: float = 2.66, *, bias: bool = False) -> None:
        super().__init__()
        self.norm1 = LayerNorm2d(dim, eps=1e-5)
        self.attention = ChannelAttention(dim, num_heads, bias=bias)
        self.norm2 = LayerNorm2d(dim, eps=1e-5)
        self.ffn = GatedFeedForward(dim, ffn_expansion, bias=bias)

    def forward(self, x: Tensor, mask: Tensor | None = None, cond: Tensor | None = None) -> Tensor:
        """``(B, C, H, W) -> (B, C, H, W)``; ``cond`` is ignored: this block is not conditioned."""
        x = x + self.attention(self.norm1(x), mask)
        return apply_mask(x + self.ffn(self.norm2(x), mask), mask)


PromptFactory = Callable[[int, int], nn.Module]
"""Builds the module run before the upsampling of decoder level ``l`` on ``C`` channels: ``factory(l, C)``.

The module's ``forward(x, cond=None)`` maps ``(B, C, H, W)`` to ``(B, C', H, W)``, ``C'`` its attribute
``out_channels`` if it has one, else ``C``.
"""


class Restormer(UNet):
    """The Restormer U-net in the uir backbone contract (``encode`` / ``decode`` / ``feature_dims``).

    Args:
        dim: channels of the first level; level ``l`` has ``dim·2^l``.
        num_blocks: blocks per encoder level, full resolution first, the last entry being the bottleneck
            ("latent", the ``middle`` blocks); the decoder mirrors the encoder levels.
        num_refinement_blocks: blocks after the decoder, at full resolution.
        num_heads: attention heads per level (same length as ``num_blocks``).
        ffn_expansion: GDFN expansion factor.
        bias: biases of the convs (none in the paper).
        stem: pixel-unshuffle factor of the stem and pixel-shuffle factor of the head (1 = the paper).
        in_channels: image channels.
        block: factory of every block, called as ``block(dim=C, num_heads=h, ffn_expansion=e, bias=b)``.
        encoder_block: factory of the encoder and bottleneck blocks if different.
        decoder_prompt: optional factory of a module run on the input of every decoder level before its
            upsampling (PromptIR's prompt stages); see :data:`PromptFactory`.
        channels_last: store the conv weights channels-last, so that every feature map is channels-last: the
            depthwise convs and the layer norms run several times faster on a CPU (METHODS §8).

    Example:
        >>> net = Restormer(dim=8, num_blocks=(1, 1, 1), num_refinement_blocks=1, num_heads=(1, 2, 4))
        >>> net(torch.rand(1, 3, 37, 53)).shape
        torch.Size([1, 3, 37, 53])
    """

    def __init__(
        self,
        *,
        dim: int = 48,
        num_blocks: Sequence[int] = (4, 6, 6, 8),
        num_refinement_blocks: int = 4,
        num_heads: Sequence[int] = (1, 2, 4, 8),
        ffn_expansion: float = 2.66,
        bias: bool = False,
        stem: int = 1,
        in_channels: int = 3,
        block: BlockFactory = TransformerBlock,
        encoder_block: BlockFactory | None = None,
        decoder_prompt: PromptFactory | None = None,
        channels_last: bool = True,
    ) -> None:
        super().__init__()
        if len(num_heads) != len(num_blocks):
            raise UirError(f"num_heads {num_heads} and num_blocks {num_blocks} differ in length")
        self.levels = len(num_blocks) - 1
        self.stem_factor = stem
        self.in_channels = in_channels
        self.size_multiple = stem * 2**self.levels
        widths = [dim * 2**level for level in range(self.levels + 1)]
        self.feature_dims: tuple[int, ...] = tuple(widths)
        options = {"ffn_expansion": ffn_expansion, "bias": bias}
        encoder_block = encoder_block or block
        self.stem = PixelStem(in_channels, dim, stem, bias=bias)
        self.encoders = nn.ModuleList(
            make_blocks(encoder_block, count, dim=c, num_heads=h, **options)
            for count, c, h in zip(num_blocks[:-1], widths, num_heads, strict=False)
        )
        self.downs = nn.ModuleList(ShuffleDown(c, 2 * c, bias=bias) for c in widths[:-1])
        self.middle = make_blocks(encoder_block, num_blocks[-1], dim=widths[-1], num_heads=num_heads[-1], **options)
        self._build_decoder(widths, num_blocks[:-1], num_refinement_blocks, num_heads, options, block, decoder_prompt)
        if channels_last:
            self.to(memory_format=torch.channels_last)

    def _build_decoder(
        self,
        widths: list[int],
        num_blocks: Sequence[int],
        num_refinement_blocks: int,
        num_heads: Sequence[int],
        options: dict[str, Any],
        block: BlockFactory,
        decoder_prompt: PromptFactory | None,
    ) -> None:
        """Decoder level ``l``: [prompt], upsample ``C_in → C_in/2``, concatenate the skip, 1×1 to ``dim·2^l``.

        At full resolution the concatenation is kept (no 1×1), so the last levels work on ``C_in/2 + dim``
        channels (``2·dim`` in Restormer). ``C_in`` is the width of the level below, or what the prompt returns.
        """
        self.prompts = None
        inputs = widths[1:]
        if decoder_prompt is not None:
            self.prompts = nn.ModuleList(decoder_prompt(level, c) for level, c in enumerate(inputs))
            inputs = [getattr(prompt, "out_channels", c) for prompt, c in zip(self.prompts, inputs, strict=True)]
        bias = options["bias"]
        self.ups = nn.ModuleList(ShuffleUp(c, c // 2, kernel_size=3, bias=bias) for c in inputs)
        decoder_widths = [inputs[0] // 2 + widths[0], *widths[1:-1]]
        self.reduces = nn.ModuleList(
            nn.Conv2d(c // 2 + skip, skip, 1, bias=bias) if level else nn.Identity()
            for level, (c, skip) in enumerate(zip(inputs, widths, strict=False))
        )
        self.decoders = nn.ModuleList(
            make_blocks(block, count, dim=c, num_heads=h, **options)
            for count, c, h in zip(num_blocks, decoder_widths, num_heads, strict=False)
        )
        self.refinement = make_blocks(
            block, num_refinement_blocks, dim=decoder_widths[0], num_heads=num_heads[0], **options
        )
        self.head = PixelHead(decoder_widths[0], self.in_channels, self.stem_factor, bias=bias)

    def decode(self, feats: list[Tensor], lq: Tensor, cond: Tensor | None = None) -> Tensor:
        """The restored image from :meth:`encode`'s features: ``(B, 3, H, W)``, a residual on ``lq``.

        Args:
            feats: the list :meth:`encode` returned (possibly mixed or modified, same shapes).
            lq: the unpadded input ``(B, 3, H, W)``; sets the output size and is added to the output.
            cond: per-image conditioning for conditioned blocks and prompts.
        """
        self.check_feats(feats, cond)
        x = feats[-1]
        for level in reversed(range(self.levels)):
            if self.prompts is not None:
                x = self.prompts[level](x, cond=cond)
            x = self.reduces[level](torch.cat([self.ups[level](x), feats[level]], dim=1))
            x = run_blocks(self.decoders[level], x, cond=cond)
        x = run_blocks(self.refinement, x, cond=cond)
        return (crop(self.head(x), *lq.shape[-2:]) + lq).contiguous()
