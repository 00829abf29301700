"""Noise: synthetic (Gaussian, Poisson, salt-and-pepper) and real camera noise on the Bayer raw.

Pure functions: ``add_gaussian_noise``, ``add_poisson_noise``, ``add_salt_pepper``, ``add_camera_noise``.
Ops: ``noise`` and ``camera-noise``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from uir.degradations.base import Op, ParamRange, choice, lerp, log_lerp, randint, register_op, uniform
from uir.degradations.camera import BAYER_PATTERNS, bayer_mosaic, demosaic
from uir.degradations.compression import jpeg_compress
from uir.degradations.functional import gaussian_blur, linear_to_srgb, luma, srgb_to_linear
from uir.errors import UirError

NOISE_KINDS = ("gaussian", "poisson", "salt-pepper")


def add_gaussian_noise(x: Tensor, sigma: float, generator: torch.Generator, gray: bool = False) -> Tensor:
    """Additive white Gaussian noise, the benchmark's ``clip(x + N(0, 1)·σ/255, 0, 1)``.

    Args:
        x: ``(B, C, H, W)`` in [0, 1].
        sigma: standard deviation on the 0–255 scale.
        generator: on ``x.device``.
        gray: one noise value per pixel shared by all channels (luminance noise) instead of one per channel.

    Returns:
        ``(B, C, H, W)`` in [0, 1].

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> add_gaussian_noise(torch.full((1, 3, 8, 8), 0.5), 25.0, g).std() > 0.05
        tensor(True)
    """
    b, c, h, w = x.shape
    shape = (b, 1, h, w) if gray else (b, c, h, w)
    n = torch.randn(shape, generator=generator, device=x.device, dtype=x.dtype)
    return (x + n * sigma / 255.0).clamp(0.0, 1.0)  # the benchmark formula, bit for bit


def add_poisson_noise(x: Tensor, peak: float, generator: torch.Generator, gray: bool = False) -> Tensor:
    """Photon (shot) noise: ``Poisson(x·peak) / peak``.

    Args:
        x: ``(B, C, H, W)`` in [0, 1].
        peak: expected photon count of a white pixel; fewer photons, more noise.
        generator: on ``x.device``.
        gray: draw the noise on the luma and add the same deviation to every channel.

    Returns:
        ``(B, C, H, W)`` in [0, 1].
    """
    if gray:
        y = luma(x).clamp(0.0, 1.0)
        deviation = torch.poisson(y * peak, generator=generator) / peak - y
        return (x + deviation).clamp(0.0, 1.0)
    return (torch.poisson(x.clamp(0.0, 1.0) * peak, generator=generator) / peak).clamp(0.0, 1.0)


def add_salt_pepper(x: Tensor, amount: float, salt_ratio: float, generator: torch.Generator) -> Tensor:
    """Impulse noise: a fraction ``amount`` of pixels turned white (salt) or black (pepper), all channels.

    Args:
        x: ``(B, C, H, W)``.
        amount: fraction of corrupted pixels in [0, 1].
        salt_ratio: share of them that are white.
        generator: on ``x.device``.

    Returns:
        ``(B, C, H, W)``.
    """
    b, _, h, w = x.shape
    # One uniform per pixel: u < amount·ratio is salt, the rest of u < amount pepper; a larger amount
    # corrupts a superset of pixels, so damage grows monotonically with it for a fixed seed.
    u = torch.rand((b, 1, h, w), generator=generator, device=x.device)
    salt = u < amount * salt_ratio
    pepper = (u < amount) & ~salt
    return torch.where(salt, 1.0, torch.where(pepper, 0.0, x)).to(x.dtype)


@dataclass(frozen=True)
class NoiseParams:
    """Synthetic noise; every field is recorded for every kind (unused ones ignored) so records are uniform.

    The benchmark's colour noise ``clip(x + N(0, 1)·σ/255, 0, 1)`` is the override
    ``{"kind": "gaussian", "sigma": σ, "gray": 0}`` (``gray`` is drawn, so pin it too).

    Attributes:
        kind: one of ``NOISE_KINDS``.
        sigma: Gaussian standard deviation on the 0–255 scale.
        gray: 1 for luminance-only Gaussian or Poisson noise, 0 for independent colour channels.
        peak: Poisson photon count of a white pixel.
        amount: salt-and-pepper fraction of corrupted pixels.
        salt_ratio: share of white among the corrupted pixels.
    """

    kind: str
    sigma: float
    gray: int
    peak: float
    amount: float
    salt_ratio: float


def sample_noise(severity: float, g: torch.Generator) -> NoiseParams:
    # Every draw happens whatever the kind, so one seed gives the same nuisances at every severity.
    kind = choice(g, NOISE_KINDS, (0.6, 0.2, 0.2))
    gray = int(uniform(g, 0.0, 1.0) < 0.2)
    return NoiseParams(
        kind=kind,
        sigma=lerp(0.0, 75.0, severity),
        gray=gray,
        peak=log_lerp(3000.0, 4.0, severity),
        amount=lerp(0.0, 0.25, severity),
        salt_ratio=uniform(g, 0.3, 0.7),
    )


def apply_noise(x: Tensor, p: NoiseParams, g: torch.Generator) -> Tensor:
    if p.kind == "gaussian":
        return add_gaussian_noise(x, p.sigma, g, gray=bool(p.gray))
    if p.kind == "poisson":
        return add_poisson_noise(x, p.peak, g, gray=bool(p.gray))
    if p.kind == "salt-pepper":
        return add_salt_pepper(x, p.amount, p.salt_ratio, g)
    raise UirError(f"unknown noise kind {p.kind!r}; use one of {NOISE_KINDS}")


register_op(
    Op(
        name="noise",
        family="noise",
        summary="synthetic Gaussian, Poisson or salt-and-pepper noise",
        params_type=NoiseParams,
        sample=sample_noise,
        apply=apply_noise,
        ranges=(
            ParamRange("kind", "gaussian|poisson|salt-pepper", "same", "random: weights 0.6/0.2/0.2"),
            ParamRange("sigma", "0", "75", "linear", "/255"),
            ParamRange("gray", "0|1", "0|1", "random: 1 with probability 0.2"),
            ParamRange("peak", "3000", "4", "log-linear", "photons at white"),
            ParamRange("amount", "0", "0.25", "linear", "fraction of pixels"),
            ParamRange("salt_ratio", "0.3-0.7", "0.3-0.7", "random: uniform"),
        ),
    )
)


# --------------------------------------------------------------------------- real camera noise

_READ_SLOPE, _READ_OFFSET, _READ_JITTER = 2.18, 1.20, 0.26  # Brooks et al. 2019, fit over real cameras


# A typical camera-RGB -> linear sRGB colour-correction matrix (rows sum to 1, so grey stays grey); the op draws a
# strength t in [0, 1] and uses I + t·(CCM - I). Its off-diagonal terms correlate and amplify the noise across
# channels as a camera's matrix does [ours: a representative of the matrices in Brooks et al. 2019].
CAMERA_CCM = ((1.75, -0.60, -0.15), (-0.25, 1.55, -0.30), (0.05, -0.55, 1.50))


def tone_curve(x: Tensor, strength: float) -> Tensor:
    """A camera's S-shaped tone curve: ``(1 - t)·x + t·smoothstep(x)`` on sRGB values (Brooks et al. 2019 invert
    the smoothstep alone); its slope in the shadows and highlights is ``1 - t``, in the mid-tones ``1 + t/2``.

    Example:
        >>> [round(v, 3) for v in tone_curve(torch.tensor([0.0, 0.25, 0.5, 1.0]), 0.5).tolist()]
        [0.0, 0.203, 0.5, 1.0]
    """
    x = x.clamp(0.0, 1.0)
    return (1.0 - strength) * x + strength * x * x * (3.0 - 2.0 * x)


def inverse_tone_curve(y: Tensor, strength: float) -> Tensor:
    """The inverse of ``tone_curve`` for ``strength`` in [0, 1) (Newton's method; the curve is increasing)."""
    y = y.clamp(0.0, 1.0)
    x = y.clone()
    for _ in range(8):
        slope = (1.0 - strength) + 6.0 * strength * x * (1.0 - x)
        x = (x - (tone_curve(x, strength) - y) / slope.clamp_min(1e-3)).clamp(0.0, 1.0)
    return x


def add_camera_noise(
    x: Tensor,
    shot: float,
    read: float,
    generator: torch.Generator,
    pattern: str = "RGGB",
    white_balance: tuple[float, float] = (2.0, 1.7),
    ccm: float = 0.0,
    nr: float = 0.0,
    quality: int = 0,
    tone: float = 0.0,
    chroma_nr: float = 3.0,
) -> Tensor:
    """Heteroscedastic sensor noise added on the Bayer raw, then a camera's processing, after Brooks et al. 2019.

    The sRGB image is unprocessed to a linear raw mosaic (inverse sRGB curve, inverse colour-correction matrix,
    inverse white balance, Bayer sampling), noise of variance ``shot·raw + read²`` is added per photosite, and the
    difference it makes after edge-aware demosaicing, white balance and the colour matrix is added back, so the
    noise comes out spatially and chromatically correlated while the clean image suffers no demosaicing error of
    its own. In-camera noise reduction (``nr``) smooths that difference, leaving the blotchy mid-frequency grain
    of camera JPEGs (PolyU's noise: neighbour correlation 0.69, ``scripts/camera_noise_report.py``); the camera's
    tone curve (``tone``) compresses shadows and highlights, so the grain peaks in the mid-tones; ``quality``
    then encodes the result as the camera's JPEG.

    Args:
        x: ``(B, 3, H, W)`` sRGB in [0, 1].
        shot: shot-noise gain (variance per unit of linear signal).
        read: read-noise standard deviation, linear units.
        generator: on ``x.device``.
        pattern: the Bayer pattern, one of ``BAYER_PATTERNS``.
        white_balance: the camera's red and blue gains, divided out before the noise and applied after.
        ccm: strength of the colour-correction matrix ``CAMERA_CCM`` in [0, 1] (0: camera RGB = sRGB).
        nr: in-camera noise reduction: the Gaussian sigma (px) that smooths the noise's luminance; its colour
            is smoothed with ``chroma_nr``·nr. 0: none.
        quality: the camera's JPEG quality in [1, 100]; 0: no JPEG.
        tone: strength in [0, 1) of the camera's S-shaped tone curve (``tone_curve``) after the sRGB encoding.
        chroma_nr: how much harder than the luminance the noise's colour is smoothed.

    Returns:
        ``(B, 3, H, W)`` sRGB in [0, 1].
    """
    if shot <= 0 and read <= 0:
        return x.clone() if quality <= 0 else jpeg_compress(x, quality)
    lin = srgb_to_linear(inverse_tone_curve(x, tone) if tone > 0 else x)
    matrix = torch.eye(3, dtype=x.dtype, device=x.device)
    matrix = matrix + ccm * (x.new_tensor(CAMERA_CCM) - matrix)
    camera = torch.einsum("ij,bjhw->bihw", torch.linalg.inv(matrix), lin)
    gains = x.new_tensor([white_balance[0], 1.0, white_balance[1]]).view(1, 3, 1, 1)
    raw = bayer_mosaic((camera / gains).clamp_min(0.0), pattern)
    std = (shot * raw + read**2).clamp_min(0.0).sqrt()
    noisy = raw + std * torch.randn(raw.shape, generator=generator, device=x.device, dtype=x.dtype)
    both = demosaic(torch.cat([noisy, raw]), pattern, "edge-aware")
    delta = torch.einsum("ij,bjhw->bihw", matrix, (both[: x.shape[0]] - both[x.shape[0] :]) * gains)
    if nr > 0:  # cameras smooth colour noise harder than luminance noise
        grey = luma(delta)
        delta = gaussian_blur(grey, nr) + gaussian_blur(delta - grey, chroma_nr * nr)
    out = linear_to_srgb(lin + delta)
    out = tone_curve(out, tone) if tone > 0 else out
    return out if quality <= 0 else jpeg_compress(out, quality)


@dataclass(frozen=True)
class CameraNoiseParams:
    """Real camera noise on the raw mosaic, and the camera's processing after it.

    Attributes:
        shot: shot-noise gain: variance ``shot·signal`` in linear raw units.
        read: read-noise standard deviation (linear raw units), tied to ``shot`` as in Brooks et al.
        pattern: the Bayer pattern.
        red_gain: white-balance gain of the red channel.
        blue_gain: white-balance gain of the blue channel.
        ccm: strength of the colour-correction matrix (``CAMERA_CCM``).
        nr: in-camera noise reduction: Gaussian sigma of the smoothing of the noise, px.
        quality: the camera's JPEG quality; 0 for none (a raw developed to PNG/TIFF).
    """

    shot: float
    read: float
    pattern: str
    red_gain: float
    blue_gain: float
    ccm: float = 0.0
    nr: float = 0.0
    quality: int = 0
    tone: float = 0.0
    chroma_nr: float = 3.0


def sample_camera_noise(severity: float, g: torch.Generator) -> CameraNoiseParams:
    # Quadratic, so the noise's standard deviation (about √shot) grows linearly with s, like sigma in `noise`;
    # 0.012 is the top of Brooks et al.'s range.
    shot = 0.012 * severity**2
    # log(read²) = 2.18·log(shot) + 1.2 + N(0, 0.26²); the jitter is bounded at 2σ so it cannot outweigh s.
    jitter = _READ_JITTER * max(-2.0, min(2.0, torch.randn((), generator=g).item()))
    read = math.exp(0.5 * (_READ_SLOPE * math.log(shot) + _READ_OFFSET + jitter)) if shot > 0 else 0.0
    pattern = choice(g, BAYER_PATTERNS)
    red_gain, blue_gain = uniform(g, 1.9, 2.4), uniform(g, 1.5, 1.9)
    # The camera's processing, drawn after the sensor's parameters [ours]: most photos come out of the camera as
    # JPEG (p = 0.75, quality 88-98); noise reduction from none to strong (PolyU's grain fits sigma 0.7-1.2).
    ccm = uniform(g, 0.0, 1.0)
    nr = uniform(g, 0.0, 1.5)
    quality = randint(g, 88, 98) if uniform(g, 0.0, 1.0) < 0.75 else 0
    # A tone curve and colour noise reduction 3-6x the luminance's (engine 3): PolyU's grain peaks in the
    # mid-tones and is mostly luminance (red-green correlation 0.69), which 3x alone left at 0.47.
    tone, chroma_nr = uniform(g, 0.0, 0.8), uniform(g, 3.0, 6.0)
    return CameraNoiseParams(shot, read, pattern, red_gain, blue_gain, ccm, nr, quality, tone, chroma_nr)


def apply_camera_noise(x: Tensor, p: CameraNoiseParams, g: torch.Generator) -> Tensor:
    wb = (p.red_gain, p.blue_gain)
    return add_camera_noise(x, p.shot, p.read, g, p.pattern, wb, p.ccm, p.nr, p.quality, p.tone, p.chroma_nr)


register_op(
    Op(
        name="camera-noise",
        family="noise",
        summary="real camera noise: shot + read noise on the Bayer raw, then demosaicing",
        params_type=CameraNoiseParams,
        sample=sample_camera_noise,
        apply=apply_camera_noise,
        ranges=(
            ParamRange("shot", "0", "0.012", "quadratic: 0.012·s²", "variance per linear unit"),
            ParamRange("read", "0", "~0.015", "log(read²) = 2.18·log(shot) + 1.2 + N(0, 0.26²)", "linear std"),
            ParamRange("pattern", "RGGB|BGGR|GRBG|GBRG", "same", "random: uniform"),
            ParamRange("red_gain", "1.9-2.4", "1.9-2.4", "random: uniform"),
            ParamRange("blue_gain", "1.5-1.9", "1.5-1.9", "random: uniform"),
            ParamRange("ccm", "0-1", "0-1", "random: uniform (strength of the colour matrix)"),
            ParamRange("nr", "0-1.5", "0-1.5", "random: uniform (in-camera noise reduction)", "px"),
            ParamRange("quality", "0 or 88-98", "0 or 88-98", "random: JPEG (p=0.75) at a uniform integer, else 0"),
            ParamRange("tone", "0-0.8", "0-0.8", "random: uniform (strength of the S-shaped tone curve)"),
            ParamRange("chroma_nr", "3-6", "3-6", "random: uniform (colour noise reduction, times nr)"),
        ),
    )
)
