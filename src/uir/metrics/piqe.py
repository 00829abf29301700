"""PIQE, the Perception-based Image Quality Evaluator (Venkatanath N et al., NCC 2015). Lower is better, 0–100.

Re-implemented after the paper and MATLAB's ``piqe`` (Image Processing Toolbox), whose conventions the
published scores carry:

1. the image is quantized to 8 bits and converted with ``rgb2gray`` (rounded); padded at the bottom/right
   (``symmetric``) to whole 16×16 blocks; rescaled to ``round(255 · x / max(x))``;
2. MSCN coefficients with the 7×7 Gaussian window (σ = 7/6, replicate borders);
3. a block is *active* when the (n - 1)-normalized variance ``v`` of its coefficients exceeds 0.1;
4. an active block has a *noticeable artifact* when one of the 11 six-pixel segments along any of its four
   edges has a standard deviation below 0.1, and is *noisy* when ``sigma > 2·beta``, with ``beta`` the
   relative difference between the block's standard deviation and its centre-to-surround deviation ratio;
5. ``score = 100 · (1 + Σ_active [artifact·(1 - v) + noisy·v]) / (1 + number of active blocks)``.

The centre-to-surround ratio follows MATLAB exactly, including how the surround is formed: MATLAB deletes
column 8 of the 16-column block and then column 9 *of what is left*, so the surround keeps original column 9
and loses column 10 (1-based); ``pypiqe`` does the same.
"""

from __future__ import annotations

import logging

import torch
from torch import Tensor

from uir.metrics.matlab import check_rgb_batch, fspecial_gaussian, local_normalize, to_8bit_luma

logger = logging.getLogger(__name__)

BLOCK_SIZE = 16
ACTIVITY_THRESHOLD = 0.1
IMPAIRED_THRESHOLD = 0.1
SEGMENT_LENGTH = 6


def _pad_symmetric(x: Tensor, multiple: int) -> Tensor:
    """Pad ``(N, H, W)`` at the bottom and right to multiples of ``multiple`` (MATLAB ``padarray`` symmetric)."""

    def index(n: int) -> Tensor:
        total = -(-n // multiple) * multiple
        mirror = torch.cat([torch.arange(n), torch.arange(n - 1, -1, -1)])
        return mirror[torch.arange(total) % (2 * n)]

    return x[:, index(x.shape[1])][:, :, index(x.shape[2])]


def _std(x: Tensor, dims: tuple[int, ...]) -> Tensor:
    return torch.std(x, dim=dims, correction=1)


def _has_artifact(blocks: Tensor) -> Tensor:
    """``(N,)`` bool: some six-pixel segment on a block edge is nearly flat (std < 0.1)."""
    edges = torch.stack([blocks[:, 0, :], blocks[:, :, -1], blocks[:, -1, :], blocks[:, :, 0]], dim=1)
    segments = edges.unfold(-1, SEGMENT_LENGTH, 1)  # (N, 4, 11, 6)
    return (_std(segments, (-1,)) < IMPAIRED_THRESHOLD).flatten(1).any(dim=1)


def _is_noisy(blocks: Tensor, variance: Tensor) -> Tensor:
    """``(N,)`` bool: the block's deviation departs from its centre-surround structure (MATLAB's criterion)."""
    c1 = BLOCK_SIZE // 2 - 1  # MATLAB's centre columns 8 and 9 (1-based)
    center = torch.cat([blocks[:, :, c1], blocks[:, :, c1 + 1]], dim=1)
    keep = [j for j in range(BLOCK_SIZE) if j not in (c1, c1 + 2)]
    ratio = torch.nan_to_num(_std(center, (1,)) / _std(blocks[:, :, keep], (1, 2)), nan=0.0)
    sigma = torch.sqrt(variance)
    beta = (sigma - ratio).abs() / torch.maximum(sigma, ratio)
    return sigma > 2 * beta


def piqe_gray(gray: Tensor) -> float:
    """PIQE of one single-channel image of 8-bit levels.

    Args:
        gray: ``(H, W)`` float64 in 0–255.

    Returns:
        The score in [0, 100] (lower is better; 100 for a uniform image).
    """
    x = _pad_symmetric(gray.unsqueeze(0), BLOCK_SIZE)
    peak = x.max()
    x = torch.round(255.0 * x / peak) if peak > 0 else x
    mscn = local_normalize(x, fspecial_gaussian(7, 7 / 6))
    h, w = mscn.shape[-2:]
    blocks = mscn[0].reshape(h // BLOCK_SIZE, BLOCK_SIZE, w // BLOCK_SIZE, BLOCK_SIZE).permute(0, 2, 1, 3)
    blocks = blocks.reshape(-1, BLOCK_SIZE, BLOCK_SIZE)
    variance = torch.var(blocks, dim=(1, 2), correction=1)
    active = variance > ACTIVITY_THRESHOLD
    if not active.any():
        return 100.0
    blocks, variance = blocks[active], variance[active]
    distortion = _has_artifact(blocks) * (1 - variance) + _is_noisy(blocks, variance) * variance
    return float(100.0 * (distortion.sum() + 1.0) / (active.sum() + 1.0))


def piqe(img: Tensor) -> Tensor:
    """PIQE of each image of a batch, as MATLAB ``piqe`` computes it on the 8-bit image. Lower is better.

    Args:
        img: ``(B, 3, H, W)`` RGB in [0, 1] (any size).

    Returns:
        ``(B,)`` float64 scores in [0, 100] on the CPU.

    Example:
        >>> import torch
        >>> float(piqe(torch.full((1, 3, 32, 32), 0.5))[0])  # a uniform image has no active block
        100.0
    """
    check_rgb_batch(img)
    gray = to_8bit_luma(img, "gray").cpu()
    scores = torch.tensor([piqe_gray(g) for g in gray], dtype=torch.float64)
    logger.debug("piqe of %d images: %s", len(scores), scores.tolist())
    return scores
