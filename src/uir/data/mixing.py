"""Training on several sources at once: per-source repeat factors, one deterministic, resumable, sharded order.

Every training sample is addressed by a key ``(source, index, draw)``: the source's dataset, the sample in it,
and the *draw* — the augmentation epoch the dataset uses for it (``set_epoch(draw)``), distinct for every pass
over a source, so a source seen three times per epoch gets three different crops of each image. ``MixSampler``
lists an epoch's keys from the seed alone (each source ``repeat`` times, fractions as a random subset), shuffles
them, and cuts them into global batches of ``batch_size × world_size``, rank ``r`` taking slice ``r`` (what
``DistributedSampler`` does). Batch ``k`` of the run is a pure function of ``(seed, k)``: resuming at step ``k``
needs nothing but ``k``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset, Sampler

from uir.data.augment import paired_crop, paired_flip, sample_generator, sample_seed
from uir.data.datasets import Crop, Files, _clean_images, add_noise, load_image
from uir.errors import UirError

Key = tuple[int, int, int]


class NoisyCrops(Dataset):
    """Training crops of clean images with fresh Gaussian noise per sample and draw, label ``"noise"``.

    Unlike ``NoisyDataset`` (one fixed noise per image, for testing), the noise changes with every draw, and
    ``sigma`` may be a list to pick from per sample (the 3-task recipe trains on σ ∈ {15, 25, 50}). The
    generator of sample ``i`` at draw ``e`` (``sample_seed(seed, i, e)``) gives, in order: the crop window,
    the flips, the σ choice and the noise seed.

    Args:
        clean_root: a folder of clean images (or a paired folder: its gt images are used).
        sigma: the noise level(s) on the 0..255 scale.
        crop: the crop side or ``(height, width)``; ``None`` keeps whole images.
        flip: random flips.
        seed: the data seed.
        layout: the folder's layout; ``None`` detects it.
        label: the label every sample carries.
        files: a slice ``(start, stop)`` of the sorted images; ``None`` takes all.
    """

    def __init__(
        self,
        clean_root: str | Path,
        sigma: float | Sequence[float],
        *,
        crop: Crop = 128,
        flip: bool = True,
        seed: int = 0,
        layout: str | None = None,
        label: str = "noise",
        files: Files = None,
    ) -> None:
        self.sigmas = [float(s) for s in (sigma if isinstance(sigma, Sequence) else [sigma])]
        if not self.sigmas or min(self.sigmas) < 0:
            raise UirError(f"sigma must be >= 0 (0..255 scale), got {sigma}")
        self.pairing, self.images = _clean_images(clean_root, layout, files)
        self.crop, self.flip, self.seed, self.label, self.epoch = crop, flip, seed, label, 0

    def __len__(self) -> int:
        return len(self.images)

    def set_epoch(self, epoch: int) -> None:
        """Use draw ``epoch``'s crops and noise from now on."""
        self.epoch = int(epoch)

    def __getitem__(self, index: int) -> dict[str, Any]:
        path = self.images[index]
        generator = sample_generator(self.seed, index % len(self.images), self.epoch)
        gt = load_image(path)
        if self.crop is not None:
            (gt,) = paired_crop((gt,), self.crop, generator)
        if self.flip:
            (gt,) = paired_flip((gt,), generator)
        choice = int(torch.randint(len(self.sigmas), (), generator=generator))
        noise_seed = int(torch.randint(2**62, (), generator=generator))
        lq = add_noise(gt.contiguous(), self.sigmas[choice], noise_seed)
        return {"lq": lq, "gt": gt.contiguous(), "label": self.label, "path": str(path), "sigma": self.sigmas[choice]}


class MixedDataset(Dataset):
    """Several datasets behind keys ``(source, index, draw)``, with labels turned into class indices.

    Args:
        datasets: the sources; those with ``set_epoch`` get ``set_epoch(draw)`` before each sample.
        labels: the experiment's class names; a sample's ``label`` becomes its position here (a ``long``
            tensor, so batches carry ``(B,)`` indices) and the name moves to ``task``. Samples keep only
            ``lq``, ``gt``, ``label``, ``task``, ``source`` (its index) and ``path``.
        fixed_labels: per source, a label that replaces whatever the sample carries (``None``: keep it).

    Raises:
        UirError: (when a sample is read) its label is not in ``labels``.
    """

    def __init__(
        self, datasets: Sequence[Dataset], labels: Sequence[str], fixed_labels: Sequence[str | None] | None = None
    ) -> None:
        self.datasets = list(datasets)
        self.labels = list(labels)
        self.index = {name: i for i, name in enumerate(self.labels)}
        self.fixed_labels = list(fixed_labels) if fixed_labels is not None else [None] * len(self.datasets)

    def sizes(self) -> list[int]:
        """The number of samples of each source."""
        return [len(d) for d in self.datasets]  # type: ignore[arg-type]

    def __getitem__(self, key: Key) -> dict[str, Any]:
        source, index, draw = key
        dataset = self.datasets[source]
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(draw)
        sample = dataset[index]
        name = self.fixed_labels[source] or sample["label"]
        if name not in self.index:
            raise UirError(f"a sample of source {source} has label {name!r}, not in this run's {self.labels}")
        # The keys every source has, so that samples of different sources batch together; ``record`` is None
        # where a source draws none, ``medium`` (quality tiers) only comes from tiers manifests.
        out = {
            "lq": sample["lq"],
            "gt": sample["gt"],
            "label": torch.tensor(self.index[name]),
            "task": name,
            "source": source,
            "path": sample["path"],
            "record": sample.get("record"),
        }
        if "medium" in sample:
            out["medium"] = sample["medium"]
        return out


class MixSampler(Sampler[list[Key]]):
    """Endless batches of keys for one rank, from step ``start_step`` on (a ``DataLoader`` ``batch_sampler``).

    Args:
        sizes: samples per source.
        repeats: passes per epoch per source (``0.5``: a random half each epoch; ``0``: unused).
        batch_size: samples per rank per step.
        seed: the order's seed.
        rank: this process's rank.
        world_size: the number of processes; the global batch is ``batch_size × world_size``.
        start_step: the first step to yield.

    Example:
        >>> sampler = MixSampler([3, 5], [2.0, 1.0], batch_size=2, seed=0)
        >>> sampler.epoch_size, sampler.steps_per_epoch
        (11, 5)
        >>> batch = next(iter(sampler)); len(batch), batch[0][0] in (0, 1)
        (2, True)
    """

    def __init__(
        self,
        sizes: Sequence[int],
        repeats: Sequence[float],
        *,
        batch_size: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        start_step: int = 0,
    ) -> None:
        self.sizes, self.repeats = list(sizes), list(repeats)
        if len(self.sizes) != len(self.repeats):
            raise ValueError(f"{len(self.sizes)} sizes but {len(self.repeats)} repeats")
        if not any(n > 0 and r > 0 for n, r in zip(self.sizes, self.repeats, strict=True)):
            raise UirError("the training data is empty: give a source with images and repeat > 0")
        self.batch_size, self.seed, self.rank, self.world_size = batch_size, seed, rank, world_size
        self.start_step = start_step
        self.counts = [max(1, round(r * n)) if r > 0 and n > 0 else 0 for n, r in zip(sizes, repeats, strict=True)]
        self.epoch_size = sum(self.counts)
        self.global_batch = batch_size * world_size
        self.steps_per_epoch = max(1, self.epoch_size // self.global_batch)
        self._cache: tuple[int, list[Key]] | None = None

    def position(self, step: int) -> dict[str, int]:
        """Where step ``step`` reads: ``{"epoch", "batch", "steps_per_epoch"}`` (checkpointed as a check)."""
        epoch, batch = divmod(step, self.steps_per_epoch)
        return {"epoch": epoch, "batch": batch, "steps_per_epoch": self.steps_per_epoch}

    def epoch_keys(self, epoch: int) -> list[Key]:
        """Every key of epoch ``epoch``, shuffled; cycled when shorter than one global batch."""
        keys: list[Key] = []
        for source, (n, count) in enumerate(zip(self.sizes, self.counts, strict=True)):
            passes = math.ceil(count / n) if count else 0
            generator = torch.Generator().manual_seed(sample_seed(self.seed, -1 - source, epoch))
            for p in range(passes):
                take = min(n, count - p * n)
                chosen = range(n) if take == n else sorted(torch.randperm(n, generator=generator)[:take].tolist())
                keys += [(source, i, epoch * passes + p) for i in chosen]
        generator = torch.Generator().manual_seed(sample_seed(self.seed, -1 - len(self.sizes), epoch))
        keys = [keys[i] for i in torch.randperm(len(keys), generator=generator).tolist()]
        while len(keys) < self.global_batch:
            keys += keys[: self.global_batch - len(keys)]
        return keys

    def batch(self, step: int) -> list[Key]:
        """This rank's keys at step ``step``."""
        epoch, k = divmod(step, self.steps_per_epoch)
        if self._cache is None or self._cache[0] != epoch:
            self._cache = (epoch, self.epoch_keys(epoch))
        start = k * self.global_batch + self.rank * self.batch_size
        return self._cache[1][start : start + self.batch_size]

    def __iter__(self) -> Iterator[list[Key]]:
        step = self.start_step
        while True:
            yield self.batch(step)
            step += 1
