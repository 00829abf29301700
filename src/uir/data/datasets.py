"""Datasets of ``{"lq", "gt", "label", "path"}`` samples: paired folders, σ-noise, synthetic pairs.

Every sample follows the batch contract: ``lq`` and ``gt`` are ``(3, H, W)`` float32 RGB in [0, 1] and
``label`` is the degradation name (e.g. ``"rain-streaks"``); whoever owns the experiment's class list turns it
into an index. Random augmentation is drawn from a generator seeded by ``sample_seed(seed, index, epoch)``,
never from a global random state; call ``set_epoch`` to move to the next epoch's draws.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

from uir.data.augment import paired_crop, paired_flip, sample_generator
from uir.data.layouts import Pair, Pairing, get_layout, pair_folder
from uir.degradations import Mix, apply, get_mix
from uir.errors import UirError
from uir.io import read_image

logger = logging.getLogger(__name__)

UNKNOWN_LABEL = "unknown"
"""The label of pairs whose layout implies no degradation (``paired``) when the caller gives none."""

Crop = int | tuple[int, int] | None


def load_image(path: Path) -> Tensor:
    """Read one image as ``(3, H, W)`` float32 RGB in [0, 1] (via ``uir.io``; raises ``ImageError``)."""
    return read_image(path).image[0]


def _size(x: Tensor) -> str:
    return f"{x.shape[-1]}x{x.shape[-2]}"


def _augment(images: tuple[Tensor, ...], crop: Crop, flip: bool, generator: torch.Generator) -> tuple[Tensor, ...]:
    if crop is not None:
        images = paired_crop(images, crop, generator)
    if flip:
        images = paired_flip(images, generator)
    return tuple(x.contiguous() for x in images)


Files = tuple[int, int] | None
"""A slice ``(start, stop)`` of a folder's sorted files (or pairs), e.g. ``(0, 400)`` to train on and
``(400, 432)`` to validate on; ``None`` takes them all."""


def select_files(items: list, files: Files, root: str | Path) -> list:
    """``items[start:stop]``; a slice that leaves nothing is an error naming the folder and its count."""
    if files is None:
        return items
    start, stop = files
    if not 0 <= start < stop:
        raise UirError(f"{root}: files must be [start, stop) with 0 <= start < stop, got [{start}, {stop}]")
    if start >= len(items):
        raise UirError(f"{root}: files [{start}, {stop}) selects nothing from its {len(items)} images")
    return items[start:stop]


def _clean_images(root: str | Path, layout: str | None, files: Files = None) -> tuple[Pairing, list[Path]]:
    """The clean images of a folder: all images of a ``clean`` folder, the gt images of a paired one."""
    pairing = pair_folder(root, layout)
    images = select_files(pairing.gt_images, files, root) if pairing.gt_images else []
    if not images:
        raise UirError(f"{root}: no images found (layout {pairing.layout!r}); see `uir data check {root}`")
    return pairing, images


class PairedDataset(Dataset):
    """Degraded/clean pairs from a folder in one of ``LAYOUTS``.

    Args:
        root: the data set folder.
        layout: a layout name; ``None`` detects it (``uir.data.detect_layout``).
        label: the degradation name every sample carries; ``None`` takes the layout's (``"rain-streaks"`` for
            ``rain100l``...), or ``UNKNOWN_LABEL`` for ``paired``.
        crop: a random crop side or ``(height, width)``, the same window in lq and gt; images smaller than the
            crop are mirror-padded first. ``None`` keeps whole images.
        flip: random left-right and up-down flips, alike in lq and gt.
        seed: the augmentation seed; sample ``i`` of epoch ``e`` draws from ``sample_seed(seed, i, e)``.
        files: a slice ``(start, stop)`` of the sorted pairs; ``None`` takes all.

    Raises:
        UirError: missing folder, unknown layout, a ``clean`` folder (no lq), or no pairs at all.

    Example:
        >>> ds = PairedDataset("../shared/data/derain/Rain100L", crop=128)  # doctest: +SKIP
        >>> sample = ds[0]; sample["lq"].shape, sample["label"]  # doctest: +SKIP
        (torch.Size([3, 128, 128]), 'rain-streaks')
    """

    def __init__(
        self,
        root: str | Path,
        layout: str | None = None,
        label: str | None = None,
        *,
        crop: Crop = None,
        flip: bool = False,
        seed: int = 0,
        files: Files = None,
    ) -> None:
        self.pairing = pair_folder(root, layout)
        self.layout = self.pairing.layout
        if self.layout == "clean":
            raise UirError(f"{root}: a folder of clean images has no lq; use NoisyDataset or SyntheticDataset")
        if not self.pairing.pairs:
            raise UirError(f"{root}: no lq/gt pairs found (layout {self.layout!r}); see `uir data check {root}`")
        if self.pairing.unmatched:
            logger.warning(
                "%s: %d file(s) without a partner skipped; `uir data check` lists them",
                root,
                len(self.pairing.unmatched),
            )
        self.pairs: list[Pair] = select_files(self.pairing.pairs, files, root)
        self.label = label or get_layout(self.layout).label or UNKNOWN_LABEL
        self.crop, self.flip, self.seed, self.epoch = crop, flip, seed, 0

    def __len__(self) -> int:
        return len(self.pairs)

    def set_epoch(self, epoch: int) -> None:
        """Use epoch ``epoch``'s augmentation draws from now on."""
        self.epoch = int(epoch)

    def __getitem__(self, index: int) -> dict[str, Any]:
        pair = self.pairs[index]
        index %= len(self.pairs)
        assert pair.lq is not None
        lq, gt = load_image(pair.lq), load_image(pair.gt)
        if lq.shape != gt.shape:
            raise UirError(f"size mismatch: {pair.lq} is {_size(lq)} but {pair.gt} is {_size(gt)}")
        generator = sample_generator(self.seed, index, self.epoch)
        lq, gt = _augment((lq, gt), self.crop, self.flip, generator)
        return {"lq": lq, "gt": gt, "label": self.label, "path": str(pair.lq)}


def noise_seed(name: str, sigma: float) -> int:
    """The seed of an image's noise: ``zlib.crc32(name.encode("utf-8")) + round(sigma * 1_000_003)``.

    Args:
        name: the file name with its extension, no folder (``"101085.png"``).
        sigma: the noise level on the 0..255 scale (integer levels give exactly ``sigma * 1_000_003``).
    """
    return zlib.crc32(name.encode("utf-8")) + round(sigma * 1_000_003)


def add_noise(gt: Tensor, sigma: float, seed: int) -> Tensor:
    """Add seeded white Gaussian noise: ``clip(gt + n * (sigma / 255), 0, 1)``.

    ``n`` is ``torch.randn(gt.shape, dtype=torch.float32)`` drawn from a CPU
    ``torch.Generator().manual_seed(seed)``; ``sigma / 255`` is computed in Python (float64) before the
    float32 product.

    Args:
        gt: ``(..., H, W)`` float32 on the CPU, in [0, 1].
        sigma: the noise standard deviation on the 0..255 scale.
        seed: the generator seed (``noise_seed`` for benchmark images).

    Returns:
        The noisy image, same shape, float32 in [0, 1].
    """
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(gt.shape, generator=generator, dtype=torch.float32)
    return (gt + noise * (sigma / 255.0)).clamp(0.0, 1.0)


class NoisyDataset(Dataset):
    """CBSD68-style σ-denoising: each clean image with its own fixed Gaussian noise, label ``"noise"``.

    The noise of an image depends only on its file name and σ (``noise_seed``), so the numbers repeat to the
    last digit in any order, worker or run.

    Args:
        clean_root: a folder of clean images (or a paired folder: its gt images are used).
        sigma: the noise level on the 0..255 scale (15, 25, 50 in the benchmarks).
        layout: the folder's layout; ``None`` detects it.
        label: the label every sample carries.
        files: a slice ``(start, stop)`` of the sorted images; ``None`` takes all.

    Example:
        >>> ds = NoisyDataset("../shared/data/denoise/CBSD68", sigma=25)  # doctest: +SKIP
        >>> sorted(ds[0])  # doctest: +SKIP
        ['gt', 'label', 'lq', 'path', 'sigma']
    """

    def __init__(
        self,
        clean_root: str | Path,
        sigma: float,
        *,
        layout: str | None = None,
        label: str = "noise",
        files: Files = None,
    ) -> None:
        if not sigma >= 0:
            raise UirError(f"sigma must be >= 0 (0..255 scale), got {sigma}")
        self.pairing, self.images = _clean_images(clean_root, layout, files)
        self.sigma, self.label = sigma, label

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, Any]:
        path = self.images[index]
        gt = load_image(path)
        lq = add_noise(gt, self.sigma, noise_seed(path.name, self.sigma))
        return {"lq": lq, "gt": gt, "label": self.label, "path": str(path), "sigma": float(self.sigma)}


class SyntheticDataset(Dataset):
    """Pairs made on the fly: a random crop of a clean image, degraded by a record drawn from a mix.

    Sample ``i`` of epoch ``e`` uses image ``i % len(images)`` and one generator seeded with
    ``sample_seed(seed, i, e)`` that draws, in order, the crop window, the flips (if ``flip``) and the
    record (``mix.draw``); the record's own seed then drives ``uir.degradations.apply``. Images smaller
    than the crop are mirror-padded (bottom and right) to the crop size, never resized.

    Args:
        clean_root: a folder of clean images (or a paired folder: its gt images are used).
        mix: a mix name of ``uir.degradations.MIXES`` or a ``Mix``.
        crop: the crop side or ``(height, width)``; ``None`` degrades whole images.
        seed: the data seed.
        length: samples per epoch; ``None`` is one per image (larger values cycle over the images).
        flip: random flips of the clean crop.
        layout: the folder's layout; ``None`` detects it.
        files: a slice ``(start, stop)`` of the sorted images; ``None`` takes all.

    Example:
        >>> ds = SyntheticDataset("../shared/data/train_clean/CBSD432", mix="5d", crop=128)  # doctest: +SKIP
        >>> s = ds[0]; s["lq"].shape, s["label"] in ds.mix.weights  # doctest: +SKIP
        (torch.Size([3, 128, 128]), True)
    """

    def __init__(
        self,
        clean_root: str | Path,
        mix: str | Mix = "5d",
        *,
        crop: Crop = 128,
        seed: int = 0,
        length: int | None = None,
        flip: bool = False,
        layout: str | None = None,
        files: Files = None,
    ) -> None:
        self.mix = get_mix(mix) if isinstance(mix, str) else mix
        self.pairing, self.images = _clean_images(clean_root, layout, files)
        if length is not None and length < 1:
            raise UirError(f"length must be >= 1, got {length}")
        self.length = len(self.images) if length is None else int(length)
        self.crop, self.seed, self.flip, self.epoch = crop, seed, flip, 0

    def __len__(self) -> int:
        return self.length

    def set_epoch(self, epoch: int) -> None:
        """Use epoch ``epoch``'s crops and degradations from now on."""
        self.epoch = int(epoch)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not -self.length <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} samples")
        index %= self.length
        path = self.images[index % len(self.images)]
        generator = sample_generator(self.seed, index, self.epoch)
        (gt,) = _augment((load_image(path),), self.crop, self.flip, generator)
        record = self.mix.draw(generator)
        lq = apply(gt[None], record)[0]
        return {"lq": lq, "gt": gt, "label": record.type, "record": record.to_dict(), "path": str(path)}


def collate(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Batch samples: tensors are stacked, every other value (labels, paths, records) becomes a list.

    Use it as a DataLoader's ``collate_fn`` when samples carry records, whose nested lists the default
    collation cannot batch.

    Args:
        samples: dicts with the same keys; ``lq``/``gt`` ``(3, H, W)`` of one size.

    Returns:
        ``lq``/``gt`` ``(B, 3, H, W)`` and lists of length ``B``.
    """
    batch: dict[str, Any] = {}
    for key in samples[0]:
        values = [s[key] for s in samples]
        if isinstance(values[0], Tensor):
            shapes = {tuple(v.shape) for v in values}
            if len(shapes) > 1:
                raise UirError(f"samples differ in size ({sorted(shapes)}); set a crop or use batch size 1")
            batch[key] = torch.stack(values)
        else:
            batch[key] = values
    return batch
