"""Weather degradations: haze, rain streaks, raindrops on glass, falling snow.

Pure functions take physical arguments (``pseudo_depth``, ``scatter``, ``rain_layer``, ``snow_layer``,
``add_raindrops``); the ops ``haze``, ``rain-streaks``, ``raindrops`` and ``snow`` wrap them for the registry.

Pseudo-depth (haze has no depth map to go on): ``d`` in [0, 1], 1 far. It is a vertical ramp, far above
a random, tilted horizon and falling linearly to a random ``near`` at the bottom edge, plus a smooth random
field (hills, buildings) and a small share of the image's own structure (bright, unsaturated regions read
as farther, as sky and distant haze do), computed at low resolution so it is smooth, then upsampled.

Particles (rain, snow) are drawn on a canvas rotated to their fall direction, where a streak is a vertical
run of pixels: motion blur is a cumulative-sum box filter along one axis, and one bilinear ``grid_sample``
brings the canvas back to the image, antialiasing the thin streaks. Angles are in degrees from vertical;
positive leans the top to the left (``\\``). Rain adds to the photo (as in Rain100L, whose rain is the same
value in R, G and B, clipped); snow is screen-blended. Severity only scales physical strengths: the random
streams have the same shape at every severity, so a stronger setting keeps every streak, drop or flake of
a weaker one (damage grows monotonically for a given seed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from uir.degradations.base import Op, ParamRange, lerp, register_op, uniform
from uir.degradations.functional import filter2d, gaussian_blur, luma, resize, screen, smooth_field

_MAX_STREAK = 96  # px; the canvas margin, fixed so the seeds (and their random stream) do not depend on s
_DEPTH_SIDE = 64  # px; the pseudo-depth's working resolution (longer side)
_MAX_DROPS = 6.0  # raindrops per 100×100 px at s=1; candidates are drawn for this many whatever s is


# --------------------------------------------------------------------------- shared canvas


def _canvas_grid(
    h: int, w: int, angle: float, scale: float, margin: int, device: torch.device | str
) -> tuple[tuple[int, int], Tensor]:
    """A canvas rotated by ``angle`` covering an ``h×w`` image, and the ``grid_sample`` grid back.

    Returns:
        ``(Hc, Wc)`` canvas size in canvas pixels (each ``scale`` image pixels) and a ``(1, h, w, 2)`` grid.
    """
    a = math.radians(angle)
    c, s = abs(math.cos(a)), abs(math.sin(a))
    hc = math.ceil((h * c + w * s) / scale) + 2 * margin + 2
    wc = math.ceil((w * c + h * s) / scale) + 2
    ys = torch.arange(h, device=device, dtype=torch.float32) + 0.5 - h / 2
    xs = torch.arange(w, device=device, dtype=torch.float32) + 0.5 - w / 2
    y, x = torch.meshgrid(ys, xs, indexing="ij")
    along = x * math.sin(a) + y * math.cos(a)  # the fall direction is (sin a, cos a) in (x, y)
    across = x * math.cos(a) - y * math.sin(a)
    grid = torch.stack([2 * across / (scale * wc), 2 * along / (scale * hc)], dim=-1)
    return (hc, wc), grid.unsqueeze(0)


def _moving_sum(x: Tensor, n: int) -> Tensor:
    """Sum over a centred window of ``n`` pixels along the canvas's vertical (the fall direction)."""
    if n <= 1:
        return x
    c = F.pad(x, (0, 0, n // 2 + 1, (n - 1) // 2)).cumsum(dim=-2)
    return (c[..., n:, :] - c[..., :-n, :]).clamp_min(0.0)


def _uniforms(
    b: int, size: tuple[int, int], generator: torch.Generator, device: torch.device | str
) -> tuple[Tensor, Tensor]:
    """Where particles are (``u`` < density) and how bright (``v`` in [0.3, 1]): ``(B, 1, Hc, Wc)`` each."""
    u = torch.rand((b, 1, *size), generator=generator, device=device)
    return u, 0.3 + 0.7 * torch.rand((b, 1, *size), generator=generator, device=device)


# --------------------------------------------------------------------------- haze


def pseudo_depth(
    x: Tensor, horizon: float, tilt: float, near: float, roughness: float, generator: torch.Generator
) -> Tensor:
    """A smooth pseudo-depth in [near, 1] for each image (see the module docstring).

    Args:
        x: ``(B, 3, H, W)`` in [0, 1]; its structure adds a little depth.
        horizon: height of the horizon as a fraction of the image from the top.
        tilt: change of the horizon height across the image width.
        near: depth at the bottom edge.
        roughness: weight of the random smooth field.
        generator: on ``x.device``.

    Returns:
        ``(B, 1, H, W)``.
    """
    b, _, h, w = x.shape
    k = _DEPTH_SIDE / max(h, w)
    hs, ws = max(2, round(h * k)), max(2, round(w * k))
    small = resize(x, (hs, ws), mode="bilinear")
    y = (torch.arange(hs, device=x.device, dtype=torch.float32) + 0.5) / hs
    xx = (torch.arange(ws, device=x.device, dtype=torch.float32) + 0.5) / ws
    y_tilted = y[:, None] + tilt * (xx[None, :] - 0.5)
    ramp = ((1 - y_tilted) / (1 - horizon)).clamp(0.0, 1.0)
    field = smooth_field((b, 1, hs, ws), 4.0, generator, x.device)
    structure = luma(small) - (small.amax(dim=1, keepdim=True) - small.amin(dim=1, keepdim=True))
    raw = ramp + 0.2 * roughness * field + 0.2 * (structure - structure.mean(dim=(-2, -1), keepdim=True))
    depth = gaussian_blur(raw.clamp(0.0, 1.0), 1.5)
    return near + (1 - near) * F.interpolate(depth, size=(h, w), mode="bilinear", align_corners=False)


def scatter(x: Tensor, depth: Tensor, beta: float, airlight: Tensor) -> Tensor:
    """The atmospheric scattering model ``I = J·t + A·(1 − t)``, ``t = exp(−β·d)``.

    Args:
        x: ``(B, 3, H, W)`` clear scene ``J``.
        depth: ``(B, 1, H, W)`` depth ``d``.
        beta: scattering coefficient per depth unit.
        airlight: ``(3,)`` atmospheric light ``A`` per channel.
    """
    t = torch.exp(-beta * depth)
    return x * t + airlight.to(x).view(1, 3, 1, 1) * (1 - t)


@dataclass(frozen=True)
class HazeParams:
    beta: float
    airlight: float
    tint: tuple[float, float, float]
    horizon: float
    tilt: float
    near: float
    roughness: float


def sample_haze(severity: float, g: torch.Generator) -> HazeParams:
    airlight = uniform(g, 0.75, 1.0)
    blue = uniform(g, 0.0, 0.08)  # haze scatters blue a little more: a slight grey-blue cast
    tint = tuple(min(1.0, 1.0 - blue * w + uniform(g, -0.015, 0.015)) for w in (1.0, 0.5, 0.0))
    horizon, tilt = uniform(g, 0.15, 0.6), uniform(g, -0.2, 0.2)
    near, roughness = uniform(g, 0.1, 0.35), uniform(g, 0.5, 1.5)
    return HazeParams(3.0 * severity**1.5, airlight, tint, horizon, tilt, near, roughness)


def apply_haze(x: Tensor, p: HazeParams, g: torch.Generator) -> Tensor:
    depth = pseudo_depth(x, p.horizon, p.tilt, p.near, p.roughness, g)
    airlight = (p.airlight * torch.tensor(p.tint)).clamp(0.0, 1.0)
    return scatter(x, depth, p.beta, airlight).clamp(0.0, 1.0)


register_op(
    Op(
        name="haze",
        family="weather",
        summary="haze: I = J·t + A(1−t), t = exp(−β·d) on a pseudo-depth d in [0, 1]",
        params_type=HazeParams,
        sample=sample_haze,
        apply=apply_haze,
        ranges=(
            ParamRange("beta", "0", "3.0", "3·s^1.5 (SOTS-outdoor-like near s = 0.2–0.3)", "1/depth unit"),
            ParamRange("airlight", "0.75–1.0", "0.75–1.0", "random: uniform"),
            ParamRange("tint", "(1−b, 1−b/2, 1) ± 0.015", "same", "random: b uniform in [0, 0.08]"),
            ParamRange("horizon", "0.15–0.6", "0.15–0.6", "random: uniform", "image height from the top"),
            ParamRange("tilt", "−0.2–0.2", "−0.2–0.2", "random: uniform", "image height"),
            ParamRange("near", "0.1–0.35", "0.1–0.35", "random: uniform", "depth unit"),
            ParamRange("roughness", "0.5–1.5", "0.5–1.5", "random: uniform"),
        ),
    )
)


# --------------------------------------------------------------------------- rain streaks


def rain_layer(
    shape: tuple[int, int, int, int],
    density: float,
    length: float,
    angle: float,
    width: float,
    generator: torch.Generator,
    device: torch.device | str = "cpu",
) -> Tensor:
    """A layer of thin, straight, motion-blurred rain streaks.

    Args:
        shape: ``(B, C, H, W)`` of the images (C is ignored).
        density: streak seeds per pixel.
        length: streak length in pixels (at most 96); half the streaks are 0.55× as long; soft ends.
        angle: degrees from vertical, shared by every streak.
        width: 1 (one pixel) to 3 pixels.
        generator: on ``device``.

    Returns:
        ``(B, 1, H, W)`` in [0, 1]: each streak is as bright as its seed (uniform in [0.3, 1]).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> rain_layer((2, 3, 37, 53), 0.003, 20.0, 10.0, 1.0, g).shape
        torch.Size([2, 1, 37, 53])
    """
    b, _, h, w = shape
    size, grid = _canvas_grid(h, w, angle, 1.0, _MAX_STREAK // 2 + 1, device)
    u, v = _uniforms(b, size, generator, device)
    streaks = 0.0
    # Two lengths, as drops at different distances and speeds: half the seeds make full streaks, half short.
    for lo, hi, scale in ((0.0, 0.5, 1.0), (0.5, 1.0, 0.55)):
        n = max(1, round(min(length, _MAX_STREAK) * scale))
        taper = max(1, n // 3)  # soft ends: a trapezoid profile along the streak
        seeds = v * ((u >= lo * density) & (u < hi * density))
        streaks = streaks + _moving_sum(_moving_sum(seeds, n - taper + 1), taper) / taper
    side = min(max(width - 1.0, 0.0), 2.0) / 2  # weight of the two neighbouring columns
    if side > 0:
        padded = F.pad(streaks, (1, 1, 0, 0))
        streaks = streaks + side * (padded[..., :-2] + padded[..., 2:])
    return F.grid_sample(streaks.clamp(0.0, 1.0), grid.expand(b, -1, -1, -1), align_corners=False)


@dataclass(frozen=True)
class RainStreaksParams:
    density: float
    length: float
    brightness: float
    width: float
    angle: float
    far_share: float
    far_angle: float


def sample_rain_streaks(severity: float, g: torch.Generator) -> RainStreaksParams:
    density = lerp(0.0, 0.0034, severity) * uniform(g, 0.75, 1.25)
    length = lerp(24.0, 80.0, severity) * uniform(g, 0.8, 1.2)
    brightness = lerp(0.2, 0.5, severity) * uniform(g, 0.85, 1.1)
    width, angle = uniform(g, 1.4, 2.4), uniform(g, -25.0, 25.0)
    far_share, far_angle = uniform(g, 0.0, 0.5), angle + uniform(g, -10.0, 10.0)
    return RainStreaksParams(density, length, brightness, width, angle, far_share, far_angle)


def apply_rain_streaks(x: Tensor, p: RainStreaksParams, g: torch.Generator) -> Tensor:
    if p.density <= 0 or p.brightness <= 0:
        return x.clone()
    near = rain_layer(x.shape, p.density, p.length, p.angle, p.width, g, x.device)
    # A second, farther layer: sparser, shorter, thinner, dimmer, falling at a slightly different angle.
    far = rain_layer(x.shape, p.density * p.far_share, p.length * 0.6, p.far_angle, 1.0, g, x.device)
    rain = p.brightness * (near + 0.6 * far).clamp(0.0, 1.0)
    return (x + rain).clamp(0.0, 1.0)


register_op(
    Op(
        name="rain-streaks",
        family="weather",
        summary="thin bright motion-blurred rain streaks in two layers, added to the photo (as Rain100L)",
        params_type=RainStreaksParams,
        sample=sample_rain_streaks,
        apply=apply_rain_streaks,
        ranges=(
            ParamRange("density", "0", "0.0026–0.0043", "linear × random 0.75–1.25", "seeds per pixel"),
            ParamRange("length", "19–29", "64–96", "linear × random 0.8–1.2", "px"),
            ParamRange("brightness", "0.17–0.22", "0.43–0.55", "linear × random 0.85–1.1", "added to [0, 1]"),
            ParamRange("width", "1.4–2.4", "1.4–2.4", "random: uniform", "px"),
            ParamRange("angle", "−25–25", "−25–25", "random: uniform", "degrees from vertical"),
            ParamRange("far_share", "0–0.5", "0–0.5", "random: uniform", "far layer density / near"),
            ParamRange("far_angle", "angle ± 10", "angle ± 10", "random: uniform", "degrees from vertical"),
        ),
    )
)


# --------------------------------------------------------------------------- raindrops


def _drop_maps(
    b: int, h: int, w: int, count: int, radius: float, generator: torch.Generator, device: torch.device | str
) -> list[Tensor]:
    """Rasterize ``count`` elliptical drops per image into per-pixel maps (the topmost drop wins).

    Candidates are drawn for the most drops any severity can ask for, so fewer drops are a prefix of more.

    Returns:
        ``(B, 1, H, W)`` each: height ``1 − ρ²`` (0 outside), offsets ``dx``, ``dy`` from the drop centre (px)
        and the drop's radius (px).
    """
    n_max = max(count, math.ceil(_MAX_DROPS * h * w / 1e4))
    u = torch.rand((b, n_max, 4), generator=generator, device=device)[:, :count]
    cx, cy = u[..., 0] * w, u[..., 1] * h
    r = radius * (0.5 + u[..., 2])
    aspect = 0.8 + 0.45 * u[..., 3]  # height/width; some drops run down the glass
    rx, ry = (r / aspect.sqrt())[..., None, None], (r * aspect.sqrt())[..., None, None]
    half = math.ceil(radius * 1.5 * 1.12) + 1
    o = torch.arange(-half, half + 1, device=device, dtype=torch.float32)
    px = cx.floor()[..., None] + o  # (B, n, P)
    py = cy.floor()[..., None] + o
    dx = (px + 0.5 - cx[..., None])[..., None, :]  # (B, n, 1, P)
    dy = (py + 0.5 - cy[..., None])[..., :, None]  # (B, n, P, 1)
    height = 1 - (dx / rx) ** 2 - (dy / ry) ** 2
    inside = (px >= 0) & (px < w)
    valid = (height > 0) & inside[..., None, :] & ((py >= 0) & (py < h))[..., :, None]
    batch = torch.arange(b, device=device).view(b, 1, 1, 1) * (h * w)
    idx = batch + py.clamp(0, h - 1)[..., :, None].long() * w + px.clamp(0, w - 1)[..., None, :].long()
    idx, height = idx.expand_as(valid)[valid], height[valid]
    top = torch.zeros(b * h * w, device=device).scatter_reduce(0, idx, height, "amax")
    win = height == top[idx]
    maps = [top]
    for value in (dx, dy, r[..., None, None]):
        value = value.expand_as(valid)[valid][win]
        maps.append(torch.zeros(b * h * w, device=device).index_put_((idx[win],), value))
    return [m.view(b, 1, h, w) for m in maps]


def _binomial(x: Tensor) -> Tensor:
    """A separable [1, 2, 1]/4 blur (σ ≈ 0.7 px), edges replicated; cheaper than a convolution."""
    p = F.pad(x, (1, 1, 1, 1), mode="replicate")
    p = (p[..., :-2, :] + 2 * p[..., 1:-1, :] + p[..., 2:, :]) / 4
    return (p[..., :-2] + 2 * p[..., 1:-1] + p[..., 2:]) / 4


def add_raindrops(
    x: Tensor, count: int, radius: float, magnification: float, blur: float, generator: torch.Generator
) -> Tensor:
    """Adherent raindrops on a window in front of the camera.

    Each drop is a small lens: it shows the out-of-focus scene around it upside down (sampled at
    ``centre − magnification·offset`` from a blurred copy), with a darker rim, a highlight towards the top
    left and a soft edge.

    Args:
        x: ``(B, 3, H, W)`` in [0, 1].
        count: drops per image.
        radius: mean drop radius in pixels (each drop 0.5–1.5×).
        magnification: how much wider than the drop the scene it shows is.
        blur: Gaussian σ (px) of the background seen through the drops.
        generator: on ``x.device``.

    Returns:
        ``(B, 3, H, W)`` in [0, 1].
    """
    b, _, h, w = x.shape
    if count <= 0:
        return x.clone()
    height, dx, dy, r = _drop_maps(b, h, w, count, radius, generator, x.device)
    ys = torch.arange(h, device=x.device, dtype=torch.float32).view(1, 1, h, 1) + 0.5
    xs = torch.arange(w, device=x.device, dtype=torch.float32).view(1, 1, 1, w) + 0.5
    sx, sy = xs - (1 + magnification) * dx, ys - (1 + magnification) * dy
    grid = torch.cat([2 * sx / w - 1, 2 * sy / h - 1], dim=1).permute(0, 2, 3, 1)
    f = max(1, int(blur))  # blur at 1/f resolution: cheap on large images, and sampling interpolates it back
    small = resize(x, (math.ceil(h / f), math.ceil(w / f)), mode="bilinear") if f > 1 else x
    seen = F.grid_sample(gaussian_blur(small, blur / f), grid, padding_mode="border", align_corners=False)
    rho2 = 1 - height
    r = r.clamp_min(1.0)
    highlight = torch.exp(-((dx / r + 0.35) ** 2 + (dy / r + 0.45) ** 2) / 0.03)
    drop = (seen * (1 - 0.35 * rho2**3) + 0.06 + 0.4 * highlight) * 0.95
    alpha = (r * height / 3).clamp(0.0, 1.0)  # r·(1 − ρ²)/2 ≈ distance to the rim, in px; a 1.5 px soft edge
    layer = _binomial(torch.cat([drop * alpha, alpha], dim=1))  # the drops are out of focus too
    return (x * (1 - layer[:, 3:]) + layer[:, :3]).clamp(0.0, 1.0)


@dataclass(frozen=True)
class RaindropsParams:
    density: float
    radius: float
    magnification: float
    blur: float


def sample_raindrops(severity: float, g: torch.Generator) -> RaindropsParams:
    density = lerp(0.0, 4.0, severity) * uniform(g, 0.75, 1.25)
    radius = lerp(4.0, 14.0, severity) * uniform(g, 0.8, 1.25)
    return RaindropsParams(density, radius, uniform(g, 1.5, 3.0), lerp(1.0, 3.0, severity))


def apply_raindrops(x: Tensor, p: RaindropsParams, g: torch.Generator) -> Tensor:
    area = x.shape[-2] * x.shape[-1] / 1e4
    count = max(1, round(p.density * area)) if p.density > 0 else 0
    return add_raindrops(x, count, p.radius, p.magnification, p.blur, g)


register_op(
    Op(
        name="raindrops",
        family="weather",
        summary="raindrops on a window: soft lenses that show the blurred scene upside down",
        params_type=RaindropsParams,
        sample=sample_raindrops,
        apply=apply_raindrops,
        ranges=(
            ParamRange("density", "0", "3–5", "linear × random 0.75–1.25", "drops per 100×100 px (≥ 1)"),
            ParamRange("radius", "3.2–5", "11–17.5", "linear × random 0.8–1.25", "px, mean (each 0.5–1.5×)"),
            ParamRange("magnification", "1.5–3", "1.5–3", "random: uniform", "scene width / drop width"),
            ParamRange("blur", "1", "3", "linear", "px, σ of the scene seen through a drop"),
        ),
    )
)


# --------------------------------------------------------------------------- snow


def _peak_gaussian(x: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur whose kernel peaks at 1, so an isolated flake keeps its brightness."""
    if sigma < 0.3:
        return x
    r = torch.arange(-math.ceil(3 * sigma), math.ceil(3 * sigma) + 1, device=x.device, dtype=x.dtype)
    k = torch.exp(-(r**2) / (2 * sigma**2))
    return filter2d(filter2d(x, k.view(1, -1)), k.view(-1, 1))


def snow_layer(
    shape: tuple[int, int, int, int],
    density: float,
    size: float,
    angle: float,
    motion: float,
    generator: torch.Generator,
    device: torch.device | str = "cpu",
) -> Tensor:
    """A layer of soft snowflakes falling along ``angle``.

    Args:
        shape: ``(B, C, H, W)`` of the images (C is ignored).
        density: flakes per pixel.
        size: Gaussian σ of a flake in pixels.
        angle: fall direction, degrees from vertical.
        motion: motion-blur length in pixels along the fall direction.
        generator: on ``device``.

    Returns:
        ``(B, 1, H, W)`` in [0, 1].
    """
    b, _, h, w = shape
    scale = max(1.0, size / 0.8)  # big flakes are drawn on a coarser canvas and upsampled: cheap blur
    size_c, grid = _canvas_grid(h, w, angle, scale, 4, device)
    u, v = _uniforms(b, size_c, generator, device)
    seeds = v * (u < density * scale**2)
    n = max(1, round(motion / scale) + 1)
    flakes = _peak_gaussian(_moving_sum(seeds, n) / n**0.5, size / scale)
    return F.grid_sample(flakes.clamp(0.0, 1.0), grid.expand(b, -1, -1, -1), align_corners=False)


@dataclass(frozen=True)
class SnowParams:
    density: float
    size: float
    brightness: float
    veil: float
    angle: float
    motion: float


def sample_snow(severity: float, g: torch.Generator) -> SnowParams:
    density = lerp(0.0, 0.01, severity) * uniform(g, 0.75, 1.25)
    size = lerp(0.7, 1.4, severity) * uniform(g, 0.8, 1.25)
    brightness, veil = lerp(0.6, 1.0, severity) * uniform(g, 0.85, 1.0), lerp(0.0, 0.3, severity)
    return SnowParams(density, size, brightness, veil, uniform(g, -30.0, 30.0), uniform(g, 0.0, 6.0))


def apply_snow(x: Tensor, p: SnowParams, g: torch.Generator) -> Tensor:
    if p.density <= 0:
        return x.clone()
    out = x * (1 - p.veil) + 0.92 * p.veil  # the veil: snow in the air too fine to resolve
    # Three depths: many small far flakes, fewer mid ones, a few big blurry near ones.
    for share, k, bright, tilt in ((1.0, 1.0, 0.8, 0.0), (0.25, 2.0, 0.9, 4.0), (0.04, 4.0, 1.0, -4.0)):
        layer = snow_layer(x.shape, p.density * share, p.size * k, p.angle + tilt, p.motion * k, g, x.device)
        out = screen(out, p.brightness * bright * layer)
    return out.clamp(0.0, 1.0)


register_op(
    Op(
        name="snow",
        family="weather",
        summary="falling snow: three layers of soft flakes, screen-blended, over a brightening veil",
        params_type=SnowParams,
        sample=sample_snow,
        apply=apply_snow,
        ranges=(
            ParamRange("density", "0", "0.0075–0.0125", "linear × random 0.75–1.25", "small flakes per px"),
            ParamRange("size", "0.56–0.88", "1.1–1.75", "linear × random 0.8–1.25", "px, σ of a small flake (×2, ×4)"),
            ParamRange("brightness", "0.51–0.6", "0.85–1.0", "linear × random 0.85–1"),
            ParamRange("veil", "0", "0.3", "linear", "share of white mixed in"),
            ParamRange("angle", "−30–30", "−30–30", "random: uniform", "degrees from vertical"),
            ParamRange("motion", "0–6", "0–6", "random: uniform", "px of motion blur per px of flake size"),
        ),
    )
)
