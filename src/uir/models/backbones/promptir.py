"""PromptIR: Restormer with learned prompts in the decoder that encode which degradation is present.

Potlapalli, Zamir, Khan, Khan, "PromptIR: Prompting for All-in-One Blind Image Restoration", NeurIPS 2023.
Before each decoder upsampling, a *prompt generation module* (PGM) mixes ``N`` learned prompt
components with weights predicted from the pooled decoder features, resizes the mixture to the feature map and
refines it with a 3×3 conv; a *prompt interaction module* (PIM) concatenates prompt and features, runs
one Transformer block and projects back to the feature channels with a 1×1 conv. As released (and counted in
the paper's 35.6 M parameters), the deepest stage projects the bottleneck's ``8C + 320`` channels to ``4C``, so
the first upsampler works on ``4C`` instead of Restormer's ``8C``.

PromptIR is built as a :class:`~uir.models.backbones.restormer.Restormer` whose ``decoder_prompt`` hook is
:class:`PromptStage`: encoder, masking, padding and conditioning are Restormer's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from uir.errors import UirError
from uir.models.backbones.restormer import Restormer, TransformerBlock
from uir.models.layers import BlockFactory


class PromptGeneration(nn.Module):
    """PGM: ``P = Conv3×3(Resize(Σ_c w_c·P_c))``, ``w = softmax(Linear(GAP(F)))``.

    Args:
        channels: channels of the input features ``F``.
        prompt_dim: channels of each prompt component.
        prompt_len: number ``N`` of prompt components.
        prompt_size: spatial size of each learned component, resized to the features' ``H × W``.

    Example:
        >>> PromptGeneration(16, 8, 5, 4)(torch.rand(2, 16, 9, 11)).shape
        torch.Size([2, 8, 9, 11])
    """

    def __init__(self, channels: int, prompt_dim: int, prompt_len: int, prompt_size: int) -> None:
        super().__init__()
        self.components = nn.Parameter(torch.rand(prompt_len, prompt_dim, prompt_size, prompt_size))
        self.weights = nn.Linear(channels, prompt_len)
        self.conv = nn.Conv2d(prompt_dim, prompt_dim, 3, padding=1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, H, W) -> (B, prompt_dim, H, W)``."""
        weights = self.weights(x.mean(dim=(2, 3))).softmax(dim=1)
        prompt = (weights[:, :, None, None, None] * self.components[None]).sum(dim=1)
        prompt = F.interpolate(prompt, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return self.conv(prompt)


class PromptStage(nn.Module):
    """PGM + PIM: ``F̂ = Conv1×1(Transformer([F, P]))``.

    Args:
        channels: channels ``C`` of the decoder features.
        out_channels: channels of ``F̂`` (``C`` if ``None``).
        prompt_dim: channels of the prompt.
        prompt_len: number of prompt components.
        prompt_size: spatial size of the prompt components.
        num_heads: heads of the Transformer block on ``C + prompt_dim`` channels.
        ffn_expansion: its GDFN expansion.
        bias: biases of its convs and of the projection.
        block: factory of the Transformer block (a conditioned one receives ``cond``).
    """

    def __init__(
        self,
        channels: int,
        out_channels: int | None = None,
        *,
        prompt_dim: int,
        prompt_len: int,
        prompt_size: int,
        num_heads: int,
        ffn_expansion: float = 2.66,
        bias: bool = False,
        block: BlockFactory = TransformerBlock,
    ) -> None:
        super().__init__()
        self.out_channels = out_channels or channels
        self.generate = PromptGeneration(channels, prompt_dim, prompt_len, prompt_size)
        self.interact = block(dim=channels + prompt_dim, num_heads=num_heads, ffn_expansion=ffn_expansion, bias=bias)
        self.project = nn.Conv2d(channels + prompt_dim, self.out_channels, 1, bias=bias)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """``(B, C, H, W) -> (B, out_channels, H, W)``."""
        x = torch.cat([x, self.generate(x)], dim=1)
        return self.project(self.interact(x, cond=cond))


def promptir(
    *,
    num_blocks: Sequence[int] = (4, 6, 6, 8),
    ffn_expansion: float = 2.66,
    bias: bool = False,
    block: BlockFactory = TransformerBlock,
    prompt_dims: Sequence[int] = (64, 128, 320),
    prompt_len: int = 5,
    prompt_sizes: Sequence[int] = (64, 32, 16),
    prompt_heads: int = 4,
    **restormer: Any,
) -> Restormer:
    """A PromptIR backbone: a :class:`Restormer` with a :class:`PromptStage` before every decoder upsampling.

    Args:
        num_blocks, ffn_expansion, bias, block: as in :class:`Restormer` (the defaults are the paper's); the
            prompt stages use them too.
        prompt_dims: prompt channels per decoder level, full resolution first (the paper: 64, 128, 320).
        prompt_len: prompt components per level (5).
        prompt_sizes: spatial size of the components per level, full resolution first (64, 32, 16).
        prompt_heads: heads of the prompt-interaction Transformer blocks (4).
        restormer: the other keywords of :class:`Restormer` (``dim``, ``num_heads``, ``stem``...).

    Returns:
        The network; ``encode``/``decode``/``feature_dims`` as in :class:`Restormer`.

    Example:
        >>> net = promptir(dim=8, num_blocks=(1, 1), num_heads=(1, 2), prompt_dims=(8,), prompt_sizes=(4,))
        >>> net(torch.rand(1, 3, 37, 53)).shape
        torch.Size([1, 3, 37, 53])
    """
    levels = len(num_blocks) - 1
    if len(prompt_dims) != levels or len(prompt_sizes) != levels:
        raise UirError(f"give one prompt dim and size per decoder level ({levels}): {prompt_dims}, {prompt_sizes}")

    def stage(level: int, channels: int) -> PromptStage:
        return PromptStage(
            channels,
            channels // 2 if level == levels - 1 else channels,
            prompt_dim=prompt_dims[level],
            prompt_len=prompt_len,
            prompt_size=prompt_sizes[level],
            num_heads=prompt_heads,
            ffn_expansion=ffn_expansion,
            bias=bias,
            block=block,
        )

    return Restormer(
        **restormer,
        num_blocks=num_blocks,
        ffn_expansion=ffn_expansion,
        bias=bias,
        block=block,
        decoder_prompt=stage,
    )


promptir.wraps = Restormer  # type: ignore[attr-defined]  (create_backbone accepts its keywords too)
