"""Full-reference metrics: PSNR and SSIM with the field's protocol (docs: METHODS §1).

Defaults: RGB in [0, 1], no border crop, one score per image (average the ``(B,)`` output over a data set).
Options: ``y_channel=True`` scores the Y of MATLAB ``rgb2ycbcr`` (as BasicSR's ``test_y_channel``) and
``crop_border`` removes that many pixels from each edge first. Everything runs in float64.

SSIM is Wang et al.'s: Gaussian window 11, σ = 1.5, K1 = 0.01, K2 = 0.03, data range 1, population
(co)variances, computed where the window fits inside the image (no padding), averaged over that region and
then over channels. It equals scikit-image's ``structural_similarity(gt, restored, data_range=1,
channel_axis=-1, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)`` on float64 arrays (its
default ``truncate=3.5`` gives the 11-tap window; it filters with reflection and then discards the 5-pixel
border, which is the same as no padding), and BasicSR's ``calculate_ssim`` on float input.

PSNR of identical images is ``inf``, as in BasicSR and scikit-image; average with care (or report the count).
"""

from __future__ import annotations

from functools import lru_cache

import torch
from torch import Tensor

from uir.errors import UirError

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03
# MATLAB rgb2ycbcr's Y row for RGB in [0, 1], output in 0–255 (ITU-R BT.601, studio range 16–235).
Y_WEIGHTS = (65.481, 128.553, 24.966)


def rgb_to_y(img: Tensor) -> Tensor:
    """Y of MATLAB ``rgb2ycbcr`` (BT.601, 16–235), divided by 255, as BasicSR's ``bgr2ycbcr(y_only=True)``.

    Args:
        img: ``(B, 3, H, W)`` RGB in [0, 1].

    Returns:
        ``(B, 1, H, W)`` in [16/255, 235/255], same dtype as ``img``; no rounding.
    """
    w = img.new_tensor(Y_WEIGHTS).view(1, 3, 1, 1)
    return ((img * w).sum(dim=1, keepdim=True) + 16.0) / 255.0


def _prepare(restored: Tensor, gt: Tensor, crop_border: int, y_channel: bool) -> tuple[Tensor, Tensor]:
    """Check a pair, convert to float64, optionally to Y, and crop the border."""
    for name, t in (("restored", restored), ("gt", gt)):
        if not isinstance(t, Tensor) or t.ndim != 4 or t.shape[1] not in (1, 3):
            shape = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
            raise UirError(f"{name} must be a (B, 3, H, W) (or (B, 1, H, W)) tensor in [0, 1]; got {shape}")
    if restored.shape != gt.shape:
        raise UirError(f"restored and gt differ in shape: {tuple(restored.shape)} vs {tuple(gt.shape)}")
    if crop_border < 0 or 2 * crop_border >= min(gt.shape[-2:]):
        raise UirError(f"crop_border={crop_border} does not fit images of size {tuple(gt.shape[-2:])}")
    x, y = restored.detach().to(torch.float64), gt.detach().to(torch.float64)
    if y_channel:
        if x.shape[1] != 3:
            raise UirError("y_channel=True needs RGB images (B, 3, H, W)")
        x, y = rgb_to_y(x), rgb_to_y(y)
    if crop_border:
        x = x[..., crop_border:-crop_border, crop_border:-crop_border]
        y = y[..., crop_border:-crop_border, crop_border:-crop_border]
    return x, y


def psnr(restored: Tensor, gt: Tensor, *, crop_border: int = 0, y_channel: bool = False) -> Tensor:
    """Peak signal-to-noise ratio in dB, peak 1, one value per image. Higher is better.

    Args:
        restored: ``(B, 3, H, W)`` in [0, 1] (not clamped here).
        gt: same shape.
        crop_border: pixels removed from each edge before scoring.
        y_channel: score the Y channel (see ``rgb_to_y``) instead of RGB.

    Returns:
        ``(B,)`` float64 on the input's device; ``inf`` where the images are identical.

    Example:
        >>> import torch
        >>> gt = torch.zeros(1, 3, 8, 8)
        >>> psnr(gt + 0.1, gt)
        tensor([20.0000], dtype=torch.float64)
    """
    x, y = _prepare(restored, gt, crop_border, y_channel)
    mse = (x - y).pow(2).mean(dim=(1, 2, 3))
    return 10.0 * torch.log10(1.0 / mse)


@lru_cache(maxsize=4)
def _gaussian_taps(size: int, sigma: float) -> Tensor:
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(r**2) / (2 * sigma**2))
    return g / g.sum()


def _blur_valid(x: Tensor, taps: Tensor) -> Tensor:
    """Separable Gaussian filter of every channel, kept where the window fits (no padding)."""
    k = taps.numel()
    h, w = x.shape[-2] - k + 1, x.shape[-1] - k + 1
    # Sums of shifted copies: float64 conv2d takes a slow path on the CPU.
    rows = sum(t * x[..., i : i + h, :] for i, t in enumerate(taps.tolist()))
    return sum(t * rows[..., j : j + w] for j, t in enumerate(taps.tolist()))


def ssim(restored: Tensor, gt: Tensor, *, crop_border: int = 0, y_channel: bool = False) -> Tensor:
    """Structural similarity (Wang et al. 2004), Gaussian window 11 / σ 1.5, one value per image. Higher is better.

    Args:
        restored: ``(B, 3, H, W)`` in [0, 1]; at least 11×11 after cropping.
        gt: same shape.
        crop_border: pixels removed from each edge before scoring.
        y_channel: score the Y channel (see ``rgb_to_y``) instead of averaging the RGB channels.

    Returns:
        ``(B,)`` float64 on the input's device: the SSIM map's mean over the valid region, averaged over
        channels.

    Example:
        >>> import torch
        >>> gt = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
        >>> ssim(gt, gt)
        tensor([1., 1.], dtype=torch.float64)
    """
    x, y = _prepare(restored, gt, crop_border, y_channel)
    if min(x.shape[-2:]) < SSIM_WINDOW:
        raise UirError(f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels; got {tuple(x.shape[-2:])}")
    taps = _gaussian_taps(SSIM_WINDOW, SSIM_SIGMA)
    mu_x, mu_y, xx, yy, xy = _blur_valid(torch.stack([x, y, x * x, y * y, x * y]), taps).unbind(0)
    var_x, var_y, cov_xy = xx - mu_x * mu_x, yy - mu_y * mu_y, xy - mu_x * mu_y
    c1, c2 = SSIM_K1**2, SSIM_K2**2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return ssim_map.mean(dim=(2, 3)).mean(dim=1)
