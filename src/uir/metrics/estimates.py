"""How much damage: blind estimates of a degradation's strength from the image alone (issue 20).

- :func:`noise_sigma`: the standard deviation of additive white noise, in 8-bit units, by the patch-PCA method of
  Chen, Zhu and Heng ("An Efficient Statistical Method for Image Noise Level Estimation", ICCV 2015) on weak-texture
  patches: the covariance of 7×7 patches has a tail of small eigenvalues that image structure does not reach; the
  noise variance is the mean of the longest tail whose mean has come down to its median.
- :func:`jpeg_quality`: the libjpeg quality an image was last saved at, from its decoded pixels: the 8×8 block grid
  is found (the alignment with the most near-zero DCT coefficients), the quantization step of each luma frequency
  is read from the multiples its coefficients sit on, and the IJG quality whose luma table best matches those steps
  is returned; ``nan`` when no quantization is found (not a JPEG, or a quality near 100).

Both take ``(B, 3, H, W)`` RGB in [0, 1] and return ``(B,)`` float64. ``scripts/severity_report.py`` measures their
error on held-out photos.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

# The IJG (libjpeg) luminance table at quality 50 (ITU-T T.81, Annex K.1), row-major.
_LUMA_BASE = np.array(
    [
        [16, 11, 10, 16, 24, 40, 51, 61],
        [12, 12, 14, 19, 26, 58, 60, 55],
        [14, 13, 16, 24, 40, 57, 69, 56],
        [14, 17, 22, 29, 51, 87, 80, 62],
        [18, 22, 37, 56, 68, 109, 103, 77],
        [24, 35, 55, 64, 81, 104, 113, 92],
        [49, 64, 78, 87, 103, 121, 120, 101],
        [72, 92, 95, 98, 112, 100, 103, 99],
    ],
    dtype=np.float64,
)


def _tail_variance(eigenvalues: np.ndarray) -> float:
    """Chen et al.'s rule: drop the largest eigenvalues until the rest have a mean no larger than their median."""
    values = np.sort(np.clip(eigenvalues, 0.0, None))[::-1]
    for start in range(len(values)):
        tail = values[start:]
        if tail.mean() <= np.median(tail):
            return float(tail.mean())
    return float(values[-1])


def _pca_sigma(patches: Tensor) -> float:
    centred = patches - patches.mean(dim=0, keepdim=True)
    covariance = (centred.T @ centred) / max(1, centred.shape[0] - 1)
    return math.sqrt(_tail_variance(torch.linalg.eigvalsh(covariance).numpy()))


def noise_sigma(img: Tensor, patch: int = 7, iterations: int = 3) -> Tensor:
    """``(B, 3, H, W)`` in [0, 1] -> ``(B,)``: the estimated σ of additive white noise in 8-bit units (0–255).

    Per channel, then averaged: a first estimate from all 7×7 patches, then ``iterations`` rounds on the patches
    that look like noise alone at the current estimate (Liu, Tanaka and Okutomi's weak-texture selection, ICIP 2012:
    mean squared neighbour difference below 1.6 × the 4σ² that noise alone gives) and whose mean is at least 2σ from
    black and white (clipped noise has a smaller variance). Clean photos give a small positive value (their
    quantization, sensor noise, JPEG history).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> smooth = torch.linspace(0.2, 0.8, 96).expand(1, 3, 96, 96)
        >>> noisy = (smooth + torch.randn(1, 3, 96, 96, generator=g) * 20 / 255).clamp(0, 1)
        >>> abs(float(noise_sigma(noisy)) - 20) < 1.5
        True
    """
    if img.ndim != 4 or img.shape[-1] < 2 * patch or img.shape[-2] < 2 * patch:
        raise ValueError(
            f"noise_sigma needs (B, C, H, W) of at least {2 * patch} pixels a side, got {tuple(img.shape)}"
        )
    out = []
    for image in img.detach().double().cpu() * 255.0:
        sigmas = []
        for channel in image:
            windows = channel.unfold(0, patch, 1).unfold(1, patch, 1)
            patches = windows.reshape(-1, patch * patch)
            texture = (windows[..., :, 1:] - windows[..., :, :-1]).square().mean(dim=(-2, -1))
            texture = (texture + (windows[..., 1:, :] - windows[..., :-1, :]).square().mean(dim=(-2, -1))).reshape(-1)
            means = patches.mean(dim=1)
            sigma = _pca_sigma(patches)
            for _ in range(iterations):
                weak = (texture <= 6.4 * sigma**2 + 1.0) & (means >= 2 * sigma) & (means <= 255 - 2 * sigma)
                if int(weak.sum()) < 500:
                    break
                sigma = _pca_sigma(patches[weak])
            sigmas.append(sigma)
        out.append(sum(sigmas) / len(sigmas))
    return torch.tensor(out, dtype=torch.float64)


def _dct_matrix(n: int = 8) -> np.ndarray:
    """The orthonormal DCT-II matrix: JPEG's forward DCT of a block ``b`` is ``D @ b @ D.T``."""
    k = np.arange(n)
    matrix = np.cos(np.pi * (2 * k[None, :] + 1) * k[:, None] / (2 * n)) * math.sqrt(2 / n)
    matrix[0] /= math.sqrt(2)
    return matrix


_DCT = _dct_matrix()


def _block_dct(luma: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``(N, 8, 8)``: the DCT of every whole 8×8 block of the grid that starts at row ``dy``, column ``dx``."""
    h, w = (luma.shape[0] - dy) // 8 * 8, (luma.shape[1] - dx) // 8 * 8
    blocks = luma[dy : dy + h, dx : dx + w].reshape(h // 8, 8, w // 8, 8).transpose(0, 2, 1, 3).reshape(-1, 8, 8)
    return _DCT @ blocks @ _DCT.T


def _luma_table(quality: int) -> np.ndarray:
    """libjpeg's luma quantization table at ``quality`` (jcparam.c: jpeg_quality_scaling, baseline-clamped)."""
    scale = 5000.0 / quality if quality < 50 else 200.0 - 2.0 * quality
    return np.clip(np.floor((_LUMA_BASE * scale + 50.0) / 100.0), 1, 255)


_TABLES = np.stack([_luma_table(q) for q in range(1, 101)])  # (100, 8, 8)


def _step(coefficients: np.ndarray, largest: int = 255) -> int:
    """The largest quantization step ``q`` whose multiples the coefficients sit on (1 when none is found).

    A coefficient quantized to 0 sits on every comb, so only those at least half a step from zero count; they
    must lie within rounding noise of a multiple of ``q``: a median distance of at most 0.5, and at most half the
    ``q/4`` of coefficients that ignore the comb (the median keeps pixels clipped at 0 or 255 from deciding).
    Divisors of the true step pass too, hence the largest; ``q+1`` fails, its multiples drifting one unit apiece.
    """
    found = 1
    magnitude = np.abs(coefficients)
    for q in range(2, largest + 1):
        voters = coefficients[magnitude >= q / 2]
        if len(voters) < 20:
            break
        distance = np.abs(voters - q * np.round(voters / q))
        if float(np.median(distance)) <= min(0.5, q / 8):
            found = q
    return found


def jpeg_quality(img: Tensor) -> Tensor:
    """``(B, 3, H, W)`` in [0, 1] -> ``(B,)``: the estimated libjpeg quality (1–100), ``nan`` where none is found.

    Reads the image as libjpeg's decoder left it (8-bit RGB from YCbCr); the luma (Y of JPEG's YCbCr) is what is
    measured, so chroma subsampling does not matter. A crop of a JPEG is found at any 8×8 grid offset.
    """
    out = []
    for image in (img.detach().double().cpu().clamp(0, 1) * 255.0).round().numpy():
        luma = 0.299 * image[0] + 0.587 * image[1] + 0.114 * image[2] - 128.0
        if min(luma.shape) < 32:
            raise ValueError(f"jpeg_quality needs at least 32×32 pixels, got {luma.shape}")
        # The block grid: quantization leaves many high-frequency coefficients at (almost exactly) zero.
        zeros = {
            (dy, dx): float((np.abs(_block_dct(luma, dy, dx)[:, 4:, 4:]) < 0.35).mean())
            for dy in range(8)
            for dx in range(8)
        }
        coefficients = _block_dct(luma, *max(zeros, key=zeros.__getitem__))
        steps = np.ones((8, 8))
        for u in range(8):
            for v in range(8):
                if u + v:  # the DC term varies too little within an image to show its comb
                    steps[u, v] = _step(coefficients[:, u, v])
        found = steps > 1
        if found.sum() < 3:
            out.append(float("nan"))
            continue
        # The quality whose table best matches the steps found (log ratios, so a step of 2 weighs like one of 60).
        errors = np.abs(np.log(_TABLES[:, found] / steps[found])).sum(axis=1)
        out.append(float(np.argmin(errors) + 1))
    return torch.tensor(out, dtype=torch.float64)


def jpeg_file_quality(path: str | Path) -> float | None:
    """The IJG quality whose luma table matches a JPEG file's own (exact for libjpeg's tables; the nearest scaling
    for other encoders'); ``None`` for files that are not JPEGs. Reads the header only."""
    from PIL import Image

    with Image.open(path) as image:
        tables = getattr(image, "quantization", None) if image.format == "JPEG" else None
    if not tables:
        return None
    luma = np.array(tables[min(tables)], dtype=np.float64).reshape(8, 8)  # Pillow: natural (row-major) order
    errors = np.abs(np.log(_TABLES / luma)).sum(axis=(1, 2))
    return float(np.argmin(errors) + 1)


def residual_grain(image: Tensor, denoised: Tensor, block: int = 16, share: float = 0.2) -> Tensor:
    """``(B, 3, H, W)`` pairs in [0, 1] -> ``(B,)``: how much grain a denoiser took out of the image's flat parts, in
    8-bit units: the RMS of ``image - denoised`` over the flattest ``share`` of ``block``×``block`` blocks (least mean
    absolute neighbour difference in ``denoised``'s luma, the median block), leaving out blocks near black or white.

    Real camera grain is spatially correlated (demosaicing, the camera's own JPEG): :func:`noise_sigma`'s patch-PCA
    sees almost none of it (a median of 0.28 on PolyU's real noise, whose RMS is about 4). A denoiser removes it
    wherever it is, flat areas included; on a clean photo it takes fine texture, which lives where the image is not
    flat. So this is small on clean photos whatever their texture, and close to the grain's σ on a noisy one.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> smooth = torch.linspace(0.2, 0.8, 128).expand(1, 3, 128, 128)
        >>> noisy = smooth + torch.randn(1, 3, 128, 128, generator=g) * 4 / 255
        >>> abs(float(residual_grain(noisy, smooth)) - 4) < 0.5, float(residual_grain(smooth, smooth))
        (True, 0.0)
    """
    if image.shape != denoised.shape or image.ndim != 4 or min(image.shape[-2:]) <= block:
        raise ValueError(
            f"residual_grain needs two (B, 3, H, W) of the same shape and more than {block} pixels a side, got "
            f"{tuple(image.shape)} and {tuple(denoised.shape)}"
        )
    image, denoised = image.detach().double().cpu(), denoised.detach().double().cpu()
    luma = denoised.mean(dim=1, keepdim=True)
    dx = (luma[..., :-1, 1:] - luma[..., :-1, :-1]).abs()  # (H - 1) x (W - 1): whole blocks of it count
    dy = (luma[..., 1:, :-1] - luma[..., :-1, :-1]).abs()
    texture = torch.nn.functional.avg_pool2d(dx + dy, block)
    rows, cols = texture.shape[-2:]
    brightness = torch.nn.functional.avg_pool2d(luma, block)[..., :rows, :cols]
    energy = torch.nn.functional.avg_pool2d((image - denoised).square().mean(dim=1, keepdim=True), block)
    energy = energy[..., :rows, :cols]
    out = []
    for t, b, e in zip(texture.flatten(1), brightness.flatten(1), energy.flatten(1), strict=True):
        inside = (b > 0.06) & (b < 0.94)
        t, e = (t[inside], e[inside]) if int(inside.sum()) > 0 else (t, e)
        flattest = t.argsort()[: max(1, int(share * len(t)))]
        out.append(math.sqrt(float(e[flattest].median())) * 255.0)
    return torch.tensor(out, dtype=torch.float64)
