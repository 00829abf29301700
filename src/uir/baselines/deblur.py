"""Deblurring baselines: Wiener and Richardson–Lucy deconvolution with a kernel estimated from the blurry image.

The kernel estimator (``estimate_blur_kernel``) is blind and deliberately simple: it fits the image's
Welch-averaged power spectrum with ``c·|f|^−α·|K(f)|²``, a natural-image spectrum times a candidate kernel's
transfer function, over a grid of anisotropic Gaussians (defocus, lens and most shake blur, roughly) and
straight motion lines (length, angle), and keeps the best fit. It recovers the blur's width, elongation
and direction, not the fine shape of a curved shake trajectory; deconvolving with it sharpens but cannot
undo a looping path, and it mistakes strongly oriented textures for blur (hence a conservative ``shrink``).
Blur happens in linear light, so the restorers deconvolve linear light.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from uir.baselines.base import ImageRestorer, gray, linear_to_srgb, srgb_to_linear
from uir.errors import UirError

_TILE = 128  # Welch tile: frequency resolution 1/128 cycles per pixel resolves lines up to ~40 px


@dataclass(frozen=True)
class KernelEstimate:
    """A blur kernel fitted to an image's power spectrum.

    Attributes:
        kind: ``"none"``, ``"gaussian"`` or ``"motion"``.
        params: ``gaussian``: ``(sigma_along, sigma_across, angle)``; ``motion``: ``(length, angle, sigma)``;
            lengths in pixels, angles in degrees counterclockwise from the x axis.
        score: mean squared residual of the log-spectrum fit (lower fits better).
        kernel: ``(k, k)`` float64, sums to one, odd ``k``.
    """

    kind: str
    params: tuple[float, ...]
    score: float
    kernel: np.ndarray = field(repr=False)


def _psf_to_otf(kernel: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The transfer function of a centred kernel on an FFT grid of ``shape`` (the kernel centre at 0)."""
    kh, kw = kernel.shape
    padded = np.zeros(shape, dtype=np.float64)
    padded[:kh, :kw] = kernel
    padded = np.roll(padded, (-(kh // 2), -(kw // 2)), axis=(0, 1))
    return np.fft.rfft2(padded)


def _pad(image: np.ndarray, margin: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Mirror-pad by ``margin`` then to a fast FFT size, so the periodic FFT sees no hard seam."""
    h, w = image.shape[:2]
    fh = cv2.getOptimalDFTSize(h + 2 * margin)
    fw = cv2.getOptimalDFTSize(w + 2 * margin)
    top, left = (fh - h) // 2, (fw - w) // 2
    extra = ((top, fh - h - top), (left, fw - w - left)) + ((0, 0),) * (image.ndim - 2)
    return np.pad(image, extra, mode="symmetric"), (top, left)


def _per_channel(image: np.ndarray) -> tuple[np.ndarray, bool]:
    image = np.asarray(image, dtype=np.float64)
    if image.ndim == 2:
        return image[..., None], True
    if image.ndim != 3:
        raise UirError(f"deconvolution takes an HxW or HxWxC image, got shape {image.shape}")
    return image, False


def wiener_deconv(image: np.ndarray, kernel: np.ndarray, nsr: float = 1e-3, prior: str = "gradient") -> np.ndarray:
    """Wiener deconvolution ``X = K* B / (|K|² + nsr·R)`` of every channel.

    ``prior="gradient"`` takes the image spectrum as ``∝ 1/|f|²`` (``R = |∇(f)|²``, the discrete gradient's
    transfer function): Tikhonov regularization of the gradients, which rings less than ``prior="flat"``
    (``R = 1``, the textbook constant noise-to-signal ratio).

    Args:
        image: ``HxW`` or ``HxWxC`` float, the blurred image ``B``.
        kernel: ``(k, k)`` point-spread function, centred, summing to one.
        nsr: noise-to-signal ratio (regularization weight).
        prior: ``"gradient"`` or ``"flat"``.

    Returns:
        Float32, shaped like ``image`` (not clipped).

    Example:
        >>> wiener_deconv(np.full((37, 53), 0.5), np.full((3, 3), 1 / 9)).shape
        (37, 53)
    """
    x, was_gray = _per_channel(image)
    padded, (top, left) = _pad(x, 2 * max(kernel.shape))
    shape = padded.shape[:2]
    otf = _psf_to_otf(np.asarray(kernel, dtype=np.float64), shape)
    if prior == "gradient":
        reg = np.abs(_psf_to_otf(np.array([[0, 0, 0], [0, -1, 1], [0, 0, 0]], float), shape)) ** 2
        reg += np.abs(_psf_to_otf(np.array([[0, 0, 0], [0, -1, 0], [0, 1, 0]], float), shape)) ** 2
    elif prior == "flat":
        reg = np.ones_like(otf.real)
    else:
        raise UirError(f"unknown Wiener prior {prior!r}; use 'gradient' or 'flat'")
    gain = np.conj(otf) / (np.abs(otf) ** 2 + nsr * reg)
    spectrum = np.fft.rfft2(padded, axes=(0, 1)) * gain[..., None]
    out = np.fft.irfft2(spectrum, s=shape, axes=(0, 1))[top : top + x.shape[0], left : left + x.shape[1]]
    out = out.astype(np.float32)
    return out[..., 0] if was_gray else out


def richardson_lucy(image: np.ndarray, kernel: np.ndarray, iterations: int = 30, floor: float = 1e-6) -> np.ndarray:
    """Richardson–Lucy deconvolution (Richardson 1972, Lucy 1974): ``x ← x · (K^T ∗ (b / (K ∗ x)))``.

    Maximum-likelihood under Poisson noise; the iteration count is the regularization (more iterations,
    sharper and noisier).

    Args:
        image: ``HxW`` or ``HxWxC`` non-negative float, the blurred image.
        kernel: ``(k, k)`` point-spread function, centred, summing to one.
        iterations: number of multiplicative updates.
        floor: smallest denominator, keeps the ratio finite in black areas.

    Returns:
        Float32, shaped like ``image``, non-negative.
    """
    x, was_gray = _per_channel(image)
    padded, (top, left) = _pad(np.maximum(x, 0.0), 2 * max(kernel.shape))
    shape = padded.shape[:2]
    otf = _psf_to_otf(np.asarray(kernel, dtype=np.float64), shape)[..., None]

    def conv(v: np.ndarray, transfer: np.ndarray) -> np.ndarray:
        return np.fft.irfft2(np.fft.rfft2(v, axes=(0, 1)) * transfer, s=shape, axes=(0, 1))

    estimate = padded.copy()
    for _ in range(iterations):
        ratio = padded / np.maximum(conv(estimate, otf), floor)
        estimate = estimate * np.maximum(conv(ratio, np.conj(otf)), 0.0)
    out = estimate[top : top + x.shape[0], left : left + x.shape[1]].astype(np.float32)
    return out[..., 0] if was_gray else out


def _log_spectrum(image: np.ndarray, tile: int = _TILE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Welch estimate of the grey image's log power spectrum on a half-plane frequency band.

    Returns:
        ``(log_power, fx, fy)``, each ``(n,)``: the band's frequencies in cycles per pixel, ``fy`` pointing up.
    """
    g = gray(image).astype(np.float64)
    h, w = g.shape
    if min(h, w) < tile:  # small images: one tile, padded by mirroring
        g = np.pad(g, ((0, max(0, tile - h)), (0, max(0, tile - w))), mode="symmetric")
        h, w = g.shape
    window = np.outer(np.hanning(tile), np.hanning(tile))
    step = tile // 2
    power = np.zeros((tile, tile))
    count = 0
    for y in range(0, h - tile + 1, step):
        for x in range(0, w - tile + 1, step):
            patch = g[y : y + tile, x : x + tile]
            power += np.abs(np.fft.fft2((patch - patch.mean()) * window)) ** 2
            count += 1
    freq = np.fft.fftfreq(tile)
    fy, fx = np.meshgrid(-freq, freq, indexing="ij")  # rows point down; -f makes fy point up
    radius = np.hypot(fx, fy)
    band = (radius > 2.0 / tile) & (radius < 0.45) & ((fy > 0) | ((fy == 0) & (fx > 0)))
    return np.log(power[band] / count + 1e-20), fx[band], fy[band]


def _gaussian_grid(angle_step: float) -> np.ndarray:
    """Candidate ``(sigma_along, sigma_across, angle)`` rows, ``sigma_across <= sigma_along``."""
    rows = [
        (a, c, angle)
        for a in np.arange(0.5, 8.01, 0.5)
        for c in (0.5, 1.0, 1.5, 2.0, 3.0, 4.0)
        if c <= a
        for angle in np.arange(0.0, 180.0, angle_step)
    ]
    return np.array(rows, dtype=np.float64)


def estimate_blur_kernel(
    image: np.ndarray, max_frequency: float = 0.12, angle_step: float = 10.0, tile: int = _TILE
) -> KernelEstimate:
    """Blindly fit an anisotropic Gaussian blur kernel to an image's power spectrum.

    Model: ``log P(f) = a + b·log|f| + log|K(f)|²`` with ``|K(f)|² = exp(−4π²(σa²·u² + σc²·v²))`` (``u``, ``v``
    the frequency along and across the blur direction), least squares over a grid of ``(σa, σc, angle)``
    with ``a``, ``b`` fitted per candidate, on frequencies below ``max_frequency`` where the blur's main lobe,
    not the fine structure of its path, shapes the spectrum. Limits: a shake path's loops and a defocus
    disk's rings are not modelled; strongly oriented textures (stripes, grass) read as blur.

    Args:
        image: ``HxWx3`` or ``HxW`` float in [0, 1] (linear light preferred: blur is optical).
        max_frequency: highest frequency fitted, cycles per pixel.
        angle_step: angular grid step in degrees.
        tile: Welch tile side.

    Returns:
        The best ``KernelEstimate`` (``kind="gaussian"``).

    Example:
        >>> estimate_blur_kernel(np.random.default_rng(0).random((64, 64))).kind
        'gaussian'
    """
    log_power, fx, fy = _log_spectrum(image, tile)
    keep = np.hypot(fx, fy) < max_frequency
    log_power, fx, fy = log_power[keep], fx[keep], fy[keep]
    grid = _gaussian_grid(angle_step)
    t = np.radians(grid[:, 2:3])
    along = fx[None] * np.cos(t) + fy[None] * np.sin(t)
    across = -fx[None] * np.sin(t) + fy[None] * np.cos(t)
    log_transfer = -((2 * math.pi) ** 2) * (grid[:, :1] ** 2 * along**2 + grid[:, 1:2] ** 2 * across**2)
    scores = _fit_scores(log_power, log_transfer, np.log(np.hypot(fx, fy)))
    best = int(np.argmin(scores))
    a, c, angle = (float(v) for v in grid[best])
    return KernelEstimate("gaussian", (a, c, angle), float(scores[best]), gaussian_psf(a, c, angle))


def gaussian_psf(sigma_along: float, sigma_across: float, angle: float) -> np.ndarray:
    """An anisotropic Gaussian point-spread function, ``(k, k)`` float64 summing to one, ``k = 2⌈3σa⌉ + 1``.

    Args:
        sigma_along, sigma_across: standard deviations along and across ``angle``, in pixels.
        angle: degrees counterclockwise from the x axis.
    """
    half = max(1, math.ceil(3 * sigma_along))
    r = np.arange(-half, half + 1, dtype=np.float64)
    yy, xx = np.meshgrid(-r, r, indexing="ij")  # y up, so angles turn counterclockwise
    t = math.radians(angle)
    u = xx * math.cos(t) + yy * math.sin(t)
    v = -xx * math.sin(t) + yy * math.cos(t)
    k = np.exp(-0.5 * ((u / max(sigma_along, 1e-6)) ** 2 + (v / max(sigma_across, 1e-6)) ** 2))
    return k / k.sum()


def _fit_scores(log_power: np.ndarray, log_transfer: np.ndarray, log_radius: np.ndarray) -> np.ndarray:
    """Mean squared residual of ``log P − log|K|² ≈ a + b·log|f|`` for each row of ``log_transfer``."""
    design = np.stack([np.ones_like(log_radius), log_radius], axis=1)
    residual = log_power[None] - log_transfer
    coef = residual @ np.linalg.pinv(design).T
    return np.mean((residual - coef @ design.T) ** 2, axis=1)


class _BlindDeconvolution(ImageRestorer):
    """Estimate a kernel on linear light, shrink it (under-deconvolving is safer than over-), deconvolve."""

    shrink: float = 1.0

    def deconvolve(self, linear: np.ndarray, kernel: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def restore_image(self, image: np.ndarray) -> np.ndarray:
        linear = srgb_to_linear(image)
        a, c, angle = estimate_blur_kernel(linear).params
        kernel = gaussian_psf(max(a * self.shrink, 0.3), max(c * self.shrink, 0.3), angle)
        return linear_to_srgb(self.deconvolve(linear, kernel))


class Wiener(_BlindDeconvolution):
    """``wiener``: Wiener deconvolution (gradient prior) with a blindly estimated Gaussian kernel.

    Args:
        nsr: noise-to-signal ratio.
        shrink: the estimated widths are multiplied by this before deconvolving.
    """

    name = "wiener"

    def __init__(self, *, nsr: float = 0.03, shrink: float = 0.4) -> None:
        self.nsr, self.shrink = nsr, shrink

    def deconvolve(self, linear: np.ndarray, kernel: np.ndarray) -> np.ndarray:
        return wiener_deconv(linear, kernel, self.nsr)


class RichardsonLucy(_BlindDeconvolution):
    """``richardson-lucy``: Richardson–Lucy deconvolution with a blindly estimated Gaussian kernel.

    Args:
        iterations: multiplicative updates (the regularization).
        shrink: the estimated widths are multiplied by this before deconvolving.
    """

    name = "richardson-lucy"

    def __init__(self, *, iterations: int = 5, shrink: float = 0.8) -> None:
        self.iterations, self.shrink = iterations, shrink

    def deconvolve(self, linear: np.ndarray, kernel: np.ndarray) -> np.ndarray:
        return richardson_lucy(linear, kernel, self.iterations)
