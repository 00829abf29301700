"""The named metrics: a plain dict from registry key to ``Metric``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from torch import Tensor

from uir.errors import UirError
from uir.metrics.niqe import niqe
from uir.metrics.piqe import piqe
from uir.metrics.reference import psnr, ssim


@dataclass(frozen=True)
class Metric:
    """A named image-quality metric.

    Attributes:
        name: registry key (kebab-case).
        fn: ``fn(restored, gt)`` when ``needs_reference``, else ``fn(restored)``; images ``(B, 3, H, W)`` in
            [0, 1]; returns ``(B,)`` float64 scores.
        higher_is_better: whether a larger score means a better image.
        needs_reference: whether ``fn`` takes the ground truth.
        description: one line, for tables and ``--help``.
    """

    name: str
    fn: Callable[..., Tensor]
    higher_is_better: bool
    needs_reference: bool
    description: str


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("psnr", psnr, True, True, "PSNR (dB) on RGB in [0, 1], no crop"),
        Metric("ssim", ssim, True, True, "SSIM, Gaussian window 11 / sigma 1.5, RGB channels averaged, no crop"),
        Metric("psnr-y", partial(psnr, y_channel=True), True, True, "PSNR (dB) on the Y of MATLAB rgb2ycbcr"),
        Metric("ssim-y", partial(ssim, y_channel=True), True, True, "SSIM on the Y of MATLAB rgb2ycbcr"),
        Metric("niqe", niqe, False, False, "NIQE (MATLAB-compatible, pristine model), on the 8-bit Y channel"),
        Metric("piqe", piqe, False, False, "PIQE in [0, 100] (MATLAB piqe), on the 8-bit gray image"),
    )
}


def get_metric(name: str) -> Metric:
    """The registered metric called ``name``.

    Raises:
        UirError: unknown name; the message lists the valid ones.
    """
    try:
        return METRICS[name]
    except KeyError:
        raise UirError(f"unknown metric {name!r}; known: {', '.join(sorted(METRICS))}") from None
