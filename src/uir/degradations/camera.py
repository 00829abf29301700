"""Camera-pipeline degradations: Bayer mosaic + demosaic, screen moiré, and down-then-up sampling.

Pure functions (``bayer_mosaic``, ``demosaic``, ``mosaic_demosaic``, ``moire_gain``, ``downsample``) take
physical arguments; the ops ``mosaic``, ``moire`` and ``downsample`` wrap them for the registry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from uir.degradations.base import Op, ParamRange, choice, lerp, log_uniform, register_op, uniform
from uir.degradations.functional import resize, smooth_field
from uir.errors import UirError

BAYER_PATTERNS = ("RGGB", "BGGR", "GRBG", "GBRG")
DEMOSAIC_METHODS = ("edge-aware", "bilinear", "nearest")


def _check_pattern(pattern: str) -> str:
    if pattern not in BAYER_PATTERNS:
        raise UirError(f"unknown Bayer pattern {pattern!r}; use one of {BAYER_PATTERNS}")
    return pattern


def cfa_masks(pattern: str, height: int, width: int, device: torch.device | str = "cpu") -> Tensor:
    """One-hot colour filter array of a Bayer pattern.

    Args:
        pattern: the 2×2 tile read row by row, e.g. ``"RGGB"`` (R at (0, 0), B at (1, 1)).

    Returns:
        ``(1, 3, H, W)`` float32; channel c is 1 where the sensor sees colour c.
    """
    tile = torch.zeros(3, 2, 2, device=device)
    for k, colour in enumerate(_check_pattern(pattern)):
        tile["RGB".index(colour), k // 2, k % 2] = 1.0
    reps = (1, math.ceil(height / 2), math.ceil(width / 2))
    return tile.repeat(*reps)[:, :height, :width].unsqueeze(0)


def bayer_mosaic(x: Tensor, pattern: str = "RGGB") -> Tensor:
    """Sample an RGB batch through a Bayer colour filter array.

    Args:
        x: ``(B, 3, H, W)``.
        pattern: one of ``BAYER_PATTERNS``.

    Returns:
        ``(B, 1, H, W)`` raw mosaic: each pixel keeps only the colour its filter passes.

    Example:
        >>> bayer_mosaic(torch.rand(2, 3, 37, 53), "GRBG").shape
        torch.Size([2, 1, 37, 53])
    """
    masks = cfa_masks(pattern, x.shape[-2], x.shape[-1], x.device).to(x.dtype)
    return (x * masks).sum(dim=1, keepdim=True)


def _spread(v: Tensor, cross: bool) -> Tensor:
    """3×3 zero-padded filter: the bilinear kernel [1 2 1]ᵀ[1 2 1]/4, or the cross (centre 1, arms 1/4).

    Written with shifted slices: torch's 3×3 depthwise convolution is ~50× slower on CPU at these sizes.
    """
    y = F.pad(v, (1, 1, 1, 1))
    if cross:
        arms = y[..., :-2, 1:-1] + y[..., 2:, 1:-1] + y[..., 1:-1, :-2] + y[..., 1:-1, 2:]
        return y[..., 1:-1, 1:-1] + 0.25 * arms
    rows = y[..., :, 1:-1] + 0.5 * (y[..., :, :-2] + y[..., :, 2:])
    return rows[..., 1:-1, :] + 0.5 * (rows[..., :-2, :] + rows[..., 2:, :])


def _interpolate(values: Tensor, masks: Tensor, cross: bool = False) -> Tensor:
    """Fill sparse samples: ``spread(values·mask) / spread(mask)``, so borders need no padding rule.

    ``values`` is ``(B, C, H, W)``; ``masks`` is ``(1, C, H, W)``, so the denominator is computed once.
    """
    return _spread(values * masks, cross) / _spread(masks, cross).clamp_min(1e-6)


def _demosaic_bilinear(raw: Tensor, masks: Tensor) -> Tensor:
    rb = _interpolate(raw.expand(-1, 2, -1, -1), masks[:, 0::2])
    g = _interpolate(raw, masks[:, 1:2], cross=True)
    return torch.cat([rb[:, :1], g, rb[:, 1:]], dim=1)


def _green_hamilton_adams(raw: Tensor, green: Tensor) -> Tensor:
    """Green everywhere: along the smoother direction, with the Laplacian of the site's own colour.

    Reflect padding keeps the CFA phase (index −k mirrors to +k, same parity), so borders stay correct.
    """
    h, w = raw.shape[-2:]
    p = F.pad(raw, (2, 2, 2, 2), mode="reflect")
    centre = p[..., 2 : h + 2, 2 : w + 2]
    left, right = p[..., 2 : h + 2, 1 : w + 1], p[..., 2 : h + 2, 3 : w + 3]
    up, down = p[..., 1 : h + 1, 2 : w + 2], p[..., 3 : h + 3, 2 : w + 2]
    lap_h = 2 * centre - p[..., 2 : h + 2, 0:w] - p[..., 2 : h + 2, 4 : w + 4]
    lap_v = 2 * centre - p[..., 0:h, 2 : w + 2] - p[..., 4 : h + 4, 2 : w + 2]
    est_h = (left + right) / 2 + lap_h / 4
    est_v = (up + down) / 2 + lap_v / 4
    grad_h = (left - right).abs() + lap_h.abs()
    grad_v = (up - down).abs() + lap_v.abs()
    # 1 where horizontal is smoother, 0 where vertical is, 1/2 on a tie (the average of both).
    w_h = 0.5 * (torch.sign(grad_v - grad_h) + 1.0)
    return torch.where(green > 0, raw, est_v + w_h * (est_h - est_v))


def _demosaic_edge_aware(raw: Tensor, masks: Tensor) -> Tensor:
    """Hamilton–Adams green, then R and B by bilinear interpolation of the colour differences R−G, B−G."""
    if min(raw.shape[-2:]) < 3:  # too small to reflect-pad by 2
        return _demosaic_bilinear(raw, masks)
    g = _green_hamilton_adams(raw, masks[:, 1:2])
    diff = _interpolate((raw - g).expand(-1, 2, -1, -1), masks[:, 0::2])
    return torch.cat([g + diff[:, :1], g, g + diff[:, 1:]], dim=1)


def _demosaic_nearest(raw: Tensor, pattern: str) -> Tensor:
    """Pixel replication: every pixel takes R and B from its 2×2 cell, G from its horizontal neighbour."""
    h, w = raw.shape[-2:]
    p = F.pad(raw, (0, w % 2, 0, h % 2), mode="reflect" if min(h, w) > 1 else "replicate")
    cells = F.pixel_unshuffle(p, 2)  # (B, 4, h/2, w/2): tile position k = 2·row + col
    pos_r, pos_b = pattern.index("R"), pattern.index("B")
    source = [pos_r] * 4 + [k if pattern[k] == "G" else k ^ 1 for k in range(4)] + [pos_b] * 4
    return F.pixel_shuffle(cells[:, source], 2)[..., :h, :w]


def demosaic(raw: Tensor, pattern: str = "RGGB", method: str = "edge-aware") -> Tensor:
    """Reconstruct RGB from a Bayer mosaic.

    Args:
        raw: ``(B, 1, H, W)`` mosaic from ``bayer_mosaic``.
        pattern: the Bayer pattern it was taken with.
        method: ``"edge-aware"`` (Hamilton–Adams green + colour-difference R/B), ``"bilinear"`` or
            ``"nearest"`` (2×2 pixel replication).

    Returns:
        ``(B, 3, H, W)``, not clamped (the Laplacian correction may overshoot slightly).

    Example:
        >>> x = torch.rand(1, 3, 37, 53)
        >>> demosaic(bayer_mosaic(x, "BGGR"), "BGGR", "bilinear").shape
        torch.Size([1, 3, 37, 53])
    """
    if method == "nearest":
        return _demosaic_nearest(raw, _check_pattern(pattern))
    masks = cfa_masks(pattern, raw.shape[-2], raw.shape[-1], raw.device).to(raw.dtype)
    if method == "edge-aware":
        return _demosaic_edge_aware(raw, masks)
    if method == "bilinear":
        return _demosaic_bilinear(raw, masks)
    raise UirError(f"unknown demosaic method {method!r}; use one of {DEMOSAIC_METHODS}")


# --------------------------------------------------------------------------- mosaic


@dataclass(frozen=True)
class MosaicParams:
    """A Bayer round trip whose demosaicing worsens with severity.

    Attributes:
        pattern: the Bayer pattern, one of ``BAYER_PATTERNS``.
        strength: weight of the demosaiced image against the clean one (0 = untouched).
        nearest: how far the demosaicing has moved from its best edge-aware blend to 2×2 pixel replication.
    """

    pattern: str
    strength: float
    nearest: float


def mosaic_demosaic(x: Tensor, pattern: str, strength: float, nearest: float) -> Tensor:
    """Bayer-sample ``x`` and demosaic it, from a near-best edge-aware result to 2×2 pixel replication.

    Blending two demosaics averages their errors, so a straight edge-aware → replication blend first gets
    *better* before it gets worse. The start point is therefore the blend on that segment closest to ``x``
    (per image, in closed form); past it the squared error along the segment is convex and rising, and
    ``lerp(x, ·, strength)`` scales the error, so the damage grows strictly with both weights.

    Args:
        x: ``(B, 3, H, W)`` in [0, 1], at least 2×2.
        strength: blend weight of the demosaiced image against ``x``.
        nearest: position from that best blend (0) to pure pixel replication (1).

    Returns:
        ``(B, 3, H, W)`` in [0, 1].
    """
    raw = bayer_mosaic(x, pattern)
    edge = demosaic(raw, pattern, "edge-aware").clamp(0.0, 1.0)
    # Replication copies raw samples, so edge + t·step stays in [0, 1] for t in [0, 1]: no clamp can bend
    # the convexity argument.
    step = demosaic(raw, pattern, "nearest") - edge
    dims = (1, 2, 3)
    best = (-((edge - x) * step).sum(dims) / (step**2).sum(dims).clamp_min(1e-12)).clamp(0.0, 0.5)
    t = (best + nearest * (1.0 - best)).view(-1, 1, 1, 1)
    return torch.lerp(x, edge + t * step, strength)


def _ramp(severity: float, start: float, stop: float) -> float:
    return min(max((severity - start) / (stop - start), 0.0), 1.0)


def sample_mosaic(severity: float, g: torch.Generator) -> MosaicParams:
    # Fade the demosaiced image in first: the edge-aware demosaic alone is ~35 dB on CBSD68 but ~26 dB on its
    # most textured photo, too far from identity at s=0. The random stage boundary varies results per seed.
    pattern = choice(g, BAYER_PATTERNS)
    boundary = uniform(g, 0.25, 0.4)
    return MosaicParams(
        pattern=pattern, strength=_ramp(severity, 0.0, boundary), nearest=_ramp(severity, boundary, 1.0)
    )


def apply_mosaic(x: Tensor, p: MosaicParams, g: torch.Generator) -> Tensor:
    if p.strength <= 0 or min(x.shape[-2:]) < 2:  # below 2×2 a colour has no sample at all
        return x.clone()
    return mosaic_demosaic(x, p.pattern, p.strength, p.nearest).clamp(0.0, 1.0)


register_op(
    Op(
        name="mosaic",
        family="camera",
        summary="Bayer colour filter array, then demosaicing that worsens with severity",
        params_type=MosaicParams,
        sample=sample_mosaic,
        apply=apply_mosaic,
        ranges=(
            ParamRange("pattern", "RGGB|BGGR|GRBG|GBRG", "RGGB|BGGR|GRBG|GBRG", "random: uniform"),
            ParamRange("strength", "0", "1", "linear over s 0→a, then 1; a random in 0.25-0.4"),
            ParamRange("nearest", "0", "1", "0, then linear over s a→1"),
        ),
    )
)


# --------------------------------------------------------------------------- moire


@dataclass(frozen=True)
class MoireParams:
    """Screen moiré: multiplicative sinusoidal fringes with a warped phase, shifted per colour.

    Attributes:
        amplitude: fringe contrast; the gain swings in ``1 ± amplitude``.
        period: fringe period in pixels (before warping).
        angle: fringe orientation in degrees.
        warp: phase distortion in radians per unit of a unit-variance smooth field (bends the fringes).
        cells: coarseness of the warp field (control points across the longer side).
        chroma: phase step between R, G and B in radians (coloured fringes).
    """

    amplitude: float
    period: float
    angle: float
    warp: float
    cells: float
    chroma: float


def moire_gain(
    shape: tuple[int, int, int, int],
    period: float,
    angle: float,
    warp: float,
    cells: float,
    chroma: float,
    generator: torch.Generator,
    device: torch.device | str = "cpu",
) -> Tensor:
    """The fringe pattern ``cos(phase_c)`` of screen moiré, before scaling by the amplitude.

    Args:
        shape: ``(B, 3, H, W)`` of the image it will modulate.
        generator: on ``device``; draws the smooth warp field (one per image).

    Returns:
        ``(B, 3, H, W)`` in [−1, 1].
    """
    b, _, h, w = shape
    theta = math.radians(angle)
    yy = torch.arange(h, device=device, dtype=torch.float32).view(h, 1)
    xx = torch.arange(w, device=device, dtype=torch.float32).view(1, w)
    phase = (2 * math.pi / period) * (xx * math.cos(theta) + yy * math.sin(theta))
    phase = phase + warp * smooth_field((b, 1, h, w), cells, generator, device)
    offsets = torch.tensor([-chroma, 0.0, chroma], device=device).view(1, 3, 1, 1)
    return torch.cos(phase + offsets)


def sample_moire(severity: float, g: torch.Generator) -> MoireParams:
    return MoireParams(
        amplitude=lerp(0.0, 0.35, severity),
        period=log_uniform(g, 4.0, 40.0),
        angle=uniform(g, 0.0, 180.0),
        warp=uniform(g, 4.0, 16.0),
        cells=uniform(g, 2.0, 5.0),
        chroma=uniform(g, 0.5, 2.0),
    )


def apply_moire(x: Tensor, p: MoireParams, g: torch.Generator) -> Tensor:
    fringes = moire_gain(tuple(x.shape), p.period, p.angle, p.warp, p.cells, p.chroma, g, x.device)
    return (x * (1.0 + p.amplitude * fringes.to(x.dtype))).clamp(0.0, 1.0)


register_op(
    Op(
        name="moire",
        family="camera",
        summary="moiré fringes, as when photographing a screen",
        params_type=MoireParams,
        sample=sample_moire,
        apply=apply_moire,
        ranges=(
            ParamRange("amplitude", "0", "0.35", "linear", "gain swing"),
            ParamRange("period", "4-40", "4-40", "random: log-uniform", "px"),
            ParamRange("angle", "0-180", "0-180", "random: uniform", "deg"),
            ParamRange("warp", "4-16", "4-16", "random: uniform", "rad"),
            ParamRange("cells", "2-5", "2-5", "random: uniform", "control points"),
            ParamRange("chroma", "0.5-2", "0.5-2", "random: uniform", "rad"),
        ),
    )
)


# --------------------------------------------------------------------------- downsample

RESIZE_MODES = ("area", "bilinear", "bicubic")


@dataclass(frozen=True)
class DownsampleParams:
    """Shrink then enlarge back: the detail lost to a lower resolution.

    Attributes:
        factor: the shrink factor (1 = untouched).
        mode: the shrinking interpolation, one of ``RESIZE_MODES``.
    """

    factor: float
    mode: str


def downsample(x: Tensor, factor: float, mode: str = "bicubic") -> Tensor:
    """Shrink by ``factor`` with ``mode``, then enlarge back to the same size bicubically.

    Args:
        x: ``(B, C, H, W)``.
        factor: >= 1.
        mode: ``"area"``, ``"bilinear"`` or ``"bicubic"`` (the latter two antialiased).

    Returns:
        ``(B, C, H, W)``, not clamped (bicubic overshoots).

    Example:
        >>> downsample(torch.rand(1, 3, 37, 53), 2.5, "area").shape
        torch.Size([1, 3, 37, 53])
    """
    if mode not in RESIZE_MODES:
        raise UirError(f"unknown resize mode {mode!r}; use one of {RESIZE_MODES}")
    if factor < 1:
        raise UirError(f"downsample factor must be >= 1, got {factor}")
    h, w = x.shape[-2:]
    small = (max(1, round(h / factor)), max(1, round(w / factor)))
    return resize(resize(x, small, mode), (h, w), "bicubic")


def sample_downsample(severity: float, g: torch.Generator) -> DownsampleParams:
    return DownsampleParams(factor=lerp(1.0, 4.0, severity), mode=choice(g, RESIZE_MODES))


def apply_downsample(x: Tensor, p: DownsampleParams, g: torch.Generator) -> Tensor:
    return downsample(x, p.factor, p.mode).clamp(0.0, 1.0)


register_op(
    Op(
        name="downsample",
        family="camera",
        summary="lower resolution: shrink, then enlarge back bicubically",
        params_type=DownsampleParams,
        sample=sample_downsample,
        apply=apply_downsample,
        ranges=(
            ParamRange("factor", "1", "4", "linear", "×"),
            ParamRange("mode", "area|bilinear|bicubic", "area|bilinear|bicubic", "random: uniform"),
        ),
    )
)
