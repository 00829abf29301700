"""Denoising baselines: OpenCV non-local means driven by an estimated noise level, and BM3D when installed.

Neither is told σ: both estimate it from the noisy image (``estimate_noise_sigma``), as a user's tool must.
"""

from __future__ import annotations

import importlib.util
import logging
import math

import cv2
import numpy as np

from uir.baselines.base import ImageRestorer, to_uint8
from uir.errors import UirError

log = logging.getLogger(__name__)

# Immerkær's mask: the difference of two Laplacians, blind to planes and (nearly) to edges.
_IMMERKAER = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)


def estimate_noise_sigma(image: np.ndarray, method: str = "mad") -> float:
    """Estimate the standard deviation of additive white noise, in [0, 1] units.

    ``"mad"`` (Donoho & Johnstone 1994): the median absolute finest-scale diagonal Haar coefficient over
    0.6745, per channel, averaged — robust to edges. ``"immerkaer"`` (Immerkær 1996, fast noise variance
    estimation): the mean absolute response to a difference-of-Laplacians mask times ``sqrt(π/2)/6``.
    Texture inflates both (MAD less); clipping at 0 and 1 deflates both.

    Args:
        image: ``HxW`` or ``HxWxC`` float in [0, 1], at least 4×4.
        method: ``"mad"`` or ``"immerkaer"``.

    Returns:
        σ in [0, 1] units (multiply by 255 for 8-bit levels).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> noisy = 0.5 + rng.normal(0, 25 / 255, (128, 128, 3)).astype(np.float32)
        >>> 23 < estimate_noise_sigma(noisy) * 255 < 27
        True
    """
    x = np.asarray(image, dtype=np.float32)
    x = x[..., None] if x.ndim == 2 else x
    if min(x.shape[:2]) < 4:
        raise UirError(f"noise estimation needs an image of at least 4×4 pixels, got {x.shape[:2]}")
    if method == "mad":
        h, w = (x.shape[0] // 2) * 2, (x.shape[1] // 2) * 2
        x = x[:h, :w]
        diag = (x[0::2, 0::2] - x[0::2, 1::2] - x[1::2, 0::2] + x[1::2, 1::2]) / 2.0
        return float(np.mean(np.median(np.abs(diag), axis=(0, 1)) / 0.6745))
    if method == "immerkaer":
        sigmas = []
        for c in range(x.shape[2]):
            response = cv2.filter2D(x[..., c], -1, _IMMERKAER)[1:-1, 1:-1]
            sigmas.append(math.sqrt(math.pi / 2) * float(np.mean(np.abs(response))) / 6.0)
        return float(np.mean(sigmas))
    raise UirError(f"unknown noise estimator {method!r}; use 'mad' or 'immerkaer'")


def nlm_strength(sigma: float, slope: float = 1.0, offset: float = 0.0) -> float:
    """The filter strength ``h`` (8-bit levels) non-local means uses for an estimated σ (8-bit levels)."""
    return max(1.0, slope * sigma + offset)


def nlm_denoise(image: np.ndarray, h: float, template: int = 3, search: int = 11) -> np.ndarray:
    """Non-local means (Buades et al. 2005) on RGB jointly, through OpenCV's ``fastNlMeansDenoising``.

    The patch distance sums over the three channels, as in Buades et al.'s colour version. OpenCV's
    ``fastNlMeansDenoisingColored`` (CIELab, separate strengths) measured 2 dB worse on CBSD68 σ25 at its
    best settings, and smaller patches than the usual 7×7 measured better at every σ (15, 25, 50).

    Args:
        image: ``HxWx3`` float RGB in [0, 1] (quantized to 8 bits, as OpenCV requires).
        h: filter strength in 8-bit levels (larger removes more noise and more detail).
        template: patch side (odd).
        search: search window side (odd).

    Returns:
        ``HxWx3`` float32 in [0, 1].
    """
    out = cv2.fastNlMeansDenoising(to_uint8(image), None, float(h), template, search)
    return out.astype(np.float32) / 255.0


class NonLocalMeans(ImageRestorer):
    """``nlm``: non-local means with ``h`` set from the estimated noise σ: ``h = slope·σ̂ + offset``.

    Calibrated on CBSD68 (σ 15, 25, 50): the best ``h`` was 1.02–1.04 σ̂ at every level (σ̂ from
    ``estimate_noise_sigma``, which reads 15.9, 24.5 and 44.3 there: clipping hides part of σ50).

    Args:
        slope, offset: the map from estimated σ (8-bit levels) to ``h``.
        template, search: patch and search window sides.
        estimator: ``estimate_noise_sigma`` method.
    """

    name = "nlm"

    def __init__(
        self, *, slope: float = 1.0, offset: float = 0.0, template: int = 3, search: int = 11, estimator: str = "mad"
    ) -> None:
        self.slope, self.offset = slope, offset
        self.template, self.search, self.estimator = template, search, estimator

    def restore_image(self, image: np.ndarray) -> np.ndarray:
        sigma = estimate_noise_sigma(image, self.estimator) * 255.0
        h = nlm_strength(sigma, self.slope, self.offset)
        log.debug("nlm: estimated sigma %.2f, h %.2f", sigma, h)
        return nlm_denoise(image, h, self.template, self.search)


def require_bm3d() -> None:
    """Raise a one-line ``UirError`` unless the optional ``bm3d`` package can be imported."""
    if importlib.util.find_spec("bm3d") is None:
        raise UirError("the bm3d baseline needs the optional package: pip install bm3d")


class BM3D(ImageRestorer):
    """``bm3d``: CBM3D (Dabov et al. 2007) from the optional PyPI package ``bm3d``, σ estimated per image.

    Slow: about 100-160 s per megapixel (one thread, so that the same image always gives the same result).
    Needs ``pip install bm3d`` (brings SciPy, PyWavelets, bm4d).

    Args:
        scale: multiplies the estimated σ (calibrated for the estimator's bias).
        estimator: ``estimate_noise_sigma`` method.
    """

    name = "bm3d"

    def __init__(self, *, scale: float = 1.0, estimator: str = "mad") -> None:
        require_bm3d()
        self.scale, self.estimator = scale, estimator

    def restore_image(self, image: np.ndarray) -> np.ndarray:
        import bm3d

        sigma = estimate_noise_sigma(image, self.estimator) * self.scale
        profile = bm3d.BM3DProfile()
        profile.num_threads = 1  # bm4d's threads add floats in a varying order: the same image gave other results
        return np.asarray(bm3d.bm3d_rgb(image, max(sigma, 1e-4), profile=profile), dtype=np.float32)
