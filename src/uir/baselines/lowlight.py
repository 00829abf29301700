"""Low-light baselines: CLAHE on lightness, adaptive gamma, and a LIME-style Retinex illumination map.

References: K. Zuiderveld, "Contrast Limited Adaptive Histogram Equalization", Graphics Gems IV, 1994;
X. Guo, Y. Li, H. Ling, "LIME: Low-Light Image Enhancement via Illumination Map Estimation", TIP 2017 (Eq. 2,
3, the illumination refined here by a guided filter instead of their ADMM solver, as their "speed-up" variant).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from uir.baselines.base import ImageRestorer
from uir.baselines.filters import guided_filter


def clahe(image: np.ndarray, clip_limit: float = 4.0, tiles: int = 4) -> np.ndarray:
    """CLAHE on the L channel of CIELab (colour kept), through OpenCV on 8-bit lightness.

    Args:
        image: ``HxWx3`` float RGB in [0, 1].
        clip_limit: contrast limit per tile (OpenCV's units; 1 is no enhancement).
        tiles: the grid is ``tiles × tiles``.

    Returns:
        ``HxWx3`` float32 in [0, 1].
    """
    lab = cv2.cvtColor(np.asarray(image, dtype=np.float32), cv2.COLOR_RGB2Lab)
    # 8 bits: OpenCV scales the clip limit by the histogram size, so at 16 bits every limit clips alike.
    lightness = np.clip(np.rint(lab[..., 0] / 100.0 * 255.0), 0, 255).astype(np.uint8)
    equalizer = cv2.createCLAHE(clipLimit=clip_limit, tileGridSize=(tiles, tiles))
    lab[..., 0] = equalizer.apply(lightness).astype(np.float32) / 255.0 * 100.0
    return np.clip(cv2.cvtColor(lab, cv2.COLOR_Lab2RGB), 0.0, 1.0)


def adaptive_gamma(image: np.ndarray, target: float = 0.4, max_gamma: float = 1.0) -> np.ndarray:
    """Gamma correction whose exponent maps the mean luminance to ``target``: ``γ = log(target) / log(mean)``.

    Args:
        image: ``HxWx3`` float RGB in [0, 1].
        target: the mean luminance after correction.
        max_gamma: upper bound on ``γ`` (1 only brightens, never darkens).

    Returns:
        ``HxWx3`` float32 ``image^γ``.
    """
    image = np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0)
    mean = float(np.clip((image @ np.array([0.299, 0.587, 0.114], np.float32)).mean(), 1e-3, 0.999))
    gamma = min(max_gamma, math.log(target) / math.log(mean))
    return np.power(image, gamma).astype(np.float32)


def lime(image: np.ndarray, gamma: float = 0.6, radius: int = 60, eps: float = 1e-2, floor: float = 0.03) -> np.ndarray:
    """Retinex-style enhancement: divide by a smooth illumination map raised to ``gamma`` (LIME, Eq. 2–3).

    The initial illumination is the per-pixel maximum over channels; a guided filter (the image's own
    maximum as guide) smooths textures out of it and keeps its structure edges.

    Args:
        image: ``HxWx3`` float RGB in [0, 1].
        gamma: illumination exponent (< 1 enhances less, keeping some of the original contrast).
        radius, eps: guided-filter window radius and regularization.
        floor: lowest illumination, which bounds the gain in black areas.

    Returns:
        ``HxWx3`` float32 in [0, 1].
    """
    image = np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0)
    brightest = image.max(axis=2)
    radius = max(1, min(radius, (min(image.shape[:2]) - 1) // 2))
    illumination = np.clip(guided_filter(brightest, brightest, radius, eps), floor, 1.0)
    return np.clip(image / illumination[..., None] ** gamma, 0.0, 1.0)


class Clahe(ImageRestorer):
    """``clahe``: contrast-limited adaptive histogram equalization of CIELab lightness (see ``clahe``)."""

    name = "clahe"

    def __init__(self, *, clip_limit: float = 4.0, tiles: int = 4) -> None:
        self.clip_limit, self.tiles = clip_limit, tiles

    def restore_image(self, image: np.ndarray) -> np.ndarray:
        return clahe(image, self.clip_limit, self.tiles)


class AdaptiveGamma(ImageRestorer):
    """``gamma``: gamma correction from the mean luminance (see ``adaptive_gamma``)."""

    name = "gamma"

    def __init__(self, *, target: float = 0.4, max_gamma: float = 1.0) -> None:
        self.target, self.max_gamma = target, max_gamma

    def restore_image(self, image: np.ndarray) -> np.ndarray:
        return adaptive_gamma(image, self.target, self.max_gamma)


class Retinex(ImageRestorer):
    """``retinex``: LIME-style illumination-map enhancement (see ``lime``)."""

    name = "retinex"

    def __init__(self, *, gamma: float = 0.6, radius: int = 60, eps: float = 1e-2, floor: float = 0.03) -> None:
        self.gamma, self.radius, self.eps, self.floor = gamma, radius, eps, floor

    def restore_image(self, image: np.ndarray) -> np.ndarray:
        return lime(image, self.gamma, self.radius, self.eps, self.floor)
