"""Trained models as ``Restorer``s: ``uir eval --model run/best.safetensors`` and ``uir restore`` load them here.

Importing this module registers ``load_model_file`` with ``uir.restorers.register_loader``; it accepts uir
``.safetensors`` files and training checkpoints (``.ckpt``, EMA weights preferred).

Example:
    >>> import uir.pretrained  # noqa: F401  (registers the loader)  # doctest: +SKIP
    >>> from uir.restorers import load_restorer  # doctest: +SKIP
    >>> model = load_restorer("runs/nafnet_cpu_5d/best.safetensors")  # doctest: +SKIP
    >>> model.restore(lq).shape == lq.shape  # doctest: +SKIP
    True
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from uir.checkpoint import Weights, load_weights
from uir.errors import UirError
from uir.restorers import Restorer, register_loader

logger = logging.getLogger(__name__)

# Model files this loader claims; anything else is left to other loaders.
SUFFIXES = (".safetensors", ".ckpt")


class ModelRestorer:
    """A trained backbone behind the ``Restorer`` interface.

    ``restore`` runs the whole batch through the backbone under ``no_grad`` (backbones pad internally to their
    size multiple). ``tile_size`` tells ``uir.restore.restore_tensor`` to tile images larger than it.

    Args:
        name: a short identity (the file's stem).
        backbone: the network, ``forward(lq) -> restored``.
        labels: the class names the model was trained with.
        device: where it runs.
        tile_size: the tile side for large images (``0``: never tile).
    """

    def __init__(
        self, name: str, backbone: nn.Module, labels: Sequence[str] = (), device: str = "cpu", tile_size: int = 512
    ) -> None:
        self.name = name
        self.device = torch.device(device)
        self.backbone = backbone.to(self.device).eval()
        self.labels = list(labels)
        self.tile_size = tile_size

    def restore(self, lq: Tensor, tasks: Sequence[str] | None = None) -> Tensor:
        """Restore ``lq`` ``(B, 3, H, W)`` float in [0, 1]; returns the same shape, in [0, 1], on ``lq``'s device.

        ``tasks`` is ignored: the model is all-in-one.
        """
        if not isinstance(lq, Tensor) or lq.ndim != 4 or lq.shape[1] != 3 or not lq.is_floating_point():
            shape = tuple(lq.shape) if isinstance(lq, Tensor) else type(lq).__name__
            raise UirError(f"{self.name}: expects a (B, 3, H, W) float tensor in [0, 1], got {shape}")
        with torch.no_grad():
            restored = self.backbone(lq.to(self.device, torch.float32))
        return restored.clamp(0.0, 1.0).to(lq.device, lq.dtype)

    def __repr__(self) -> str:
        return f"ModelRestorer(name={self.name!r}, device={str(self.device)!r})"


def build_from_weights(weights: Weights) -> nn.Module:
    """The backbone described by ``weights``, with the weights loaded (strictly)."""
    from uir.models.backbones import create_backbone

    backbone = create_backbone(weights.backbone, **weights.overrides)
    missing, unexpected = backbone.load_state_dict(weights.state, strict=False)
    if missing or unexpected:
        raise UirError(
            f"the weights do not fit {weights.backbone}: {len(missing)} missing and {len(unexpected)} unexpected "
            f"tensors (e.g. {(missing or unexpected)[0]})"
        )
    return backbone


def load_model(path: str | Path, device: str = "cpu") -> ModelRestorer:
    """A ``ModelRestorer`` from a uir ``.safetensors`` file or a training checkpoint.

    Raises:
        UirError: not a uir model file, or the weights do not fit the described backbone.
    """
    path = Path(path)
    weights = load_weights(path)
    return ModelRestorer(path.stem, build_from_weights(weights), weights.labels, device=device)


def load_model_file(path: Path, device: str) -> Restorer | None:
    """The ``register_loader`` hook: a restorer for uir model files, ``None`` for other files."""
    if path.suffix not in SUFFIXES:
        return None
    return load_model(path, device)


register_loader(load_model_file)
