"""Light: under-exposure in linear light with the sensor noise and quantization a dark capture brings.

Pure function: ``darken``. Op: ``low-light``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from uir.degradations.base import Op, ParamRange, lerp, register_op, uniform
from uir.degradations.functional import linear_to_srgb, srgb_to_linear


def darken(
    x: Tensor,
    ev: float,
    gamma: float,
    shot: float,
    read: float,
    generator: torch.Generator,
    cast: tuple[float, float, float] = (1.0, 1.0, 1.0),
    levels: int = 255,
) -> Tensor:
    """Simulate a dark capture: less light, darker mid-tones, a colour shift, Poisson–Gaussian noise.

    In linear light: ``y = cast · lin^gamma · 2^−ev``, then ``y + N(0, shot·y + read²)`` (the Gaussian
    approximation of photon shot noise plus read noise), back to sRGB and rounded to ``levels`` steps, which
    leaves the few codes of an 8-bit dark image.

    Args:
        x: ``(B, 3, H, W)`` sRGB in [0, 1].
        ev: exposure reduction in stops (0 = unchanged).
        gamma: extra mid-tone darkening exponent on linear light (1 = none).
        shot: shot-noise gain (variance per unit of linear signal).
        read: read-noise standard deviation, linear units.
        generator: on ``x.device``.
        cast: per-channel RGB gains of the colour shift.
        levels: quantization steps of the output (255 for 8 bits).

    Returns:
        ``(B, 3, H, W)`` sRGB in [0, 1]; ``x`` unchanged (a copy) when every argument is neutral.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> darken(torch.full((1, 3, 8, 8), 0.5), 4.0, 1.3, 1e-4, 5e-4, g).mean() < 0.1
        tensor(True)
    """
    if ev == 0 and gamma == 1 and shot <= 0 and read <= 0 and tuple(cast) == (1.0, 1.0, 1.0):
        return x.clone()
    gains = x.new_tensor(cast).view(1, 3, 1, 1)
    y = srgb_to_linear(x) ** gamma * (2.0**-ev) * gains
    if shot > 0 or read > 0:
        std = (shot * y + read**2).sqrt()
        y = y + std * torch.randn(y.shape, generator=generator, device=x.device, dtype=x.dtype)
    return torch.round(linear_to_srgb(y) * levels) / levels


@dataclass(frozen=True)
class LowLightParams:
    """An under-exposed capture.

    Attributes:
        ev: exposure reduction in stops.
        gamma: extra mid-tone darkening exponent on linear light.
        shot: shot-noise gain (variance per unit of linear signal).
        read: read-noise standard deviation, linear units.
        cast: RGB gains of the colour shift.
    """

    ev: float
    gamma: float
    shot: float
    read: float
    cast: tuple[float, float, float]


def sample_low_light(severity: float, g: torch.Generator) -> LowLightParams:
    # Nuisances scale the severity's slope instead of adding to it, so a larger s is always darker,
    # noisier and more tinted for the same seed.
    ev_max = uniform(g, 4.5, 5.5)
    noise_scale = uniform(g, 0.7, 1.4)
    tint = [uniform(g, -0.2, 0.2) for _ in range(3)]
    return LowLightParams(
        ev=lerp(0.0, ev_max, severity),
        gamma=lerp(1.0, 1.4, severity),
        shot=lerp(0.0, 2e-4, severity) * noise_scale,
        read=lerp(0.0, 1e-3, severity) * noise_scale,
        cast=tuple(math.exp(severity * t) for t in tint),
    )


def apply_low_light(x: Tensor, p: LowLightParams, g: torch.Generator) -> Tensor:
    return darken(x, p.ev, p.gamma, p.shot, p.read, g, p.cast)


register_op(
    Op(
        name="low-light",
        family="light",
        summary="under-exposure in linear light with shot and read noise, quantization and a colour cast",
        params_type=LowLightParams,
        sample=sample_low_light,
        apply=apply_low_light,
        ranges=(
            ParamRange("ev", "0", "4.5-5.5", "linear; the end point random", "stops"),
            ParamRange("gamma", "1", "1.4", "linear"),
            ParamRange("shot", "0", "1.4e-4-2.8e-4", "linear; the end point random (×0.7-1.4)", "variance/unit"),
            ParamRange("read", "0", "7e-4-1.4e-3", "linear; the end point random (×0.7-1.4)", "linear std"),
            ParamRange("cast", "(1, 1, 1)", "exp(U(-0.2, 0.2)) each", "exp(s·t), t random per channel", "gain"),
        ),
    )
)
