"""Supervised restoration: the backbone maps ``lq`` to ``gt`` under an L1 or Charbonnier loss."""

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
        loss: ``l1`` (mean absolute error) or ``charbonnier`` (``mean(sqrt((x - y)² + eps²))``).
        charbonnier_eps: the Charbonnier ``eps``.
    """

    name: Literal["supervised"] = "supervised"
    loss: Literal["l1", "charbonnier"] = "l1"
    charbonnier_eps: float = 1e-3

    def check(self) -> None:
        if not self.charbonnier_eps > 0:
            raise ValueError(f"charbonnier_eps must be > 0, got {self.charbonnier_eps}")


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


class Supervised(nn.Module):
    """Train a backbone to restore: ``loss = L(backbone(lq), gt)``.

    Args:
        backbone: any backbone of ``uir.models.backbones`` (``forward(lq) -> restored``).
        loss: ``l1`` or ``charbonnier``.
        charbonnier_eps: the Charbonnier ``eps``.

    Example:
        >>> from torch import nn
        >>> method = Supervised(nn.Identity())
        >>> batch = {"lq": torch.zeros(2, 3, 8, 8), "gt": torch.ones(2, 3, 8, 8)}
        >>> loss, logs = method(batch)
        >>> float(loss), sorted(logs)
        (1.0, ['l1'])
    """

    def __init__(self, backbone: nn.Module, *, loss: str = "l1", charbonnier_eps: float = 1e-3) -> None:
        super().__init__()
        self.backbone = backbone
        self.loss, self.charbonnier_eps = loss, charbonnier_eps

    def forward(self, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        """Restore ``batch["lq"]`` and score it against ``batch["gt"]``, both ``(B, 3, H, W)`` in [0, 1].

        Returns:
            The loss, and ``{"l1": ...}`` (plus ``"charbonnier"``) as detached scalars.
        """
        restored = self.backbone(batch["lq"])
        l1 = (restored - batch["gt"]).abs().mean()
        if self.loss == "l1":
            return l1, {"l1": l1.detach()}
        loss = charbonnier(restored, batch["gt"], self.charbonnier_eps)
        return loss, {"charbonnier": loss.detach(), "l1": l1.detach()}


def build_supervised(backbone: nn.Module, config: SupervisedConfig) -> Supervised:
    """The registry's builder: config keys are the constructor's arguments."""
    return Supervised(backbone, loss=config.loss, charbonnier_eps=config.charbonnier_eps)


register_method("supervised", SupervisedConfig, build_supervised)
