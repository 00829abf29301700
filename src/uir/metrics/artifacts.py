"""The artifact score: how much energy an image has at the 2- and 4-pixel periods (issue 19).

A network that upsamples with pixel-shuffle or downsamples with 2×2 strides can add a faint fixed pattern that
repeats every 2 or 4 pixels (a grid): each sub-pixel phase gets its own bias. That pattern is exactly the image's
component that is periodic with period 4 in both directions: the mean of the pixels of each of the 16 phases
``(i mod 4, j mod 4)``, less the overall mean. Its energy is the image's spectral energy at the frequencies
``(k·H/4, l·W/4)``, ``(k, l) ≠ (0, 0)``: the 2- and 4-pixel periods and their combinations.

Clean photos have some of it too (demosaicing, JPEG's 8×8 blocks: 0.22/255 rms per phase on CBSD68's median
image), so a restorer is scored against its reference: :func:`artifact_score` is the set's output energy over the
references' (1.0 = no pattern added, 2.0 = twice the reference's).
"""

from __future__ import annotations

from collections.abc import Iterable

from torch import Tensor


def periodic_energy(img: Tensor, period: int = 4) -> Tensor:
    """``(B, C, H, W)`` -> ``(B,)``: the mean over channels of the variance of the ``period²`` phase means.

    The image is cropped to a multiple of ``period``; float64.

    Example:
        >>> import torch
        >>> flat = torch.full((1, 3, 16, 16), 0.5)
        >>> float(periodic_energy(flat))
        0.0
        >>> grid = flat.clone(); grid[..., ::2, ::2] += 0.01
        >>> round(float(periodic_energy(grid)) * 1e6, 2)  # 1/4 of positions +0.01: variance 0.01² · 3/16
        18.75
    """
    b, c, h, w = img.shape
    h, w = h // period * period, w // period * period
    if h == 0 or w == 0:
        raise ValueError(f"periodic_energy needs at least {period}x{period} pixels, got {tuple(img.shape[-2:])}")
    x = img[..., :h, :w].double().reshape(b, c, h // period, period, w // period, period)
    phases = x.mean(dim=(2, 4))  # (B, C, period, period)
    return (phases - phases.mean(dim=(2, 3), keepdim=True)).square().mean(dim=(1, 2, 3))


def artifact_score(outputs: Iterable[float], references: Iterable[float]) -> float:
    """A set's artifact score: the sum of its outputs' :func:`periodic_energy` over its references' (1.0 = none
    added). A ratio of sums, not a mean of per-image ratios, which one near-zero reference would dominate."""
    total_out, total_ref = sum(outputs), sum(references)
    return total_out / total_ref if total_ref > 0 else float("nan")
