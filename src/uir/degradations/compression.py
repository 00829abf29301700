"""Compression ops: a real JPEG encoder round trip (OpenCV's libjpeg), not a differentiable imitation."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from uir.degradations.base import Op, ParamRange, choice, lerp, randint, register_op
from uir.errors import UirError

# OpenCV >= 4.5.5 lets the caller choose chroma subsampling; older builds always write 4:2:0.
_SAMPLING = {
    "4:2:0": getattr(cv2, "IMWRITE_JPEG_SAMPLING_FACTOR_420", None),
    "4:2:2": getattr(cv2, "IMWRITE_JPEG_SAMPLING_FACTOR_422", None),
    "4:4:4": getattr(cv2, "IMWRITE_JPEG_SAMPLING_FACTOR_444", None),
}
_HAS_SAMPLING = hasattr(cv2, "IMWRITE_JPEG_SAMPLING_FACTOR") and _SAMPLING["4:4:4"] is not None


def _encode_flags(quality: int, subsampling: str) -> list[int]:
    flags = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    if _HAS_SAMPLING:
        flags += [cv2.IMWRITE_JPEG_SAMPLING_FACTOR, _SAMPLING[subsampling]]
    elif subsampling != "4:2:0":
        raise UirError(f"this OpenCV ({cv2.__version__}) cannot write {subsampling} JPEG; upgrade opencv")
    return flags


def jpeg_compress(x: Tensor, quality: int, subsampling: str = "4:2:0", offset: tuple[int, int] = (0, 0)) -> Tensor:
    """Encode every image as a JPEG file in memory and decode it back.

    The values are rounded to 8 bits first, as any JPEG file stores them. Runs on the CPU (the tensor is
    moved there and back) and is deterministic.

    Args:
        x: ``(B, 3, H, W)`` RGB float in [0, 1], on any device.
        quality: libjpeg quality in [1, 100]; lower is smaller and blockier.
        subsampling: chroma subsampling, "4:2:0" (the common default), "4:2:2" or "4:4:4".
        offset: ``(dy, dx)`` rows and columns (edge copies) added above and left before encoding and cut
            after, which moves the 8×8 block grid as a crop of a JPEG photo would.

    Returns:
        ``(B, 3, H, W)``, same dtype and device, in [0, 1].

    Example:
        >>> jpeg_compress(torch.rand(2, 3, 37, 53), quality=30).shape
        torch.Size([2, 3, 37, 53])
    """
    if not 1 <= int(quality) <= 100:
        raise UirError(f"JPEG quality must be in [1, 100], got {quality}")
    if subsampling not in _SAMPLING:
        raise UirError(f"unknown chroma subsampling {subsampling!r}; use one of {', '.join(_SAMPLING)}")
    flags = _encode_flags(quality, subsampling)
    dy, dx = (int(o) for o in offset)
    if dy < 0 or dx < 0:
        raise UirError(f"JPEG block-grid offset must be non-negative, got {offset}")
    pixels = x.detach().float().clamp(0.0, 1.0)
    if dy or dx:
        pixels = F.pad(pixels, (dx, 0, dy, 0), mode="replicate")
    pixels = (pixels * 255.0).round().to(torch.uint8)
    pixels = pixels.permute(0, 2, 3, 1).cpu().numpy()
    decoded = []
    for rgb in pixels:
        ok, data = cv2.imencode(".jpg", np.ascontiguousarray(rgb[..., ::-1]), flags)  # OpenCV wants BGR
        assert ok, "libjpeg failed to encode"
        bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
        decoded.append(np.ascontiguousarray(bgr[..., ::-1]))
    out = torch.from_numpy(np.stack(decoded)).permute(0, 3, 1, 2)[..., dy:, dx:]
    return (out.to(device=x.device, dtype=x.dtype) / 255.0).contiguous()


@dataclass(frozen=True)
class JpegParams:
    quality: int
    subsampling: str
    offset_y: int
    offset_x: int


def sample_jpeg(severity: float, g: torch.Generator) -> JpegParams:
    # Drawn even where OpenCV cannot honour it, so a seed draws the same offsets on every install.
    subsampling = choice(g, ("4:2:0", "4:4:4"), (0.9, 0.1))
    subsampling = subsampling if _HAS_SAMPLING else "4:2:0"
    # The block grid's phase: a 16×16 macroblock (4:2:0) has 256 placements relative to the scene.
    offset_y, offset_x = randint(g, 0, 15), randint(g, 0, 15)
    return JpegParams(round(lerp(95.0, 10.0, severity)), subsampling, offset_y, offset_x)


def apply_jpeg(x: Tensor, p: JpegParams, g: torch.Generator) -> Tensor:
    return jpeg_compress(x, p.quality, p.subsampling, (p.offset_y, p.offset_x))


register_op(
    Op(
        name="jpeg",
        family="compression",
        summary="a real JPEG encode/decode round trip through libjpeg (OpenCV)",
        params_type=JpegParams,
        sample=sample_jpeg,
        apply=apply_jpeg,
        ranges=(
            ParamRange("quality", "95", "10", "linear, rounded to an integer"),
            ParamRange("subsampling", "", "", "random: 4:2:0 (p=0.9) or 4:4:4 (p=0.1)"),
            ParamRange("offset_y", "0", "15", "random: uniform integer (block-grid phase)", "px"),
            ParamRange("offset_x", "0", "15", "random: uniform integer (block-grid phase)", "px"),
        ),
    )
)
