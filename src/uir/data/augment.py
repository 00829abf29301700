"""Seeded, paired augmentation: per-sample seeds, random crops and flips applied alike to lq and gt.

Nothing here touches a global random state: every draw comes from a ``torch.Generator`` seeded from
``sample_seed(seed, index, epoch)``, so a sample is the same in any worker, process or run.
"""

from __future__ import annotations

import hashlib

import torch
import torch.nn.functional as F
from torch import Tensor

_MAX_SEED = 2**63 - 1


def sample_seed(seed: int, index: int, epoch: int = 0) -> int:
    """A 63-bit seed for one sample, stable across processes and Python versions.

    The first 8 bytes (big-endian) of BLAKE2b over ``"{seed}:{index}:{epoch}"``, masked to 63 bits.
    """
    digest = hashlib.blake2b(f"{int(seed)}:{int(index)}:{int(epoch)}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") & _MAX_SEED


def sample_generator(seed: int, index: int, epoch: int = 0) -> torch.Generator:
    """A CPU generator seeded with ``sample_seed(seed, index, epoch)``."""
    return torch.Generator().manual_seed(sample_seed(seed, index, epoch))


def reflect_pad_to(x: Tensor, height: int, width: int) -> Tensor:
    """Mirror-pad an image at the bottom and right up to at least ``height`` × ``width``.

    Padding repeats when the image is smaller than half the target (a 1-pixel side is replicated).

    Args:
        x: ``(C, H, W)``.

    Returns:
        ``(C, max(H, height), max(W, width))``; the original pixels stay at the top left.
    """
    while x.shape[-2] < height or x.shape[-1] < width:
        h, w = x.shape[-2:]
        pad_h = min(max(height - h, 0), h - 1)
        pad_w = min(max(width - w, 0), w - 1)
        if pad_h == 0 and pad_w == 0:
            return F.pad(x[None], (0, max(width - w, 0), 0, max(height - h, 0)), mode="replicate")[0]
        x = F.pad(x[None], (0, pad_w, 0, pad_h), mode="reflect")[0]
    return x


def crop_window(
    height: int, width: int, size: int | tuple[int, int], generator: torch.Generator
) -> tuple[int, int, int, int]:
    """Draw a crop window ``(top, left, crop_height, crop_width)`` inside a ``height`` × ``width`` image.

    The image must be at least as large as the crop (pad it first with ``reflect_pad_to``).
    """
    ch, cw = (size, size) if isinstance(size, int) else size
    assert height >= ch and width >= cw, "pad the image before cropping"
    top = int(torch.randint(0, height - ch + 1, (), generator=generator).item())
    left = int(torch.randint(0, width - cw + 1, (), generator=generator).item())
    return top, left, ch, cw


def paired_crop(
    images: tuple[Tensor, ...], size: int | tuple[int, int], generator: torch.Generator
) -> tuple[Tensor, ...]:
    """Crop the same random window out of images of one size (mirror-padding them first if smaller).

    Args:
        images: ``(C, H, W)`` tensors of equal ``H`` and ``W``.
        size: crop side, or ``(height, width)``.
        generator: supplies the window's position.

    Returns:
        The crops, ``(C, height, width)`` each.
    """
    ch, cw = (size, size) if isinstance(size, int) else size
    images = tuple(reflect_pad_to(x, ch, cw) for x in images)
    top, left, ch, cw = crop_window(*images[0].shape[-2:], (ch, cw), generator)
    return tuple(x[..., top : top + ch, left : left + cw] for x in images)


def paired_flip(images: tuple[Tensor, ...], generator: torch.Generator) -> tuple[Tensor, ...]:
    """Flip images alike: left-right with probability 1/2, then up-down with probability 1/2.

    Args:
        images: ``(C, H, W)`` tensors.

    Returns:
        The flipped images, same shapes.
    """
    horizontal, vertical = (torch.rand(2, generator=generator) < 0.5).tolist()
    dims = [d for d, on in ((-1, horizontal), (-2, vertical)) if on]
    if not dims:
        return images
    return tuple(x.flip(dims) for x in images)
