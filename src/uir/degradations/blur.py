"""Blur ops: camera-shake motion, lens defocus, and Real-ESRGAN's Gaussian-family and sinc kernels.

Each op draws a kernel's parameters from the severity and convolves every image of the batch with the same
kernel. Motion and defocus are optical, so they blur linear light (highlights bloom as in a real photo);
``gaussian-blur`` follows Real-ESRGAN and blurs the sRGB values directly.
"""

from __future__ import annotations

import cmath
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from uir.degradations.base import Op, ParamRange, choice, lerp, new_seed, register_op, uniform
from uir.degradations.functional import filter2d, linear_to_srgb, normalize_kernel, srgb_to_linear

# Above this many taps × pixels per plane an FFT beats the direct depthwise convolution on CPU: the direct
# cost per tap grows with the plane (cache misses), the FFT's barely (measured from 128² to 1024×768).
_FFT_MIN_WORK = 10_000_000
# Boracchi & Foi sample a trajectory at 2000 points over 60 px; the walk's statistics depend on both.
_TRAJECTORY_POINTS = 2000
_TRAJECTORY_SPAN = 60.0


def _delta() -> Tensor:
    return torch.ones(1, 1, dtype=torch.float64)


def _fast_size(n: int) -> int:
    """The smallest integer >= n whose only prime factors are 2, 3 and 5 (a fast FFT length)."""
    while True:
        m = n
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        if m == 1:
            return n
        n += 1


def apply_kernel(x: Tensor, kernel: Tensor) -> Tensor:
    """Convolve every channel with a point-spread function (reflect padding, size kept).

    Small jobs go through ``filter2d``, large ones through an FFT of the padded image (same result).

    Args:
        x: ``(B, C, H, W)``.
        kernel: ``(k, k)`` with odd ``k``, usually summing to one.

    Returns:
        ``(B, C, H, W)``, same dtype and device.

    Example:
        >>> apply_kernel(torch.rand(1, 3, 37, 53), disk_kernel(3.0)).shape
        torch.Size([1, 3, 37, 53])
    """
    if kernel.shape[-1] == 1:
        return x * kernel.to(x).reshape(())
    kernel = kernel.to(device=x.device, dtype=x.dtype)
    b, c, h, w = x.shape
    kh, kw = kernel.shape
    if kh * kw * h * w < _FFT_MIN_WORK:
        return filter2d(x, kernel.flip(-2, -1))  # filter2d correlates; a PSF convolves
    ph, pw = kh // 2, kw // 2
    mode = "reflect" if ph < h and pw < w else "replicate"
    padded = F.pad(x, (pw, pw, ph, ph), mode=mode)
    # Extra zeros only reach outputs we crop away: the kernel never wraps into the kept window.
    fh, fw = _fast_size(h + 2 * ph), _fast_size(w + 2 * pw)
    padded = F.pad(padded, (0, fw - padded.shape[-1], 0, fh - padded.shape[-2]))
    psf = torch.zeros(fh, fw, device=x.device, dtype=x.dtype)
    psf[:kh, :kw] = kernel
    psf = torch.roll(psf, shifts=(-ph, -pw), dims=(0, 1))
    out = torch.fft.irfft2(torch.fft.rfft2(padded) * torch.fft.rfft2(psf), s=(fh, fw))
    return out[..., ph : ph + h, pw : pw + w].contiguous()


def _blur_linear_light(x: Tensor, kernel: Tensor) -> Tensor:
    if kernel.numel() == 1:
        return x.clone()
    return linear_to_srgb(apply_kernel(srgb_to_linear(x), kernel)).clamp(0.0, 1.0)


# --------------------------------------------------------------------------- motion blur


def motion_trajectory(length: float, angle: float, anxiety: float, seed: int) -> Tensor:
    """A random camera-shake path (Boracchi & Foi 2012): a walk with inertia, pull-back and impulsive shakes.

    Args:
        length: the path's extent along its dominant direction, in pixels.
        angle: the dominant direction in degrees, counterclockwise from the x axis (y points up).
        anxiety: how erratic the walk is, in [0, 0.1]; 0 is a straight line, above ~0.005 a tangle.
        seed: the walk's own seed; the same arguments give the same path on any machine.

    Returns:
        ``(2000, 2)`` float64 ``(x, y)`` points at equal arc-length steps, centroid at the origin.
    """
    g = torch.Generator().manual_seed(int(seed) & (2**63 - 1))
    scales = torch.tensor([0.7, 0.2, 10.0, 2 * math.pi], dtype=torch.float64)
    centripetal, big_shake, shake, start = (torch.rand(4, generator=g, dtype=torch.float64) * scales).tolist()
    n = _TRAJECTORY_POINTS
    noise = torch.randn(n - 1, 2, generator=g, dtype=torch.float64).tolist()
    jolts = torch.rand(n - 1, 2, generator=g, dtype=torch.float64).tolist()
    step = _TRAJECTORY_SPAN / (n - 1)
    v = cmath.rect(1.0, start) * (anxiety if anxiety > 0 else step)
    points = [0j] * n
    for t in range(n - 1):
        dv = anxiety * (shake * complex(*noise[t]) - centripetal * points[t]) * step
        if jolts[t][0] < big_shake * anxiety:  # an impulsive shake roughly reverses the motion
            dv += 2 * v * cmath.exp(1j * (math.pi + jolts[t][1] - 0.5))
        v += dv
        v = v / abs(v) * step  # constant speed: only the direction wanders
        points[t + 1] = points[t] + v
    xy = torch.view_as_real(torch.tensor(points, dtype=torch.complex128))
    xy = xy - xy.mean(dim=0)
    x, y = xy.unbind(1)
    # Elementwise sums: a (2, N) @ (N, 2) float64 matmul hits a slow BLAS path on CPU (tens of ms).
    dominant = 0.5 * math.atan2(2 * (x * y).sum().item(), (x * x - y * y).sum().item())
    xy = xy @ _rotation(-dominant)  # dominant direction along x, where its extent is measured
    extent = (xy[:, 0].max() - xy[:, 0].min()).item()
    return xy @ _rotation(math.radians(angle)) * (length / max(extent, 1e-12))


def _rotation(turn: float) -> Tensor:
    """The matrix that turns row vectors ``(x, y)`` by ``turn`` radians counterclockwise."""
    c, s = math.cos(turn), math.sin(turn)
    return torch.tensor([[c, s], [-s, c]], dtype=torch.float64)


def rasterize_trajectory(points: Tensor) -> Tensor:
    """Splat a path's points bilinearly (sub-pixel) onto the smallest odd kernel centred on the origin.

    Args:
        points: ``(N, 2)`` ``(x, y)`` in pixels, y up, the origin at the kernel centre.

    Returns:
        ``(k, k)`` float64 kernel summing to one, ``k`` odd.
    """
    half = math.ceil(points.abs().max().item()) + 1
    size = 2 * half + 1
    col, row = half + points[:, 0], half - points[:, 1]
    c0, r0 = col.floor(), row.floor()
    fc, fr = col - c0, row - r0
    c0, r0 = c0.long(), r0.long()
    kernel = torch.zeros(size * size, dtype=torch.float64)
    for dr, dc in ((0, 0), (0, 1), (1, 0), (1, 1)):
        wgt = (fr if dr else 1 - fr) * (fc if dc else 1 - fc)
        kernel.index_put_(((r0 + dr) * size + c0 + dc,), wgt, accumulate=True)
    return normalize_kernel(kernel.view(size, size))


def motion_kernel(length: float, angle: float, anxiety: float = 0.003, seed: int = 0) -> Tensor:
    """A camera-shake blur kernel: a random trajectory (see ``motion_trajectory``) rasterized.

    Args:
        length: extent of the motion along ``angle`` in pixels; 0 gives the identity (a 1×1 delta).
        angle: dominant direction in degrees, counterclockwise from the x axis.
        anxiety: in [0, 0.1]; 0 gives a straight linear-motion kernel, larger values curlier paths.
        seed: selects the path.

    Returns:
        ``(k, k)`` float64 kernel summing to one, odd ``k`` >= ``length`` + 3, centroid at the centre.

    Example:
        >>> motion_kernel(20.0, 30.0, anxiety=0.0).shape[0] % 2
        1
    """
    if length <= 0:
        return _delta()
    return rasterize_trajectory(motion_trajectory(length, angle, anxiety, seed))


@dataclass(frozen=True)
class MotionBlurParams:
    length: float
    angle: float
    anxiety: float
    trajectory_seed: int


def sample_motion_blur(severity: float, g: torch.Generator) -> MotionBlurParams:
    angle = uniform(g, 0.0, 180.0)
    # Boracchi & Foi allow anxiety up to 0.1, but above ~0.005 paths tangle into blobs unlike real shake.
    anxiety = uniform(g, 0.0, 0.005)
    # Convex in s: PSNR saturates on textures once the length passes their correlation length, and a
    # linear ramp put nearly all the damage below s = 0.3 (and let 0.9 score above 0.5 on some seeds).
    return MotionBlurParams(35.0 * severity**1.5, angle, anxiety, new_seed(g))


def apply_motion_blur(x: Tensor, p: MotionBlurParams, g: torch.Generator) -> Tensor:
    return _blur_linear_light(x, motion_kernel(p.length, p.angle, p.anxiety, p.trajectory_seed))


register_op(
    Op(
        name="motion-blur",
        family="blur",
        summary="camera shake: a random trajectory kernel (Boracchi & Foi 2012) convolved in linear light",
        params_type=MotionBlurParams,
        sample=sample_motion_blur,
        apply=apply_motion_blur,
        ranges=(
            ParamRange("length", "0", "35", "35·s^1.5 (extent along the dominant direction)", "px"),
            ParamRange("angle", "0", "180", "random: uniform", "degrees"),
            ParamRange("anxiety", "0", "0.005", "random: uniform (0 = straight line)"),
            ParamRange("trajectory_seed", "", "", "random: seed of the walk"),
        ),
    )
)


# --------------------------------------------------------------------------- defocus blur


def disk_kernel(radius: float, blades: int = 0, rotation: float = 0.0, supersample: int = 16) -> Tensor:
    """An anti-aliased defocus kernel: a disk (pillbox), or the regular polygon of an aperture's blades.

    Pixels are weighted by the fraction of their area inside the aperture (``supersample``² points each).
    A polygon has the disk's area, so ``radius`` sets the blur strength whatever the shape.

    Args:
        radius: radius of the disk in pixels; 0 gives the identity (a 1×1 delta).
        blades: 0 for a circular aperture, else the number of polygon sides (>= 3).
        rotation: rotation of the polygon in degrees.

    Returns:
        ``(k, k)`` float64 kernel summing to one, ``k`` odd.

    Example:
        >>> disk_kernel(2.0).shape
        torch.Size([7, 7])
    """
    if radius <= 0:
        return _delta()
    n = blades
    circum = radius * math.sqrt(2 * math.pi / (n * math.sin(2 * math.pi / n))) if n >= 3 else radius
    half = math.ceil(circum) + 1
    size = 2 * half + 1
    offsets = (torch.arange(size * supersample, dtype=torch.float64) + 0.5) / supersample - size / 2
    yy, xx = torch.meshgrid(-offsets, offsets, indexing="ij")
    r = torch.sqrt(xx**2 + yy**2)
    if n >= 3:
        sector = 2 * math.pi / n
        phi = torch.remainder(torch.atan2(yy, xx) - math.radians(rotation), sector) - sector / 2
        inside = r * torch.cos(phi) <= circum * math.cos(math.pi / n)  # within every edge's apothem
    else:
        inside = r <= radius
    cover = F.avg_pool2d(inside.to(torch.float64)[None, None], supersample)[0, 0]
    if cover.sum() <= 0:  # an aperture smaller than one sub-sample is a point
        return _delta()
    return normalize_kernel(cover)


@dataclass(frozen=True)
class DefocusBlurParams:
    radius: float
    blades: int
    rotation: float


def sample_defocus_blur(severity: float, g: torch.Generator) -> DefocusBlurParams:
    blades = choice(g, (0, 5, 6, 7, 8, 9), (0.5, 0.1, 0.1, 0.1, 0.1, 0.1))
    rotation = uniform(g, 0.0, 360.0)
    return DefocusBlurParams(lerp(0.0, 8.0, severity), blades, rotation)


def apply_defocus_blur(x: Tensor, p: DefocusBlurParams, g: torch.Generator) -> Tensor:
    return _blur_linear_light(x, disk_kernel(p.radius, p.blades, p.rotation))


register_op(
    Op(
        name="defocus-blur",
        family="blur",
        summary="out-of-focus lens: an anti-aliased disk (or polygonal aperture) kernel in linear light",
        params_type=DefocusBlurParams,
        sample=sample_defocus_blur,
        apply=apply_defocus_blur,
        ranges=(
            ParamRange("radius", "0", "8", "linear (equal-area radius)", "px"),
            ParamRange("blades", "", "", "random: 0 = circle (p=0.5), else 5-9 aperture blades"),
            ParamRange("rotation", "0", "360", "random: uniform (polygon only)", "degrees"),
        ),
    )
)


# --------------------------------------------------------------------------- Gaussian-family and sinc blur

_KINDS = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso")
_KIND_WEIGHTS = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)  # Real-ESRGAN's kernel_prob
_SINC_PROB = 0.1
_KIND_TEXT = ", ".join(f"{k} p={w}" for k, w in zip(_KINDS, _KIND_WEIGHTS, strict=True))


def _grid(size: int) -> tuple[Tensor, Tensor]:
    r = torch.arange(size, dtype=torch.float64) - size // 2
    yy, xx = torch.meshgrid(-r, r, indexing="ij")  # y up, so angles turn counterclockwise
    return xx, yy


def gaussian_kernel2d(
    sigma_x: float, sigma_y: float, theta: float, size: int, shape_beta: float = 1.0, plateau: bool = False
) -> Tensor:
    """Real-ESRGAN's anisotropic Gaussian, generalized Gaussian and plateau kernels.

    With ``q = xᵀ Σ⁻¹ x`` and ``Σ = R(θ) diag(σx², σy²) R(θ)ᵀ``, the kernel is ``exp(−q^β / 2)`` (β = 1 is
    the Gaussian) or, with ``plateau``, ``1 / (1 + q^β)``.

    Args:
        sigma_x, sigma_y: standard deviations along the rotated axes, in pixels.
        theta: rotation of the x axis in degrees, counterclockwise.
        size: odd kernel side.
        shape_beta: β; Real-ESRGAN draws [0.5, 4] for generalized and [1, 2] for plateau kernels.

    Returns:
        ``(size, size)`` float64 kernel summing to one.
    """
    xx, yy = _grid(size)
    t = math.radians(theta)
    u = math.cos(t) * xx + math.sin(t) * yy
    v = -math.sin(t) * xx + math.cos(t) * yy
    q = (u / max(sigma_x, 1e-12)) ** 2 + (v / max(sigma_y, 1e-12)) ** 2
    k = 1.0 / (1.0 + q**shape_beta) if plateau else torch.exp(-0.5 * q**shape_beta)
    return normalize_kernel(k)


def sinc_kernel(cutoff: float, size: int) -> Tensor:
    """Real-ESRGAN's circular low-pass (2D sinc) kernel ``ω J1(ω r) / (2π r)``; it rings at edges.

    Up to ω = π the disk of passed frequencies lies inside the pixel grid's Nyquist square and the kernel is
    Real-ESRGAN's closed form. Beyond, the disk is clipped by the square (taps from an inverse FFT), and
    from ω = π√2 it covers the square: the kernel is a delta, so severity 0 is the identity.

    Args:
        cutoff: ω in radians per pixel, > 0.
        size: odd kernel side.

    Returns:
        ``(size, size)`` float64 kernel summing to one (it has negative lobes).
    """
    if cutoff >= math.pi * math.sqrt(2):
        return F.pad(_delta(), (size // 2,) * 4)
    if cutoff > math.pi:
        return _clipped_lowpass(cutoff, size)
    xx, yy = _grid(size)
    r = torch.sqrt(xx**2 + yy**2)
    k = cutoff * torch.special.bessel_j1(cutoff * r) / (2 * math.pi * r.clamp_min(1e-12))
    k[size // 2, size // 2] = cutoff**2 / (4 * math.pi)  # the limit at r = 0
    return k / k.sum()


def _clipped_lowpass(cutoff: float, size: int, grid: int = 256) -> Tensor:
    """Taps of the ideal low-pass whose pass band is the disk ``|ω| < cutoff`` within ``[−π, π]²``."""
    f = torch.fft.fftfreq(grid, dtype=torch.float64) * 2 * math.pi
    radius = torch.sqrt(f[:, None] ** 2 + f[None, :] ** 2)
    band = ((cutoff - radius) / (2 * math.pi / grid) + 0.5).clamp(0.0, 1.0)  # anti-aliased disk edge
    taps = torch.fft.fftshift(torch.fft.ifft2(band).real)
    lo = grid // 2 - size // 2
    k = taps[lo : lo + size, lo : lo + size]
    return k / k.sum()


def _second_moment(k: Tensor) -> float:
    xx, yy = _grid(k.shape[-1])
    return (k * (xx**2 + yy**2)).sum().item()


def blur_kernel(
    sigma_x: float, sigma_y: float, theta: float, size: int, shape_beta: float = 1.0, plateau: bool = False
) -> Tensor:
    """A Gaussian-family kernel rescaled to blur as much as the plain Gaussian with the same σ.

    Heavy-tailed kernels (β < 1, plateau) at Real-ESRGAN's σ = 0.2 are far from a delta, and flat ones
    (β > 1) blur less; so the shape is scaled until its second moment on the grid equals the Gaussian's.
    Then σ alone sets the strength and the shape is a nuisance; σ = 0.2 is a delta for every shape.

    Returns:
        ``(size, size)`` float64 kernel summing to one.
    """
    gauss = gaussian_kernel2d(sigma_x, sigma_y, theta, size)
    if shape_beta == 1.0 and not plateau:
        return gauss
    target = _second_moment(gauss)
    lo, hi = math.log(1e-5), math.log(1e2)
    for _ in range(40):  # the moment grows with the scale, so bisect its logarithm
        mid = 0.5 * (lo + hi)
        s = math.exp(mid)
        k = gaussian_kernel2d(sigma_x * s, sigma_y * s, theta, size, shape_beta, plateau)
        lo, hi = (mid, hi) if _second_moment(k) < target else (lo, mid)
    s = math.exp(0.5 * (lo + hi))
    return gaussian_kernel2d(sigma_x * s, sigma_y * s, theta, size, shape_beta, plateau)


def _odd_size(extent: float) -> int:
    return min(max(2 * math.ceil(extent) + 1, 7), 21)


@dataclass(frozen=True)
class GaussianBlurParams:
    kernel: str
    sigma_x: float
    sigma_y: float
    theta: float
    shape_beta: float
    cutoff: float
    size: int


def sample_gaussian_blur(severity: float, g: torch.Generator) -> GaussianBlurParams:
    # Every nuisance is drawn whatever the severity, so one seed keeps its kernel shape across severities.
    sinc = uniform(g, 0.0, 1.0) < _SINC_PROB
    kind = choice(g, _KINDS, _KIND_WEIGHTS)
    ratio, theta = uniform(g, 0.25, 1.0), uniform(g, 0.0, 180.0)
    beta_generalized, beta_plateau = uniform(g, 0.5, 4.0), uniform(g, 1.0, 2.0)
    sigma = lerp(0.2, 3.0, severity)
    cutoff = lerp(math.pi * math.sqrt(2), math.pi / 3, severity)
    if sinc:
        # Six lobes of support: a shorter truncation ripples in the passband, so smooth images would not
        # degrade monotonically with the cutoff.
        return GaussianBlurParams("sinc", 0.0, 0.0, 0.0, 1.0, cutoff, _odd_size(6 * math.pi / cutoff))
    beta = {"generalized": beta_generalized, "plateau": beta_plateau}.get(kind.split("_")[0], 1.0)
    sigma_y = sigma * ratio if kind.endswith("aniso") else sigma
    theta = theta if kind.endswith("aniso") else 0.0
    return GaussianBlurParams(kind, sigma, sigma_y, theta, beta, 0.0, _odd_size(3 * sigma))


def apply_gaussian_blur(x: Tensor, p: GaussianBlurParams, g: torch.Generator) -> Tensor:
    if p.kernel == "sinc":
        kernel = sinc_kernel(p.cutoff, p.size)
    else:
        plateau = p.kernel.startswith("plateau")
        kernel = blur_kernel(p.sigma_x, p.sigma_y, p.theta, p.size, p.shape_beta, plateau)
    return apply_kernel(x, kernel).clamp(0.0, 1.0)


register_op(
    Op(
        name="gaussian-blur",
        family="blur",
        summary="Real-ESRGAN blur: (an)isotropic, generalized and plateau Gaussian kernels, or a 2D sinc",
        params_type=GaussianBlurParams,
        sample=sample_gaussian_blur,
        apply=apply_gaussian_blur,
        ranges=(
            ParamRange("kernel", "", "", f"random: sinc p={_SINC_PROB}, else {_KIND_TEXT}"),
            ParamRange("sigma_x", "0.2", "3.0", "linear (major axis; Gaussian-equivalent σ)", "px"),
            ParamRange("sigma_y", "", "", "random: sigma_x × U(0.25, 1) if anisotropic, else sigma_x", "px"),
            ParamRange("theta", "0", "180", "random: uniform if anisotropic", "degrees"),
            ParamRange("shape_beta", "", "", "random: U(0.5, 4) generalized, U(1, 2) plateau, else 1"),
            ParamRange("cutoff", "π√2 (identity)", "π/3", "linear (sinc only)", "rad/px"),
            ParamRange("size", "7", "19", "odd 2⌈3σ⌉+1 (sinc: 2⌈6π/ω⌉+1), clipped to [7, 21]", "px"),
        ),
    )
)
