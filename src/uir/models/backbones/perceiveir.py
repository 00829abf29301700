"""Perceive-IR's restoration network: a Restormer whose decoder is guided by a degradation code and semantics.

Zhang et al., "Perceive-IR: Learning to Perceive Degradation Better for All-in-One Image Restoration" (METHODS §4,
stage 2). Three parts around a :class:`~uir.models.backbones.restormer.Restormer` U-net (its encoder unchanged):

- **CFE** (:class:`DegradationCode`): a small strided CNN → global pooling → MLP → an L2-normalised
  ``code_dim``-d code ``Z`` of the degraded image. Its InfoNCE loss (τ 0.1; positive = another crop of the same
  image, negatives = other degradation types) is the training method's: :mod:`uir.methods.quality_aware` reads
  :meth:`PerceiveIR.degradation_code`.
- **SGM/PGM** (:class:`GuidedBlock`): at decoder level ``l``, ``[γ, β] = MLP(concat(F_l, Z))`` and the guidance
  ``g = x·(1 + γ) + β``, ``F_l`` the level-``l`` global feature of a *frozen* semantic encoder
  (:mod:`uir.models.semantic`: a uir encoder from a weights file, a fixed random one by default, or DINOv2),
  projected to ``semantic_dim`` by a learned linear map per level.
- **Enhanced blocks**: every decoder and refinement block is a :class:`GuidedBlock`: prompt-guided cross attention
  (queries from the guidance ``g``, keys and values from ``prompt_len`` learnable prompts scaled per image by
  ``1 + Linear(Z)``), then the Restormer block (MDTA + GDFN).

The guidance and the prompt modulation start at zero, so an untrained guided block is its Restormer block plus a
cross attention on unmodulated prompts. The semantic encoder is held outside the module tree (as the quality-aware
method holds its perceiver): never optimised, not in ``state_dict``; the constructor's arguments rebuild it.

Example:
    >>> from uir.models.backbones import create_backbone
    >>> net = create_backbone("perceiveir-tiny")
    >>> lq = torch.rand(2, 3, 37, 53)
    >>> net(lq).shape, net.degradation_code(lq).shape
    (torch.Size([2, 3, 37, 53]), torch.Size([2, 16]))
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from uir.models.backbones.restormer import Restormer, TransformerBlock
from uir.models.layers import BlockFactory, LayerNorm2d, apply_mask, crop, run_blocks
from uir.models.semantic import build_semantic


class DegradationCode(nn.Module):
    """CFE: ``Z = normalize(MLP(GAP(CNN(lq))))``, a ``(B, code_dim)`` unit vector per image.

    Args:
        in_channels: image channels.
        width: channels of the first stride-2 conv; each further stage doubles them.
        stages: stride-2 convs (each halves the resolution).
        code_dim: length of ``Z`` (128 in the paper).

    Example:
        >>> code = DegradationCode(width=8, stages=2, code_dim=16)(torch.rand(2, 3, 37, 53))
        >>> code.shape, torch.allclose(code.norm(dim=1), torch.ones(2))
        (torch.Size([2, 16]), True)
    """

    def __init__(self, in_channels: int = 3, *, width: int = 32, stages: int = 3, code_dim: int = 128) -> None:
        super().__init__()
        widths = [width * 2**s for s in range(stages)]
        layers: list[nn.Module] = []
        for c_in, c_out in zip([in_channels, *widths[:-1]], widths, strict=True):
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.LeakyReLU(0.1)]
            layers += [nn.Conv2d(c_out, c_out, 3, padding=1), nn.LeakyReLU(0.1)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Linear(widths[-1], code_dim), nn.LeakyReLU(0.1), nn.Linear(code_dim, code_dim))

    def forward(self, lq: Tensor) -> Tensor:
        """``(B, 3, H, W)`` in [0, 1], any size → ``(B, code_dim)`` with unit L2 norm."""
        return F.normalize(self.head(self.features(lq).mean(dim=(2, 3))), dim=1)


class GuidedBlock(nn.Module):
    """The enhanced decoder block: SGM/PGM guidance, prompt-guided cross attention, then a Restormer block.

    ``cond = concat(Z, S_l)`` ``(B, cond_dim)``; ``[γ, β] = MLP(cond)``, ``g = LN(x)·(1 + γ) + β``;
    ``P = prompts·(1 + Linear(cond))`` ``(B, N, C)``; ``x ← x + W_o·softmax(W_q g · (W_k P)ᵀ / √d)·W_v P``
    (per head, every pixel attends over the ``N`` prompts: linear in the image size); ``x ← Restormer(x)``.
    With ``cond=None`` the cross attention uses the unmodulated prompts and no guidance.

    Args:
        dim: channels ``C``.
        num_heads: heads of the Restormer block and of the cross attention.
        ffn_expansion: GDFN expansion.
        bias: biases of the Restormer block's convs.
        cond_dim: length of ``cond``.
        prompt_len: learnable prompts ``N``.
        hidden: hidden units of the guidance MLP.

    Example:
        >>> block = GuidedBlock(dim=8, num_heads=2, cond_dim=6)
        >>> block(torch.rand(2, 8, 9, 11), cond=torch.rand(2, 6)).shape
        torch.Size([2, 8, 9, 11])
    """

    uses_cond = True

    def __init__(
        self,
        dim: int,
        num_heads: int,
        ffn_expansion: float = 2.66,
        bias: bool = False,
        *,
        cond_dim: int,
        prompt_len: int = 8,
        hidden: int = 64,
    ) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.guide = nn.Sequential(nn.Linear(cond_dim, hidden), nn.GELU(), nn.Linear(hidden, 2 * dim))
        self.prompts = nn.Parameter(torch.randn(prompt_len, dim) * dim**-0.5)
        self.prompt_scale = nn.Linear(cond_dim, dim)
        for layer in (self.guide[-1], self.prompt_scale):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        self.norm = LayerNorm2d(dim, eps=1e-5)
        self.query = nn.Conv2d(dim, dim, 1)
        self.key_value = nn.Linear(dim, 2 * dim)
        self.project = nn.Conv2d(dim, dim, 1)
        self.block = TransformerBlock(dim, num_heads, ffn_expansion, bias=bias)

    def forward(self, x: Tensor, mask: Tensor | None = None, cond: Tensor | None = None) -> Tensor:
        """``(B, C, H, W) -> (B, C, H, W)``; ``mask`` ``(B, 1, H, W)`` or ``None``; ``cond`` ``(B, cond_dim)``."""
        batch, channels, height, width = x.shape
        guidance, prompts = self.norm(x), self.prompts.expand(batch, -1, -1)
        if cond is not None:
            cond = cond.to(x.dtype)
            gamma, beta = self.guide(cond)[:, :, None, None].chunk(2, dim=1)
            guidance = guidance * (1 + gamma) + beta
            prompts = prompts * (1 + self.prompt_scale(cond)[:, None, :])
        heads, head_dim = self.num_heads, channels // self.num_heads
        query = self.query(apply_mask(guidance, mask)).reshape(batch, heads, head_dim, height * width)
        key, value = self.key_value(prompts).reshape(batch, -1, 2, heads, head_dim).permute(2, 0, 3, 1, 4)
        attention = (query.transpose(-2, -1) @ key.transpose(-2, -1) * head_dim**-0.5).softmax(dim=-1)
        out = (attention @ value).transpose(-2, -1).reshape(batch, channels, height, width)
        return self.block(x + apply_mask(self.project(out), mask), mask)


class PerceiveIR(nn.Module):
    """The Perceive-IR network in the uir backbone contract (see the module docstring).

    ``encode`` is the Restormer encoder's (``cond`` reaches conditioned encoder blocks swapped in through
    ``encoder_block``); ``decode`` computes ``Z`` and the semantic features of ``lq`` and conditions each decoder
    level on its own ``concat(Z, S_l)``.

    Args:
        in_channels, encoder_block, channels_last: as :class:`Restormer` (``encoder_block`` defaults to its
            plain block: only the decoder is guided).
        code_dim, code_width, code_stages: the CFE's ``code_dim``, ``width``, ``stages``.
        prompt_len: prompts per guided block.
        guide_hidden: hidden units of each guidance MLP.
        semantic_dim: the per-level projection of the semantic features.
        semantic_backbone: the uir preset of the frozen semantic encoder when ``semantic_init`` is null.
        semantic_init: weights of the semantic encoder (a uir run folder, checkpoint or ``.safetensors``); null
            builds ``semantic_backbone`` with fixed random weights (seed ``semantic_seed``).
        semantic_dinov2: a local DINOv2 directory (``transformers``); replaces the uir semantic encoder.
        semantic_seed: seed of the random semantic encoder.
        restormer: the other keywords of :class:`Restormer` (``dim``, ``num_blocks``, ``num_heads``...), its
            defaults the paper's.
    """

    wraps = Restormer
    """The network this one builds on; ``create_backbone`` accepts its keywords too."""

    def __init__(
        self,
        *,
        in_channels: int = 3,
        encoder_block: BlockFactory | None = None,
        channels_last: bool = True,
        code_dim: int = 128,
        code_width: int = 32,
        code_stages: int = 3,
        prompt_len: int = 8,
        guide_hidden: int = 64,
        semantic_dim: int = 64,
        semantic_backbone: str = "restormer-cpu",
        semantic_init: str | None = None,
        semantic_dinov2: str | None = None,
        semantic_seed: int = 0,
        **restormer: Any,
    ) -> None:
        super().__init__()
        self.cfe = DegradationCode(in_channels, width=code_width, stages=code_stages, code_dim=code_dim)
        block = partial(GuidedBlock, cond_dim=code_dim + semantic_dim, prompt_len=prompt_len, hidden=guide_hidden)
        self.net = Restormer(
            **restormer,
            in_channels=in_channels,
            block=block,
            encoder_block=encoder_block or TransformerBlock,
            channels_last=channels_last,
        )
        self.feature_dims, self.size_multiple = self.net.feature_dims, self.net.size_multiple
        self.levels, self.stem_factor = self.net.levels, self.net.stem_factor
        semantic = build_semantic(
            backbone=semantic_backbone,
            init=semantic_init,
            dinov2=semantic_dinov2,
            levels=self.levels,
            seed=semantic_seed,
            channels_last=channels_last,
        )
        # A plain attribute, not a submodule: frozen, not optimised, not saved; _apply still moves it.
        self._semantic: list[nn.Module] = [semantic]
        self.semantic_proj = nn.ModuleList(nn.Linear(d, semantic_dim) for d in semantic.dims)
        if channels_last:
            self.cfe.to(memory_format=torch.channels_last)

    @property
    def semantic(self) -> nn.Module:
        """The frozen semantic encoder."""
        return self._semantic[0]

    def _apply(self, fn: Callable[[Tensor], Tensor], recurse: bool = True) -> PerceiveIR:
        super()._apply(fn, recurse)
        self.semantic._apply(fn, recurse)
        return self

    def degradation_code(self, lq: Tensor) -> Tensor:
        """``Z`` of ``lq`` ``(B, 3, H, W)`` in [0, 1]: ``(B, code_dim)``, unit norm (what InfoNCE trains)."""
        return self.cfe(lq)

    def conditions(self, lq: Tensor) -> list[Tensor]:
        """Per decoder level (full resolution first), ``concat(Z, S_l)`` ``(B, code_dim + semantic_dim)``."""
        code = self.degradation_code(lq)
        with torch.no_grad():
            semantic = self.semantic(lq)
        return [
            torch.cat([code, proj(s.to(code))], dim=1) for proj, s in zip(self.semantic_proj, semantic, strict=True)
        ]

    def encode(self, lq: Tensor, mask: Tensor | None = None, cond: Tensor | None = None) -> list[Tensor]:
        """:meth:`Restormer.encode` (masking included)."""
        return self.net.encode(lq, mask, cond)

    def decode(self, feats: list[Tensor], lq: Tensor, cond: Tensor | None = None) -> Tensor:
        """Restormer's decoder with level ``l``'s blocks conditioned on ``concat(Z, S_l)`` of ``lq``.

        Args:
            feats: the list :meth:`encode` returned.
            lq: the unpadded input ``(B, 3, H, W)``: the source of ``Z`` and ``S_l``, and the residual's base.
            cond: only checked (a network without conditioned blocks refuses one); the decoder's conditioning
                always comes from ``lq``.
        """
        net = self.net
        net.check_feats(feats, cond)
        conditions = self.conditions(lq)
        x = feats[-1]
        for level in reversed(range(self.levels)):
            x = net.reduces[level](torch.cat([net.ups[level](x), feats[level]], dim=1))
            x = run_blocks(net.decoders[level], x, cond=conditions[level])
        x = run_blocks(net.refinement, x, cond=conditions[0])
        return (crop(net.head(x), *lq.shape[-2:]) + lq).contiguous()

    def forward(self, lq: Tensor, cond: Tensor | None = None) -> Tensor:
        """Restore ``lq`` ``(B, 3, H, W)``: ``decode(encode(lq, cond=cond), lq, cond)``."""
        return self.decode(self.encode(lq, cond=cond), lq, cond)
