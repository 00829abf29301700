"""Deraining baselines: a rain-selective median filter and a guided filter.

Rain streaks are thin, bright, semi-transparent and add to the scene. A plain median filter removes them and
the scene's fine detail alike (5×5: −2.5 dB on Rain100L); ``median`` therefore only replaces pixels brighter
than their local median (a switching median filter, as for impulse noise). ``guided`` is a guided filter with
the image as its own colour guide: an edge-preserving smoother whose ``ε`` sits above the faint streaks'
local variance and below the scene's strong edges.
"""

from __future__ import annotations

import cv2
import numpy as np

from uir.baselines.base import ImageRestorer, gray, to_uint8
from uir.baselines.filters import guided_filter


def median_filter(image: np.ndarray, size: int = 5) -> np.ndarray:
    """Per-channel median over a ``size × size`` window (OpenCV, 8-bit), float32 in [0, 1]."""
    return cv2.medianBlur(to_uint8(image), size).astype(np.float32) / 255.0


def switching_median(image: np.ndarray, size: int = 5, threshold: float = 0.0) -> np.ndarray:
    """Replace pixels brighter than their local median by more than ``threshold`` (in grey) with the median.

    Args:
        image: ``HxWx3`` float RGB in [0, 1].
        size: median window side (odd; wider than the streaks).
        threshold: how much brighter than its median a pixel must be to count as rain (0: any brighter pixel).

    Returns:
        ``HxWx3`` float32.
    """
    image = np.asarray(image, dtype=np.float32)
    median = median_filter(image, size)
    rain = (gray(image) - gray(median)) > threshold
    return np.where(rain[..., None], median, image).astype(np.float32)


def guided_derain(image: np.ndarray, radius: int = 6, eps: float = 5e-3) -> np.ndarray:
    """Guided filter of the image with itself as colour guide (He et al. 2013, edge-preserving smoothing).

    Args:
        image: ``HxWx3`` float RGB in [0, 1].
        radius, eps: window radius and regularization; calibrated on Rain100L.

    Returns:
        ``HxWx3`` float32.
    """
    image = np.asarray(image, dtype=np.float32)
    radius = max(1, min(radius, (min(image.shape[:2]) - 1) // 2))
    return guided_filter(image, image, radius, eps)


class SwitchingMedian(ImageRestorer):
    """``median``: rain-selective median filter (see ``switching_median``)."""

    name = "median"

    def __init__(self, *, size: int = 5, threshold: float = 0.0) -> None:
        self.size, self.threshold = size, threshold

    def restore_image(self, image: np.ndarray) -> np.ndarray:
        return switching_median(image, self.size, self.threshold)


class GuidedDerain(ImageRestorer):
    """``guided``: self-guided colour guided filter (see ``guided_derain``)."""

    name = "guided"

    def __init__(self, *, radius: int = 6, eps: float = 5e-3) -> None:
        self.radius, self.eps = radius, eps

    def restore_image(self, image: np.ndarray) -> np.ndarray:
        return guided_derain(image, self.radius, self.eps)
