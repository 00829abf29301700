"""What every classic baseline shares: the per-image loop between tensors and numpy, and colour helpers.

Classic methods run in numpy/OpenCV on the CPU, one image at a time. ``ImageRestorer`` turns a function on one
``HxWx3`` float32 array into a ``Restorer`` for ``(B, 3, H, W)`` batches on any device.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from uir.errors import UirError
from uir.io import to_numpy, to_tensor


def check_batch(lq: Tensor, name: str) -> None:
    """Fail loudly unless ``lq`` is a ``(B, 3, H, W)`` float tensor."""
    if not isinstance(lq, Tensor) or lq.ndim != 4 or lq.shape[1] != 3 or not lq.is_floating_point():
        shape = tuple(lq.shape) if isinstance(lq, Tensor) else type(lq).__name__
        raise UirError(f"{name}: expects a (B, 3, H, W) float tensor in [0, 1], got {shape}")


class ImageRestorer:
    """A restorer made of a function on one image; subclasses set ``name`` and implement ``restore_image``.

    Attributes:
        name: the registry key.
    """

    name: str = "image-restorer"

    def restore_image(self, image: np.ndarray) -> np.ndarray:
        """Restore one image: ``HxWx3`` float32 RGB in [0, 1] to the same."""
        raise NotImplementedError

    def restore(self, lq: Tensor, tasks: Sequence[str] | None = None) -> Tensor:
        """Restore a batch image by image on the CPU.

        Args:
            lq: ``(B, 3, H, W)`` float RGB in [0, 1], any device.
            tasks: ignored (a classic baseline does one thing).

        Returns:
            ``(B, 3, H, W)`` in [0, 1], same dtype and device as ``lq``.
        """
        check_batch(lq, self.name)
        return torch.cat([self._one(lq[i : i + 1]) for i in range(lq.shape[0])]).to(lq)

    def _one(self, lq: Tensor) -> Tensor:
        image = np.ascontiguousarray(np.clip(to_numpy(lq, np.float32), 0.0, 1.0))
        restored = np.clip(np.nan_to_num(self.restore_image(image)), 0.0, 1.0).astype(np.float32)
        return to_tensor(restored)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """sRGB-encoded values in [0, 1] to linear light (IEC 61966-2-1), float32."""
    x = np.clip(x, 0.0, 1.0).astype(np.float32)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    """Linear light in [0, 1] to sRGB encoding (IEC 61966-2-1), float32."""
    x = np.clip(x, 0.0, 1.0).astype(np.float32)
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * np.maximum(x, 1e-12) ** (1 / 2.4) - 0.055).astype(np.float32)


def gray(image: np.ndarray) -> np.ndarray:
    """Rec. 601 luma: ``HxWx3`` to ``HxW`` float32 (an ``HxW`` input is returned as float32)."""
    if image.ndim == 2:
        return image.astype(np.float32)
    return (image @ np.array([0.299, 0.587, 0.114], dtype=np.float32)).astype(np.float32)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """[0, 1] float to uint8, rounded."""
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)
