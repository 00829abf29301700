"""Classic, non-learned restoration baselines, registered as restorers so they sit in the same tables.

What a user picks today on a CPU, each calibrated on real or synthetic pairs (``docs`` and the module
docstrings give the numbers): ``identity``; ``nlm`` and ``bm3d`` (noise, σ estimated); ``dcp`` (haze);
``wiener`` and ``richardson-lucy`` (blur, kernel estimated); ``clahe``, ``gamma``, ``retinex`` (low light);
``median`` and ``guided`` (rain); and ``classic-best``, an oracle that routes each image by its task label.

Example:
    >>> import torch
    >>> from uir.restorers import load_restorer
    >>> load_restorer("dcp").restore(torch.rand(2, 3, 37, 53)).shape
    torch.Size([2, 3, 37, 53])
"""

from __future__ import annotations

from uir.baselines.deblur import (
    KernelEstimate,
    RichardsonLucy,
    Wiener,
    estimate_blur_kernel,
    gaussian_psf,
    richardson_lucy,
    wiener_deconv,
)
from uir.baselines.dehaze import DarkChannelPrior, dark_channel, dark_channel_prior, estimate_airlight
from uir.baselines.denoise import BM3D, NonLocalMeans, estimate_noise_sigma, nlm_denoise, require_bm3d
from uir.baselines.derain import GuidedDerain, SwitchingMedian, guided_derain, median_filter, switching_median
from uir.baselines.dispatch import BEST_FOR_TASK, ClassicBest, Identity
from uir.baselines.filters import box_filter, guided_filter
from uir.baselines.lowlight import AdaptiveGamma, Clahe, Retinex, adaptive_gamma, clahe, lime
from uir.restorer_registry import RESTORERS, register_restorer

__all__ = [
    "BEST_FOR_TASK",
    "BM3D",
    "AdaptiveGamma",
    "Clahe",
    "ClassicBest",
    "DarkChannelPrior",
    "GuidedDerain",
    "Identity",
    "KernelEstimate",
    "NonLocalMeans",
    "Retinex",
    "RichardsonLucy",
    "SwitchingMedian",
    "Wiener",
    "adaptive_gamma",
    "box_filter",
    "clahe",
    "dark_channel",
    "dark_channel_prior",
    "estimate_airlight",
    "estimate_blur_kernel",
    "estimate_noise_sigma",
    "gaussian_psf",
    "guided_derain",
    "guided_filter",
    "lime",
    "median_filter",
    "nlm_denoise",
    "require_bm3d",
    "richardson_lucy",
    "switching_median",
    "wiener_deconv",
]


def _bm3d() -> BM3D:
    require_bm3d()
    return BM3D()


_BASELINES = {
    "identity": Identity,
    "nlm": NonLocalMeans,
    "bm3d": _bm3d,
    "dcp": DarkChannelPrior,
    "wiener": Wiener,
    "richardson-lucy": RichardsonLucy,
    "clahe": Clahe,
    "gamma": AdaptiveGamma,
    "retinex": Retinex,
    "median": SwitchingMedian,
    "guided": GuidedDerain,
    "classic-best": ClassicBest,
}
for _name, _factory in _BASELINES.items():
    if _name not in RESTORERS:  # a re-import (importlib.reload) must not trip the registry's duplicate check
        register_restorer(_name, _factory)
