"""Shared pure tensor functions the degradation ops are built from.

Every function takes and returns ``(B, C, H, W)`` float tensors and works on any device.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def srgb_to_linear(x: Tensor) -> Tensor:
    """sRGB-encoded values in [0, 1] to linear light (IEC 61966-2-1)."""
    x = x.clamp(0.0, 1.0)
    return torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x: Tensor) -> Tensor:
    """Linear light in [0, 1] to sRGB encoding (IEC 61966-2-1)."""
    x = x.clamp(0.0, 1.0)
    return torch.where(x <= 0.0031308, x * 12.92, 1.055 * x.clamp_min(1e-12) ** (1 / 2.4) - 0.055)


def scale_exposure(x: Tensor, factor: float, space: str = "linear") -> Tensor:
    """An sRGB image at ``factor`` times its exposure: the light scaled (``linear``, as a shorter exposure does) or
    the pixel values (``srgb``, darker at the same factor); in [0, 1]."""
    if space == "linear":
        return linear_to_srgb(srgb_to_linear(x) * factor)
    if space == "srgb":
        return (x * factor).clamp(0.0, 1.0)
    raise ValueError(f"unknown exposure space {space!r}: linear or srgb")


def luma(x: Tensor) -> Tensor:
    """Rec. 601 luma of an RGB batch: ``(B, 3, H, W)`` to ``(B, 1, H, W)``."""
    w = x.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    return (x * w).sum(dim=1, keepdim=True)


def filter2d(x: Tensor, kernel: Tensor) -> Tensor:
    """Convolve every channel with a 2D kernel (correlation, reflect padding, output size kept).

    Args:
        x: ``(B, C, H, W)``.
        kernel: ``(kh, kw)`` shared by the batch, or ``(B, kh, kw)`` one per image; odd sizes.
    """
    b, c, h, w = x.shape
    if kernel.ndim == 2:
        kernel = kernel.expand(b, *kernel.shape)
    kh, kw = kernel.shape[-2:]
    assert kh % 2 == 1 and kw % 2 == 1, "filter2d needs odd kernel sizes"
    ph, pw = kh // 2, kw // 2
    mode = "reflect" if ph < h and pw < w else "replicate"
    padded = F.pad(x, (pw, pw, ph, ph), mode=mode)
    weight = kernel.to(x).repeat_interleave(c, dim=0).unsqueeze(1)  # (B*C, 1, kh, kw)
    out = F.conv2d(padded.reshape(1, b * c, h + 2 * ph, w + 2 * pw), weight, groups=b * c)
    return out.view(b, c, h, w)


def gaussian_kernel(sigma: float, size: int | None = None, device: torch.device | str = "cpu") -> Tensor:
    """An isotropic normalized Gaussian kernel ``(size, size)``; size defaults to ``2·ceil(3σ)+1``."""
    if size is None:
        size = 2 * math.ceil(3 * sigma) + 1
    r = torch.arange(size, device=device, dtype=torch.float32) - size // 2
    k1 = torch.exp(-(r**2) / (2 * max(sigma, 1e-6) ** 2))
    k = k1[:, None] * k1[None, :]
    return k / k.sum()


def gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of every channel (reflect padding)."""
    if sigma <= 0:
        return x
    size = 2 * math.ceil(3 * sigma) + 1
    r = torch.arange(size, device=x.device, dtype=x.dtype) - size // 2
    k1 = torch.exp(-(r**2) / (2 * sigma**2))
    k1 = k1 / k1.sum()
    return filter2d(filter2d(x, k1.view(1, -1)), k1.view(-1, 1))


def smooth_field(
    shape: tuple[int, int, int, int], cells: float, generator: torch.Generator, device: torch.device | str
) -> Tensor:
    """A smooth random field, unit-normal at the control points, bicubically upsampled.

    Args:
        shape: ``(B, C, H, W)`` of the output.
        cells: about how many control points span the longer side (the field's coarseness).
        generator: lives on ``device``.
    """
    b, c, h, w = shape
    scale = max(h, w) / max(cells, 1.0)
    gh, gw = max(2, math.ceil(h / scale) + 1), max(2, math.ceil(w / scale) + 1)
    coarse = torch.randn((b, c, gh, gw), generator=generator, device=device)
    return F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=True)


def resize(x: Tensor, size: tuple[int, int], mode: str = "bicubic") -> Tensor:
    """Resize to ``size = (H, W)`` with antialiasing when shrinking (bilinear/bicubic) or ``mode`` as given."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    if mode in ("bilinear", "bicubic"):
        return F.interpolate(x, size=size, mode=mode, align_corners=False, antialias=True)
    return F.interpolate(x, size=size, mode=mode)


def normalize_kernel(k: Tensor) -> Tensor:
    """Scale a non-negative kernel (or a batch of them, last two dims) to sum to one."""
    return k / k.sum(dim=(-2, -1), keepdim=True).clamp_min(1e-12)


def screen(base: Tensor, layer: Tensor) -> Tensor:
    """Screen blending ``1 − (1 − base)(1 − layer)``: how bright rain or snow adds onto a photo."""
    return 1.0 - (1.0 - base) * (1.0 - layer)
