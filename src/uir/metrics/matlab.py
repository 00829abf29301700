"""MATLAB-compatible building blocks for the no-reference metrics (NIQE, PIQE).

Published NIQE/PIQE numbers come from MATLAB code that reads 8-bit images, so these helpers reproduce
MATLAB's conventions exactly, in float64: ``rgb2gray`` and ``rgb2ycbcr`` on ``uint8`` (rounded results),
``fspecial('gaussian')``, ``imfilter(..., 'replicate')`` and ``imresize`` (bicubic, antialiased, symmetric
borders). All functions take and return float64 tensors holding 0–255 values unless stated.
"""

from __future__ import annotations

import itertools
import math
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor

from uir.errors import UirError
from uir.metrics.reference import Y_WEIGHTS

# rgb2gray's weights: the first row of inv(the NTSC YIQ matrix), as MATLAB computes them.
GRAY_WEIGHTS = (0.298936021293775, 0.587043074451121, 0.114020904255103)


def check_rgb_batch(img: Tensor, name: str = "img") -> None:
    """Raise ``UirError`` unless ``img`` is a ``(B, 3, H, W)`` floating tensor."""
    if not isinstance(img, Tensor) or img.ndim != 4 or img.shape[1] != 3 or not img.is_floating_point():
        shape = tuple(img.shape) if isinstance(img, Tensor) else type(img).__name__
        raise UirError(f"{name} must be a (B, 3, H, W) float RGB tensor in [0, 1]; got {shape}")


def to_8bit_luma(img: Tensor, convert_to: str) -> Tensor:
    """Quantize an RGB batch to 8 bits and take MATLAB's gray or Y, rounded as MATLAB does on ``uint8``.

    Args:
        img: ``(B, 3, H, W)`` RGB in [0, 1] (clamped).
        convert_to: ``"gray"`` (``rgb2gray``: 0.2989 R + 0.5870 G + 0.1140 B) or ``"y"`` (``rgb2ycbcr``'s Y,
            16–235).

    Returns:
        ``(B, H, W)`` float64 integer levels in [0, 255].
    """
    levels = torch.round(img.detach().to(torch.float64).clamp(0.0, 1.0) * 255.0)
    if convert_to == "gray":
        weights, offset = GRAY_WEIGHTS, 0.0
    elif convert_to == "y":
        weights, offset = tuple(w / 255.0 for w in Y_WEIGHTS), 16.0
    else:
        raise UirError(f"convert_to must be 'gray' or 'y'; got {convert_to!r}")
    w = levels.new_tensor(weights).view(1, 3, 1, 1)
    return torch.round((levels * w).sum(dim=1) + offset)


@lru_cache(maxsize=8)
def fspecial_gaussian(size: int, sigma: float) -> Tensor:
    """MATLAB ``fspecial('gaussian', size, sigma)``: a normalized ``(size, size)`` float64 kernel."""
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma**2))
    return g / g.sum()


def imfilter_replicate(x: Tensor, window: Tensor) -> Tensor:
    """MATLAB ``imfilter(x, window, 'replicate')`` (correlation, output size kept).

    Args:
        x: ``(N, H, W)`` float64.
        window: ``(k, k)`` with odd ``k``.

    Returns:
        ``(N, H, W)``.
    """
    k = window.shape[-1]
    h, w = x.shape[-2:]
    padded = F.pad(x.unsqueeze(1), (k // 2,) * 4, mode="replicate").squeeze(1)
    # A sum of shifted copies: float64 conv2d takes a slow path on the CPU.
    out = torch.zeros_like(x)
    for i, j in itertools.product(range(k), range(k)):
        out += window[i, j].item() * padded[:, i : i + h, j : j + w]
    return out


def local_normalize(x: Tensor, window: Tensor) -> Tensor:
    """Mean-subtracted contrast-normalized (MSCN) coefficients ``(x - mu) / (sigma + 1)`` (NIQE/BRISQUE Eq. 1).

    Args:
        x: ``(N, H, W)`` float64 in 0–255.
        window: the ``(7, 7)`` Gaussian window.

    Returns:
        ``(N, H, W)``.
    """
    mu, mu_sq = imfilter_replicate(torch.cat([x, x * x]), window).chunk(2)
    sigma = torch.sqrt(torch.abs(mu_sq - mu * mu))
    return (x - mu) / (sigma + 1.0)


def _cubic(x: Tensor) -> Tensor:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's ``cubic``)."""
    ax = x.abs()
    near = (1.5 * ax**3 - 2.5 * ax**2 + 1.0) * (ax <= 1)
    far = (-0.5 * ax**3 + 2.5 * ax**2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))
    return near + far


@lru_cache(maxsize=32)
def _resize_matrix(in_length: int, scale: float) -> Tensor:
    """``(out, in)`` matrix of MATLAB ``imresize``'s bicubic weights, antialiased, with symmetric borders."""
    out_length = math.ceil(in_length * scale)
    kernel_width = 4.0 / scale if scale < 1 else 4.0
    x = torch.arange(1, out_length + 1, dtype=torch.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = torch.floor(u - kernel_width / 2)
    taps = math.ceil(kernel_width) + 2
    indices = left[:, None] + torch.arange(taps, dtype=torch.float64)[None, :]
    distance = u[:, None] - indices
    weights = scale * _cubic(distance * scale) if scale < 1 else _cubic(distance)
    weights = weights / weights.sum(dim=1, keepdim=True)
    # MATLAB mirrors out-of-range indices: aux = [1:n, n:-1:1]; aux(mod(i - 1, 2n) + 1).
    mirror = torch.cat([torch.arange(in_length), torch.arange(in_length - 1, -1, -1)])
    cols = mirror[torch.remainder(indices.long() - 1, 2 * in_length)]
    matrix = torch.zeros(out_length, in_length, dtype=torch.float64)
    matrix.scatter_add_(1, cols, weights)
    return matrix


def imresize(x: Tensor, scale: float) -> Tensor:
    """MATLAB ``imresize(x, scale)`` on a double image: bicubic, antialiased when shrinking, no clipping.

    Args:
        x: ``(N, H, W)`` float64.
        scale: the same factor for both axes.

    Returns:
        ``(N, ceil(H·scale), ceil(W·scale))``.
    """
    rows = _resize_matrix(x.shape[-2], float(scale)).to(x)
    cols = _resize_matrix(x.shape[-1], float(scale)).to(x)
    return rows @ x @ cols.T
