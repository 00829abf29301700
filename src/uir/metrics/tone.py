"""Tone figures: did a restorer keep the input's exposure and colour balance?

Both compare a restored image with what went in (not with the reference), image by image:

- ``luminance_ratio``: mean Rec. 601 luma of the output over the input's (1.0 = exposure kept; 1.5 = 50 %
  brighter).
- ``colour_shift``: how far one channel's gain strays from the overall gain, ``max_c |(m_c(out) / m_c(in)) /
  (m_Y(out) / m_Y(in)) - 1|`` with ``m`` the channel means (0.0 = colour balance kept; 0.05 = one channel 5 %
  off the others). A uniform brightening shifts no colour; a warmer or bluer cast does.

Example:
    >>> import torch
    >>> x = torch.full((1, 3, 8, 8), 0.4)
    >>> round(float(luminance_ratio(x * 1.5, x)[0]), 6), round(float(colour_shift(x * 1.5, x)[0]), 6)
    (1.5, 0.0)
"""

from __future__ import annotations

from torch import Tensor

from uir.degradations.functional import luma

_EPS = 1e-6


def mean_luminance(x: Tensor) -> Tensor:
    """``(B,)`` mean Rec. 601 luma of ``(B, 3, H, W)`` RGB in [0, 1], float64."""
    return luma(x.double().mean(dim=(2, 3), keepdim=True)).flatten()


def luminance_ratio(restored: Tensor, source: Tensor) -> Tensor:
    """``(B,)`` mean luminance of ``restored`` over ``source``'s (float64)."""
    return mean_luminance(restored) / mean_luminance(source).clamp_min(_EPS)


def colour_shift(restored: Tensor, source: Tensor) -> Tensor:
    """``(B,)`` largest departure of a channel's gain from the luminance gain (float64; 0 = balance kept)."""
    gains = restored.double().mean(dim=(2, 3)) / source.double().mean(dim=(2, 3)).clamp_min(_EPS)
    return (gains / luminance_ratio(restored, source)[:, None].clamp_min(_EPS) - 1).abs().amax(dim=1)
