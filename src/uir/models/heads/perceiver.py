"""Perceive-IR's quality perceiver: image embedding vs. three learnable tier prompts (METHODS §4, stage 1).

The paper pairs a frozen CLIP ViT-B/32 image encoder with CoOp-style learnable contexts fed through CLIP's text
encoder. **[ours]** Without CLIP weights, the image encoder is any uir backbone's ``encode`` (global mean and
standard deviation of every level, concatenated, then a 2-layer MLP) and each tier's context is ``prompt_tokens``
learnable tokens through a small shared token MLP, mean-pooled. ``logits = exp(s) · cos(image, prompt)``
with a learnable temperature ``s`` (CLIP's ``logit_scale``, initialised to ``log(1/0.07)``).

Example:
    >>> from uir.models.backbones import create_backbone
    >>> net = create_backbone("nafnet-tiny")
    >>> perceiver = QualityPerceiver(net, PerceiverHead(net.feature_dims, embed_dim=8, prompt_tokens=2))
    >>> perceiver(torch.rand(2, 3, 37, 53)).shape
    torch.Size([2, 3])
    >>> sorted(perceiver.perceive(torch.rand(3, 37, 53)))
    ['high', 'low', 'medium']
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from uir.errors import UirError

TIERS: tuple[str, ...] = ("low", "medium", "high")
"""The quality tiers, in logit order: degraded input, partly restored, clean ("terrible", "mediocre", "excellent")."""


def pooled_features(feats: Sequence[Tensor]) -> Tensor:
    """The global mean and standard deviation of every map of ``encode``, concatenated: ``(B, 2·sum(C_l))``.

    The deviation keeps what a mean loses on zero-mean degradations (noise, rain streaks): their energy.
    """
    pooled = [torch.cat([f.mean(dim=(-2, -1)), f.flatten(2).std(dim=2, correction=0)], dim=1) for f in feats]
    return torch.cat(pooled, dim=1)


class PerceiverHead(nn.Module):
    """Image projection, three prompt contexts and the temperature; ``forward(feats) -> (B, 3)`` logits.

    Args:
        feature_dims: channels of each map of the backbone's ``encode``.
        embed_dim: the joint embedding size ``E``.
        prompt_tokens: learnable tokens per tier (16 in the paper).
        num_tiers: tiers (3).
    """

    def __init__(
        self, feature_dims: Sequence[int], *, embed_dim: int = 64, prompt_tokens: int = 16, num_tiers: int = 3
    ) -> None:
        super().__init__()
        width = 2 * sum(feature_dims)
        self.projection = nn.Sequential(nn.Linear(width, embed_dim), nn.GELU(), nn.Linear(embed_dim, embed_dim))
        self.prompts = nn.Parameter(torch.randn(num_tiers, prompt_tokens, embed_dim) * 0.02)
        self.prompt_encoder = nn.Sequential(
            nn.LayerNorm(embed_dim), nn.Linear(embed_dim, embed_dim), nn.GELU(), nn.Linear(embed_dim, embed_dim)
        )
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def embed_image(self, feats: Sequence[Tensor]) -> Tensor:
        """L2-normalised image embeddings ``(B, E)``."""
        return F.normalize(self.projection(pooled_features(feats)), dim=1)

    def embed_prompts(self) -> Tensor:
        """L2-normalised tier embeddings ``(num_tiers, E)``."""
        return F.normalize(self.prompt_encoder(self.prompts).mean(dim=1), dim=1)

    def forward(self, feats: Sequence[Tensor]) -> Tensor:
        """Scaled cosine similarities ``(B, num_tiers)`` between images and tier prompts."""
        scale = self.logit_scale.exp().clamp(max=100.0)
        return scale * self.embed_image(feats) @ self.embed_prompts().T


class QualityPerceiver(nn.Module):
    """A trained perceiver for inference: a backbone's encoder and a :class:`PerceiverHead`.

    Args:
        backbone: the image encoder (only ``encode`` is used).
        head: the head.
        tiers: tier names in logit order.
    """

    def __init__(self, backbone: nn.Module, head: PerceiverHead, tiers: Sequence[str] = TIERS) -> None:
        super().__init__()
        self.backbone, self.head, self.tiers = backbone, head, list(tiers)

    def features(self, x: Tensor) -> list[Tensor]:
        """The encoder's multi-scale maps of ``x`` ``(B, 3, H, W)`` in [0, 1] (the L_dpl feature space)."""
        return self.backbone.encode(x)

    def forward(self, x: Tensor) -> Tensor:
        """Tier logits ``(B, 3)`` of ``x`` ``(B, 3, H, W)`` in [0, 1]."""
        return self.head(self.features(x))

    @torch.no_grad()
    def perceive(self, image: Tensor) -> dict[str, float]:
        """The probability of each tier for one image ``(3, H, W)`` or ``(1, 3, H, W)`` in [0, 1]."""
        if image.ndim == 3:
            image = image[None]
        if image.ndim != 4 or image.shape[0] != 1:
            raise UirError(f"perceive takes one image (3, H, W) or (1, 3, H, W), got shape {tuple(image.shape)}")
        probs = self(image).softmax(dim=1)[0].tolist()
        return dict(zip(self.tiers, probs, strict=True))
