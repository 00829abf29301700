"""Data: benchmark folder layouts, paired/noisy/synthetic datasets, and the check behind ``uir data check``.

A sample is a dict ``{"lq", "gt", "label", "path"}`` with ``lq``/``gt`` ``(3, H, W)`` float32 RGB in [0, 1]
and ``label`` a degradation name; augmentation is seeded per sample from ``(seed, index, epoch)``.

Example:
    >>> from uir.data import PairedDataset, check_folder
    >>> print(check_folder("../shared/data/derain/Rain100L").format())  # doctest: +SKIP
    >>> PairedDataset("../shared/data/derain/Rain100L")[0]["label"]  # doctest: +SKIP
    'rain-streaks'
"""

from __future__ import annotations

from uir.data.augment import paired_crop, paired_flip, reflect_pad_to, sample_generator, sample_seed
from uir.data.check import CheckReport, check_folder
from uir.data.datasets import (
    UNKNOWN_LABEL,
    NoisyDataset,
    PairedDataset,
    SyntheticDataset,
    add_noise,
    collate,
    load_image,
    noise_seed,
)
from uir.data.layouts import (
    LAYOUTS,
    Layout,
    Pair,
    Pairing,
    detect_layout,
    get_layout,
    pair_dirs,
    pair_folder,
)

__all__ = [
    "LAYOUTS",
    "UNKNOWN_LABEL",
    "CheckReport",
    "Layout",
    "NoisyDataset",
    "Pair",
    "PairedDataset",
    "Pairing",
    "SyntheticDataset",
    "add_noise",
    "check_folder",
    "collate",
    "detect_layout",
    "get_layout",
    "load_image",
    "noise_seed",
    "pair_dirs",
    "pair_folder",
    "paired_crop",
    "paired_flip",
    "reflect_pad_to",
    "sample_generator",
    "sample_seed",
]
