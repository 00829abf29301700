"""NIQE, the Natural Image Quality Evaluator (Mittal, Soundararajan and Bovik, IEEE SPL 2013). Lower is better.

Re-implemented from the paper and the authors' MATLAB release (``computequality.m``), with its pristine
multivariate Gaussian model (``assets/niqe_pris_params.npz``, Apache-2.0, from BasicSR; see
``assets/README.md``). The steps, as in MATLAB:

1. the image is quantized to 8 bits and converted to one channel, rounded as MATLAB does on ``uint8``;
2. it is cropped to whole 96×96 blocks (no overlap);
3. at two scales (the image, then MATLAB ``imresize(·, 0.5)`` bicubic) the MSCN coefficients are computed with
   the 7×7 Gaussian window (σ = 7/6, replicate borders), and each block (96, then 48 pixels) gives 18 features:
   an AGGD fit of the coefficients and of their products with four neighbours;
4. a Gaussian is fitted to the 36-d block features (``nanmean``, ``nancov`` over complete rows) and compared
   with the pristine one: ``sqrt((mu_p - mu)ᵀ pinv((S_p + S) / 2) (mu_p - mu))`` (paper Eq. 10).

Conversion: the default is BasicSR's ``calculate_niqe`` default, the Y of MATLAB ``rgb2ycbcr`` (``"y"``); the
authors' MATLAB code itself uses ``rgb2gray`` (``convert_to="gray"``). Both are exact MATLAB conversions of
the 8-bit image.

Agreement: with ``convert_to="gray"`` this reproduces the MATLAB release's published 3.65492152 on TID2013
``I04`` to 1e-7, and it matches BasicSR's numpy NIQE to ~4e-6 on ``examples/clean/chelsea.png``. On images with
large flat or clipped areas NIQE is ill-conditioned: there the MSCN coefficients are rounding noise whose sign
decides the AGGD fits, so implementations (MATLAB's included) can differ by a few percent; a 1e-9 relative
perturbation of the half-scale image moves such scores by up to ~0.7%.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from importlib import resources

import numpy as np
import torch
from torch import Tensor

from uir.errors import UirError
from uir.metrics.matlab import check_rgb_batch, imresize, local_normalize, to_8bit_luma
from uir.metrics.nss import NIQE_SHIFTS, aggd_fit, aggd_scales, neighbour_products

logger = logging.getLogger(__name__)

BLOCK_SIZE = 96


@lru_cache(maxsize=1)
def pristine_model() -> tuple[Tensor, Tensor, Tensor]:
    """The MATLAB NIQE pristine model: mean ``(36,)``, covariance ``(36, 36)`` and the ``(7, 7)`` window."""
    with resources.files("uir").joinpath("assets/niqe_pris_params.npz").open("rb") as f:
        params = np.load(f)
        arrays = (params["mu_pris_param"].reshape(-1), params["cov_pris_param"], params["gaussian_window"])
    return tuple(torch.from_numpy(np.asarray(a, dtype=np.float64)) for a in arrays)


def _blocks(x: Tensor, size: int) -> Tensor:
    """Split ``(H, W)`` (whole multiples of ``size``) into ``(N, size, size)`` non-overlapping blocks."""
    h, w = x.shape
    return x.reshape(h // size, size, w // size, size).permute(0, 2, 1, 3).reshape(-1, size, size)


def block_features(blocks: Tensor) -> Tensor:
    """The 18 NIQE features of each block (MATLAB ``computefeature``).

    Args:
        blocks: ``(N, h, w)`` MSCN coefficients.

    Returns:
        ``(N, 18)``: AGGD shape and mean scale of the coefficients, then for each of the four neighbour
        products its shape, mean, left and right scales.
    """
    alpha, left, right = aggd_fit(blocks.flatten(1))
    beta_left, beta_right, _ = aggd_scales(alpha, left, right)
    feats = [alpha, (beta_left + beta_right) / 2]
    for pair in neighbour_products(blocks, NIQE_SHIFTS):
        alpha, left, right = aggd_fit(pair)
        beta_left, beta_right, mean = aggd_scales(alpha, left, right)
        feats += [alpha, mean, beta_left, beta_right]
    return torch.stack(feats, dim=1)


def _nan_cov(feats: Tensor) -> Tensor:
    """MATLAB ``nancov``: covariance (normalized by n - 1) over the rows without NaN; zeros for one row."""
    complete = feats[~torch.isnan(feats).any(dim=1)]
    if complete.shape[0] < 2:
        return feats.new_zeros(feats.shape[1], feats.shape[1])
    centred = complete - complete.mean(dim=0)
    return centred.T @ centred / (complete.shape[0] - 1)


def niqe_gray(gray: Tensor, block_size: int = BLOCK_SIZE) -> float:
    """NIQE of one single-channel image in 0–255 (MATLAB ``computequality`` with the pristine model).

    Args:
        gray: ``(H, W)`` float64, at least ``block_size`` in both sides.
        block_size: block side at the first scale (the pristine model was fitted with 96).

    Returns:
        The NIQE score (lower is better).
    """
    mu_pris, cov_pris, window = pristine_model()
    h, w = (s // block_size * block_size for s in gray.shape)
    x = gray[:h, :w].unsqueeze(0)
    feats = []
    for scale in (1, 2):
        mscn = local_normalize(x, window)
        feats.append(block_features(_blocks(mscn[0], block_size // scale)))
        if scale == 1:
            x = imresize(x, 0.5)
    dist = torch.cat(feats, dim=1)
    mu_dist = torch.nanmean(dist, dim=0)
    diff = (mu_pris - mu_dist).unsqueeze(0)
    quality = diff @ torch.linalg.pinv((cov_pris + _nan_cov(dist)) / 2) @ diff.T
    return float(torch.sqrt(quality).squeeze())


def niqe(img: Tensor, *, crop_border: int = 0, convert_to: str = "gray") -> Tensor:
    """NIQE of each image of a batch, as MATLAB computes it on the 8-bit image. Lower is better.

    Args:
        img: ``(B, 3, H, W)`` RGB in [0, 1]; after cropping, at least 96×96.
        crop_border: pixels removed from each edge before scoring.
        convert_to: ``"gray"`` (MATLAB ``rgb2gray``, as the authors' code: the default, because it is the one
            that reproduces their published MATLAB values, and what pyiqa does) or ``"y"`` (MATLAB ``rgb2ycbcr``
            Y, BasicSR's default).

    Returns:
        ``(B,)`` float64 scores on the CPU.

    Example:
        >>> import torch
        >>> niqe(torch.rand(1, 3, 96, 128, generator=torch.Generator().manual_seed(0))).shape
        torch.Size([1])
    """
    check_rgb_batch(img)
    gray = to_8bit_luma(img, convert_to).cpu()
    if crop_border > 0:
        gray = gray[:, crop_border:-crop_border, crop_border:-crop_border]
    if min(gray.shape[-2:]) < BLOCK_SIZE:
        raise UirError(
            f"NIQE needs images of at least {BLOCK_SIZE}x{BLOCK_SIZE} pixels (after crop_border={crop_border}); "
            f"got {tuple(gray.shape[-2:])}"
        )
    scores = torch.tensor([niqe_gray(g) for g in gray], dtype=torch.float64)
    logger.debug("niqe of %d images: %s", len(scores), scores.tolist())
    return scores
