"""Degradation classification over a backbone's multi-scale encoder features (MaskDCPT's decoder, METHODS §3).

:class:`ClassificationHead` maps the list ``encode`` returns (and, during masked pre-training, the mask of each
map) to class logits; :class:`DegradationClassifier` pairs it with a backbone for inference on unmasked images.

Example:
    >>> from uir.models.backbones import create_backbone
    >>> net = create_backbone("nafnet-tiny")
    >>> classifier = DegradationClassifier(net, ClassificationHead(net.feature_dims, 2, width=8), ["noise", "haze"])
    >>> sorted(classifier.classify(torch.rand(3, 37, 53)))
    ['haze', 'noise']
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from uir.errors import UirError
from uir.models.layers import LayerNorm2d, apply_mask, masked_mean


class Bottleneck(nn.Module):
    """A residual bottleneck stage that halves the resolution: ``avgpool(x) + 1×1(GELU(3×3/2(GELU(1×1(LN(x))))))``.

    Args:
        channels: ``C`` in and out; the inner convs use ``C/2``.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        hidden = max(channels // 2, 1)
        self.norm = LayerNorm2d(channels)
        self.reduce = nn.Conv2d(channels, hidden, 1)
        self.conv = nn.Conv2d(hidden, hidden, 3, stride=2, padding=1)
        self.expand = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``(B, C, H, W) -> (B, C, H/2, W/2)``; ``mask`` is the output's mask; ``x`` is zero where hidden."""
        y = self.expand(F.gelu(self.conv(F.gelu(self.reduce(self.norm(x))))))
        return apply_mask(F.avg_pool2d(x, 2) + y, mask)


class ClassificationHead(nn.Module):
    """MaskDCPT's classification decoder over the encoder's multi-scale features.

    Every map is brought to the resolution ``stages`` halvings above the bottleneck (masked average pooling
    of finer maps, nearest upsampling of coarser ones), projected to ``width`` channels by a 1×1 conv and mixed
    with learned softmax weights; ``stages`` :class:`Bottleneck` stages follow, then a mean over the visible
    positions and a linear layer.

    Args:
        feature_dims: channels of each map (the backbone's ``feature_dims``).
        num_classes: ``K``.
        width: channels of the mixed map and the stages.
        stages: residual bottleneck stages (capped at the number of maps minus one).

    Example:
        >>> head = ClassificationHead((8, 16, 32), num_classes=5, width=16)
        >>> head([torch.rand(2, 8, 16, 16), torch.rand(2, 16, 8, 8), torch.rand(2, 32, 4, 4)]).shape
        torch.Size([2, 5])
    """

    def __init__(self, feature_dims: Sequence[int], num_classes: int, *, width: int = 64, stages: int = 2) -> None:
        super().__init__()
        self.stages = min(stages, len(feature_dims) - 1)
        self.projections = nn.ModuleList(nn.Conv2d(c, width, 1) for c in feature_dims)
        self.level_logits = nn.Parameter(torch.zeros(len(feature_dims)))
        self.blocks = nn.ModuleList(Bottleneck(width) for _ in range(self.stages))
        self.norm = nn.LayerNorm(width)
        self.fc = nn.Linear(width, num_classes)

    def forward(self, feats: Sequence[Tensor], masks: Sequence[Tensor | None] | None = None) -> Tensor:
        """Class logits ``(B, K)`` from ``encode``'s maps and one mask per map (``None``: all visible).

        Masks are ``(B, 1, h, w)``, 1 = visible; the maps are zero where hidden (``maskdcpt.feature_masks``).
        """
        masks = list(masks) if masks is not None else [None] * len(feats)
        start = len(feats) - 1 - self.stages
        size, mask = feats[start].shape[-2:], masks[start]
        weights = self.level_logits.softmax(dim=0)
        x = sum(
            w * project(_resize(f, m, size))
            for w, project, f, m in zip(weights, self.projections, feats, masks, strict=True)
        )
        x = apply_mask(x, mask)
        for block, block_mask in zip(self.blocks, masks[start + 1 :], strict=False):
            x = block(x, block_mask)
            mask = block_mask
        return self.fc(self.norm(masked_mean(x, mask).flatten(1)))


def _resize(x: Tensor, mask: Tensor | None, size: torch.Size) -> Tensor:
    """``x`` at ``size``: finer maps averaged over their visible positions, coarser ones repeated."""
    if x.shape[-2:] == size:
        return x
    if x.shape[-2] < size[0]:
        return F.interpolate(x, size=size, mode="nearest")
    factor = x.shape[-2] // size[0]
    if mask is None:
        return F.avg_pool2d(x, factor)
    return F.avg_pool2d(x * mask, factor) / F.avg_pool2d(mask, factor).clamp_min(1e-6)


class DegradationClassifier(nn.Module):
    """A pre-trained MaskDCPT classifier: the backbone's encoder (unmasked) and the classification head.

    Args:
        backbone: the backbone (only ``encode`` is used).
        head: the :class:`ClassificationHead`.
        labels: the class names, in the head's order.
    """

    def __init__(self, backbone: nn.Module, head: ClassificationHead, labels: Sequence[str]) -> None:
        super().__init__()
        self.backbone, self.head, self.labels = backbone, head, list(labels)

    def forward(self, lq: Tensor) -> Tensor:
        """Class logits ``(B, K)`` of ``lq`` ``(B, 3, H, W)`` in [0, 1]."""
        return self.head(self.backbone.encode(lq))

    @torch.no_grad()
    def classify(self, lq: Tensor) -> dict[str, float]:
        """The probability of each class for one image ``(3, H, W)`` or ``(1, 3, H, W)`` in [0, 1]."""
        return classify_one(self, self.labels, lq)


def one_image(lq: Tensor, what: str = "classify") -> Tensor:
    """``lq`` as a batch of one ``(1, 3, H, W)``, from ``(3, H, W)`` or ``(1, 3, H, W)``.

    Raises:
        UirError: any other shape (``what`` names the caller in the one-line message).
    """
    if lq.ndim == 3:
        lq = lq[None]
    if lq.ndim != 4 or lq.shape[0] != 1:
        raise UirError(f"{what} takes one image (3, H, W) or (1, 3, H, W), got shape {tuple(lq.shape)}")
    return lq


def classify_one(model: nn.Module, labels: Sequence[str], lq: Tensor) -> dict[str, float]:
    """``{label: probability}`` of one image ``(3, H, W)`` or ``(1, 3, H, W)`` from a module that maps
    ``(B, 3, H, W)`` to logits (the classifiers' shared ``classify``)."""
    lq = one_image(lq)
    with torch.no_grad():
        probs = model(lq).softmax(dim=1)[0].tolist()
    return dict(zip(labels, probs, strict=True))
