"""Edge-aware filters the baselines share: the box filter and He et al.'s guided filter.

Reference: K. He, J. Sun, X. Tang, "Guided Image Filtering", TPAMI 2013 (Algorithm 1 and its colour-guide form).
"""

from __future__ import annotations

import cv2
import numpy as np


def box_filter(x: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a ``(2r+1)²`` window (reflected borders), float32, any number of channels.

    Args:
        x: ``HxW`` or ``HxWxC`` float array.
        radius: window radius in pixels.
    """
    x = np.asarray(x, dtype=np.float32)
    if radius <= 0:
        return x.copy()
    size = 2 * int(radius) + 1
    return cv2.boxFilter(x, -1, (size, size), normalize=True, borderType=cv2.BORDER_REFLECT)


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int = 8, eps: float = 1e-3) -> np.ndarray:
    """Guided filter: the output is locally a linear function of ``guide`` that best fits ``src``.

    A grey guide uses He et al.'s Algorithm 1; a colour guide the 3×3 covariance form (their Eq. 19–21),
    which keeps edges that differ only in hue.

    Args:
        guide: ``HxW`` grey or ``HxWx3`` colour guide in [0, 1].
        src: ``HxW`` or ``HxWxC`` image to filter (each channel filtered with the same guide).
        radius: window radius ``r`` in pixels.
        eps: regularization ``ε`` (edges with local variance well below ``ε`` are smoothed away).

    Returns:
        Float32, shaped like ``src``.

    Example:
        >>> g = np.random.default_rng(0).random((37, 53)).astype(np.float32)
        >>> guided_filter(g, g, 4, 1e-2).shape
        (37, 53)
    """
    guide = np.asarray(guide, dtype=np.float32)
    src = np.asarray(src, dtype=np.float32)
    if src.ndim == 3:
        return np.stack([guided_filter(guide, src[..., c], radius, eps) for c in range(src.shape[2])], axis=-1)
    if guide.ndim == 2:
        return _guided_gray(guide, src, radius, eps)
    return _guided_color(guide, src, radius, eps)


def _guided_gray(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    mean_i, mean_p = box_filter(guide, radius), box_filter(src, radius)
    cov_ip = box_filter(guide * src, radius) - mean_i * mean_p
    var_i = box_filter(guide * guide, radius) - mean_i * mean_i
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return box_filter(a, radius) * guide + box_filter(b, radius)


def _guided_color(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    mean_i = box_filter(guide, radius)  # HxWx3
    mean_p = box_filter(src, radius)
    cov_ip = box_filter(guide * src[..., None], radius) - mean_i * mean_p[..., None]
    # Σ_k + εU per pixel (HxWx3x3), solved for a_k: one batched 3×3 solve.
    outer = guide[..., :, None] * guide[..., None, :]
    sigma = box_filter(outer.reshape(*guide.shape[:2], 9), radius).reshape(*guide.shape[:2], 3, 3)
    sigma = sigma - mean_i[..., :, None] * mean_i[..., None, :] + eps * np.eye(3, dtype=np.float32)
    a = np.linalg.solve(sigma, cov_ip[..., None])[..., 0]
    b = mean_p - np.einsum("hwc,hwc->hw", a, mean_i)
    return np.einsum("hwc,hwc->hw", box_filter(a, radius), guide) + box_filter(b, radius)
