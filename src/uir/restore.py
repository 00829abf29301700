"""Restoring images of any size (overlapping tiles blended with smooth weights, so memory stays bounded), and the
tone guard that keeps a restored image at its input's exposure when brightening was not asked for."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from uir.degradations.functional import luma
from uir.errors import UirError
from uir.restorer_registry import Restorer


def _ramp(length: int, overlap: int, device: torch.device) -> Tensor:
    """1-D blending weights: a raised-cosine rise over ``overlap`` pixels at both ends, 1 in between."""
    w = torch.ones(length, device=device)
    if overlap > 0:
        n = min(overlap, length // 2)
        rise = 0.5 - 0.5 * torch.cos(math.pi * (torch.arange(n, device=device) + 0.5) / n)
        w[:n] = rise
        w[length - n :] = rise.flip(0)
    return w


def _starts(size: int, tile: int, stride: int) -> list[int]:
    if size <= tile:
        return [0]
    starts = list(range(0, size - tile, stride)) + [size - tile]
    return sorted(set(starts))


def tiled(
    fn: Callable[[Tensor], Tensor],
    lq: Tensor,
    tile: int = 512,
    overlap: int = 32,
    *,
    stop_check: Callable[[], object] | None = None,
) -> Tensor:
    """Apply an image-to-image function tile by tile with blended overlaps.

    Args:
        fn: maps ``(1, 3, h, w)`` to ``(1, 3, h, w)`` (any h, w up to ``tile``).
        lq: ``(1, 3, H, W)``; an image no larger than ``tile`` goes through in one piece.
        tile: the tile side in pixels.
        overlap: pixels shared by neighbouring tiles, blended with raised-cosine weights (the image border keeps
            full weight, so every pixel's weights sum to a positive number).
        stop_check: called before every tile (and before an image in one piece); it raises to stop the work
            there, and its exception propagates (a server's time limit, a client gone, Ctrl-C).

    Returns:
        ``(1, 3, H, W)`` on the device of ``lq``. Only one tile and the output are held at a time.
    """
    check = stop_check or (lambda: None)
    _, _, h, w = lq.shape
    if h <= tile and w <= tile:
        check()
        return fn(lq)
    stride = max(1, tile - overlap)
    out = torch.zeros_like(lq)
    weight = torch.zeros((1, 1, h, w), device=lq.device, dtype=lq.dtype)
    for top in _starts(h, tile, stride):
        for left in _starts(w, tile, stride):
            bottom, right = min(top + tile, h), min(left + tile, w)
            check()
            piece = fn(lq[..., top:bottom, left:right])
            wy = _ramp(bottom - top, overlap, lq.device)
            wx = _ramp(right - left, overlap, lq.device)
            # Edges of the image are not blended with anything: keep their weight at 1.
            if top == 0:
                wy[: (bottom - top) // 2] = 1
            if bottom == h:
                wy[(bottom - top) // 2 :] = 1
            if left == 0:
                wx[: (right - left) // 2] = 1
            if right == w:
                wx[(right - left) // 2 :] = 1
            mask = (wy[:, None] * wx[None, :]).to(lq.dtype)
            out[..., top:bottom, left:right] += piece * mask
            weight[..., top:bottom, left:right] += mask
    return out / weight.clamp_min(1e-8)


def restore_tensor(
    restorer: Restorer,
    lq: Tensor,
    *,
    tasks: Sequence[str] | None = None,
    tile: int | None = None,
    overlap: int = 32,
    stop_check: Callable[[], object] | None = None,
) -> Tensor:
    """Restore one ``(1, 3, H, W)`` image in [0, 1] with any restorer, tiling when it asks for it.

    Args:
        tile: the tile side; default the restorer's ``tile_size`` attribute (learned models set one; classic
            baselines, which need the whole image, do not). ``0`` restores in one piece.
        stop_check: called before each tile; it raises to stop (see ``tiled``).
    """
    tile = getattr(restorer, "tile_size", None) if tile is None else tile
    with torch.no_grad():
        if not tile:
            if stop_check is not None:
                stop_check()
            return restorer.restore(lq, tasks=tasks).clamp(0, 1)
        return tiled(lambda x: restorer.restore(x, tasks=tasks), lq, tile, overlap, stop_check=stop_check).clamp(0, 1)


TONE_POLICIES = ("free", "no-brightening", "keep")
"""What the tone guard lets a restorer change at large scales (``guard_tone``):

- ``free``: anything (low-light enhancement brightens; nothing is undone);
- ``no-brightening``: darker is allowed (dehazing, deraining lower the mean), brighter is not beyond
  ``TONE_TOLERANCE``: where the output's local mean luminance exceeds the input's, it is scaled back;
- ``keep``: the input's large-scale content (exposure, colour balance, contrast above ``TONE_SCALE`` px) replaces
  the output's, so only finer detail changes (denoising, deblurring, JPEG artifacts).
"""

TONE_SCALE = 16
"""The guard's scale in pixels: local means are taken over ``TONE_SCALE``-px cells (area), bilinearly resampled."""

TONE_TOLERANCE = 0.02
"""How much brighter than its input ``no-brightening`` lets an output's local mean be (2 %): with none, denoising
σ 25 lost 0.17 dB (clipped noise had brightened the input near white), with 2 % 0.02 dB (``python
benchmarks/tone_guard.py --model M --every 4 --tolerance 0 --sets cbsd68-s25``, docs/real-photos.md)."""


def _local_mean(x: Tensor, scale: int) -> Tensor:
    h, w = x.shape[-2:]
    small = F.interpolate(x, size=(max(1, round(h / scale)), max(1, round(w / scale))), mode="area")
    return F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)


def guard_tone(
    restored: Tensor,
    source: Tensor,
    policy: str,
    *,
    scale: int = TONE_SCALE,
    tolerance: float = TONE_TOLERANCE,
) -> Tensor:
    """Undo the large-scale tone changes that ``policy`` does not allow (see ``TONE_POLICIES``).

    Args:
        restored: ``(B, 3, H, W)`` in [0, 1], what the restorer made of ``source``.
        source: ``(B, 3, H, W)`` in [0, 1], the input.
        policy: ``free``, ``no-brightening`` or ``keep``.

    Returns:
        ``(B, 3, H, W)`` in [0, 1]; ``restored`` itself for ``free``.

    Example:
        >>> x = torch.full((1, 3, 32, 32), 0.2)
        >>> round(float(guard_tone(x * 2, x, "no-brightening").mean()), 3)  # brightened 2x: back to about 1.02x
        0.204
    """
    if policy not in TONE_POLICIES:
        raise UirError(f"unknown tone policy {policy!r}; one of {', '.join(TONE_POLICIES)}")
    if restored.shape != source.shape:
        raise UirError(
            f"the restored image {tuple(restored.shape)} and its input {tuple(source.shape)} differ in shape"
        )
    if policy == "free":
        return restored
    if policy == "keep":
        return (restored - _local_mean(restored, scale) + _local_mean(source, scale)).clamp(0, 1)
    out_luma = _local_mean(luma(restored), scale)
    in_luma = _local_mean(luma(source), scale)
    gain = ((1 + tolerance) * (in_luma + 1e-5) / (out_luma + 1e-5)).clamp(max=1.0)
    return (restored * gain).clamp(0, 1)


def apply_strength(restored: Tensor, source: Tensor, strength: float) -> Tensor:
    """Scale a correction: ``source + strength · (restored − source)``, so ``0`` gives the input back unchanged and
    ``1`` the restored image as it is (``uir restore --strength``).

    Example:
        >>> x = torch.full((1, 3, 4, 4), 0.2)
        >>> round(float(apply_strength(x + 0.1, x, 0.5).mean()), 3)
        0.25
    """
    if not 0.0 <= strength <= 1.0:
        raise UirError(f"strength must be from 0 to 1, got {strength}")
    if restored.shape != source.shape:
        raise UirError(
            f"the restored image {tuple(restored.shape)} and its input {tuple(source.shape)} differ in shape"
        )
    if strength == 1.0:
        return restored
    if strength == 0.0:
        return source.clone()
    return (source + strength * (restored - source)).clamp(0, 1)
