"""The artifact score: how much energy an image has at the 2- and 4-pixel periods (issue 19).

A network that upsamples with pixel-shuffle or downsamples with 2×2 strides can add a faint fixed pattern that
repeats every 2 or 4 pixels (a grid): each sub-pixel phase gets its own bias. That pattern is the image's component
that is periodic with period 4 in both directions: the mean of the pixels of each of the 16 phases
``(i mod 4, j mod 4)``, less the overall mean, taken here of the image's high-pass part (smooth content leaks into
phase means). Its energy is the spectral energy at the frequencies ``(k·H/4, l·W/4)``, ``(k, l) ≠ (0, 0)``: the
2- and 4-pixel periods and their combinations.

Clean photos have some of it too (demosaicing, JPEG's 8×8 blocks), so a restorer is scored against its reference:
:func:`artifact_score` is the set's output energy over the references' (1.0 = no pattern added, 2.0 = twice the
reference's). It is an energy ratio: an output with 1.2× the reference's fine contrast scores 1.44 without any
pattern of its own.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch.nn.functional as F
from torch import Tensor


def periodic_energy(img: Tensor, period: int = 4) -> Tensor:
    """``(B, C, H, W)`` -> ``(B,)``: the mean over channels of the variance of the ``period²`` phase means of the
    image's high-pass part, float64.

    The high-pass part is the image less its ``period × period`` moving average, which removes smooth content (a
    brightness ramp would otherwise leak into the phase means) and keeps a period-``period`` pattern whole: the
    average of any ``period`` consecutive samples of such a pattern is its mean.

    Example:
        >>> import torch
        >>> flat = torch.full((1, 3, 16, 16), 0.5)
        >>> float(periodic_energy(flat))
        0.0
        >>> grid = flat.clone(); grid[..., ::2, ::2] += 0.01
        >>> round(float(periodic_energy(grid)) * 1e6, 2)  # 1/4 of positions +0.01: variance 0.01² · 3/16
        18.75
        >>> ramp = torch.linspace(0, 1, 64).expand(1, 3, 64, 64)
        >>> float(periodic_energy(ramp)) < 1e-12
        True
    """
    b, c, h, w = img.shape
    if h < 2 * period or w < 2 * period:
        raise ValueError(f"periodic_energy needs at least {2 * period}x{2 * period} pixels, got {(h, w)}")
    x = img.double()
    smooth = F.avg_pool2d(x, period, stride=1)
    high = x[..., : smooth.shape[-2], : smooth.shape[-1]] - smooth
    h, w = high.shape[-2] // period * period, high.shape[-1] // period * period
    high = high[..., :h, :w].reshape(b, c, h // period, period, w // period, period)
    phases = high.mean(dim=(2, 4))  # (B, C, period, period)
    return (phases - phases.mean(dim=(2, 3), keepdim=True)).square().mean(dim=(1, 2, 3))


def artifact_score(outputs: Iterable[float], references: Iterable[float]) -> float:
    """A set's artifact score: the sum of its outputs' :func:`periodic_energy` over its references' (1.0 = none
    added). A ratio of sums, not a mean of per-image ratios, which one near-zero reference would dominate."""
    total_out, total_ref = sum(outputs), sum(references)
    return total_out / total_ref if total_ref > 0 else float("nan")
