"""Supervised restoration: the backbone maps ``lq`` to ``gt`` under an L1, Charbonnier or PSNR loss (the last two
optionally plus a weighted L1)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

from uir.methods.registry import register_method


@dataclass
class SupervisedConfig:
    """The ``method:`` section for ``name: supervised``.

    Attributes:
        loss: ``l1`` (mean absolute error), ``charbonnier`` (``mean(sqrt((x - y)² + eps²))``) or ``psnr`` (minus
            each image's PSNR, averaged: ``psnr_loss``).
        charbonnier_eps: the Charbonnier ``eps``.
        psnr_eps: added to each image's mean squared error before the log (``psnr_loss``).
        l1_weight: with ``psnr`` or ``charbonnier``, ``l1_weight · L1`` is added to the loss (0: not). Under the
            PSNR loss an image weighs ``1 / mse`` (faint damage most), under L1 every image alike; the sum keeps the
            hard images' pull (hazy, blurred) while the faint ones gain. The PSNR loss's gradient is ~200x L1's on
            the v2 campaign's data (norms ~100 and ~0.45), the scale at which the two pull alike.
    """

    name: Literal["supervised"] = "supervised"
    loss: Literal["l1", "charbonnier", "psnr"] = "l1"
    charbonnier_eps: float = 1e-3
    psnr_eps: float = 1e-8
    l1_weight: float = 0.0

    def check(self) -> None:
        if not self.charbonnier_eps > 0:
            raise ValueError(f"charbonnier_eps must be > 0, got {self.charbonnier_eps}")
        if not self.psnr_eps > 0:
            raise ValueError(f"psnr_eps must be > 0, got {self.psnr_eps}")
        if not self.l1_weight >= 0:
            raise ValueError(f"l1_weight must be >= 0, got {self.l1_weight}")
        if self.l1_weight and self.loss == "l1":
            raise ValueError("l1_weight adds L1 to the psnr or charbonnier loss; with loss l1, leave it 0")


def charbonnier(restored: Tensor, gt: Tensor, eps: float = 1e-3) -> Tensor:
    """``mean(sqrt((restored - gt)² + eps²))``, a smooth L1 (Charbonnier et al., 1994).

    Args:
        restored: ``(B, 3, H, W)``.
        gt: ``(B, 3, H, W)``.

    Example:
        >>> round(charbonnier(torch.zeros(1, 3, 2, 2), torch.ones(1, 3, 2, 2)).item(), 4)
        1.0
    """
    return torch.sqrt((restored - gt).square() + eps * eps).mean()


def psnr_loss(restored: Tensor, gt: Tensor, eps: float = 1e-8) -> Tensor:
    """``mean_i 10·log10(mse_i + eps)``: minus each image's PSNR (peak 1), averaged over the batch (NAFNet's loss,
    Chen et al. 2022). Every image counts in decibels, as the benchmarks count it: under L1 an image whose damage
    is faint (weak camera grain, a clean photo to keep) contributes almost nothing beside a hazy or dark one.

    Args:
        restored: ``(B, 3, H, W)``.
        gt: ``(B, 3, H, W)``.
        eps: keeps the log finite when an image is restored exactly.

    Example:
        >>> round(psnr_loss(torch.zeros(2, 3, 4, 4), torch.full((2, 3, 4, 4), 0.1)).item(), 3)
        -20.0
    """
    mse = (restored - gt).square().flatten(1).mean(1)
    return 10.0 * torch.log10(mse + eps).mean()


class Supervised(nn.Module):
    """Train a backbone to restore: ``loss = L(backbone(lq), gt)``.

    Args:
        backbone: any backbone of ``uir.models.backbones`` (``forward(lq) -> restored``).
        loss: ``l1``, ``charbonnier`` or ``psnr``.
        charbonnier_eps: the Charbonnier ``eps``.
        psnr_eps: the ``eps`` of ``psnr_loss``.
        l1_weight: the weight of an L1 term added to the ``psnr`` or ``charbonnier`` loss.

    Example:
        >>> from torch import nn
        >>> method = Supervised(nn.Identity())
        >>> batch = {"lq": torch.zeros(2, 3, 8, 8), "gt": torch.ones(2, 3, 8, 8)}
        >>> loss, logs = method(batch)
        >>> float(loss), sorted(logs)
        (1.0, ['l1'])
    """

    def __init__(
        self,
        backbone: nn.Module,
        *,
        loss: str = "l1",
        charbonnier_eps: float = 1e-3,
        psnr_eps: float = 1e-8,
        l1_weight: float = 0.0,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.loss, self.charbonnier_eps, self.psnr_eps, self.l1_weight = loss, charbonnier_eps, psnr_eps, l1_weight

    def forward(self, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        """Restore ``batch["lq"]`` and score it against ``batch["gt"]``, both ``(B, 3, H, W)`` in [0, 1].

        Returns:
            The loss, and ``{"l1": ...}`` (plus ``"charbonnier"`` or ``"psnr"``) as detached scalars.
        """
        restored = self.backbone(batch["lq"])
        l1 = (restored - batch["gt"]).abs().mean()
        if self.loss == "l1":
            return l1, {"l1": l1.detach()}
        if self.loss == "psnr":
            main = psnr_loss(restored, batch["gt"], self.psnr_eps)
            logs = {"psnr": -main.detach(), "l1": l1.detach()}
        else:
            main = charbonnier(restored, batch["gt"], self.charbonnier_eps)
            logs = {"charbonnier": main.detach(), "l1": l1.detach()}
        return (main + self.l1_weight * l1 if self.l1_weight else main), logs


def build_supervised(backbone: nn.Module, config: SupervisedConfig) -> Supervised:
    """The registry's builder: config keys are the constructor's arguments."""
    return Supervised(
        backbone,
        loss=config.loss,
        charbonnier_eps=config.charbonnier_eps,
        psnr_eps=config.psnr_eps,
        l1_weight=config.l1_weight,
    )


register_method("supervised", SupervisedConfig, build_supervised)
