"""Perceive-IR stage 1 data: (low, medium, high) quality tiers by 2-fold cross-validation (METHODS §4).

Low = a degraded image, high = its clean image, medium = the output of a restorer that never saw it:

1. Every sample of a training config's sources (whole images, the config's seed) is written out as a pair and
   assigned fold ``sha1(file name) mod 2`` (the clean image's name for synthetic and noisy sources, so all draws of
   one photo share a fold and no restorer sees the photo it renders; the name, not the path, so the split is the
   same wherever the data lies).
2. For each fold ``k``, a restorer is trained with :func:`uir.train.train` on the pairs of the other fold: the
   config's model, method and optimiser, ``iterations`` steps, one ``paired`` source per task; then it renders
   fold ``k``'s degraded images.
3. ``manifest.csv`` lists ``low, medium, high, task, fold`` (paths relative to the output folder), what
   :class:`~uir.methods.perceiver.TierDataset` and the ``kind: tiers`` data source read.

Output folder: ``pairs/{fold}/{task}/lq|gt/{name}.png``, ``medium/{name}.png``, ``runs/fold{k}/`` (the
restorers, trained on fold ``k``), ``manifest.csv``. An interrupted call resumes the restorers' runs.

Example:
    >>> from uir.config import load_config
    >>> cfg = load_config("configs/nafnet_cpu_5d.yaml")  # doctest: +SKIP
    >>> make_tiers(cfg, "runs/tiers", iterations=2000)  # doctest: +SKIP
    PosixPath('runs/tiers/manifest.csv')
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from uir.build import build_source
from uir.config import Config, config_from_dict, to_dict
from uir.data import load_image
from uir.distributed import resolve_device
from uir.errors import UirError
from uir.io import write_image, write_text
from uir.methods.perceiver import MANIFEST_COLUMNS
from uir.methods.quality_aware import load_restorer
from uir.train import train

logger = logging.getLogger(__name__)

FOLDS = 2


def fold_of(name: str, folds: int = FOLDS) -> int:
    """The fold of a sample: ``sha1(name) mod folds`` (stable across runs, machines and Python versions).

    Example:
        >>> fold_of("clean/0001.png"), fold_of("clean/0002.png")
        (0, 1)
    """
    return int(hashlib.sha1(name.encode()).hexdigest(), 16) % folds


@dataclass
class TierSample:
    """One written pair: its file ``name`` (``{source}_{index}.png``), task, fold and clean image's path."""

    name: str
    task: str
    fold: int
    path: str

    def pair(self, kind: str) -> str:
        """The low (``lq``) or high (``gt``) file, relative to the output folder."""
        return f"pairs/{self.fold}/{self.task}/{kind}/{self.name}"


def write_pairs(cfg: Config, out: Path, *, limit: int | None = None) -> list[TierSample]:
    """Write every sample of ``cfg.data.sources`` (the first ``limit`` of each) as whole-image pairs under ``out``."""
    samples = []
    for i, source in enumerate(cfg.data.sources):
        dataset = build_source(source, f"data.sources.{i}", crop=None, flip=False, seed=cfg.train.seed)
        count = len(dataset) if limit is None else min(limit, len(dataset))  # type: ignore[arg-type]
        for index in range(count):
            item = dataset[index]
            task = source.label or item["label"]
            sample = TierSample(f"{i}_{index:05d}.png", task, fold_of(Path(item["path"]).name), item["path"])
            for kind in ("lq", "gt"):
                write_image(out / sample.pair(kind), item[kind][None], overwrite=True)
            samples.append(sample)
    logger.info("tiers: %d samples written to %s", len(samples), out / "pairs")
    return samples


def fold_config(cfg: Config, out: Path, fold: int, tasks: list[str], iterations: int | None) -> Config:
    """``cfg`` training on fold ``fold``'s pairs only (one paired source per task), no validation."""
    raw = to_dict(cfg)
    root = out / "pairs" / str(fold)
    raw["data"]["sources"] = [
        {"kind": "paired", "root": str(root / task), "layout": "paired", "label": task}
        for task in tasks
        if (root / task).is_dir()
    ]
    raw["val"]["sources"] = []
    raw["train"] |= {"val_every": 0, "ckpt_every": 0, "out_dir": str(out / "runs"), "run": f"fold{fold}"}
    if iterations is not None:
        warmup = min(raw["optim"]["warmup_iters"], iterations - 1)
        raw["optim"] |= {"total_iters": iterations, "warmup_iters": warmup}
    return config_from_dict(raw, where=f"the fold-{fold} config")


@torch.no_grad()
def render(restorer: torch.nn.Module, samples: list[TierSample], out: Path, device: torch.device) -> None:
    """Write ``restorer``'s output on each sample's low image to ``out/medium/{name}``."""
    restorer.to(device)
    for sample in samples:
        lq = load_image(out / sample.pair("lq"))[None].to(device)
        write_image(out / "medium" / sample.name, restorer(lq).clamp(0, 1).cpu(), overwrite=True)


def make_tiers(
    cfg: Config, out_dir: str | Path, *, iterations: int | None = None, limit: int | None = None, progress: bool = True
) -> Path:
    """Write the tiers of ``cfg``'s training data by 2-fold cross-validation (module docstring); the manifest's path.

    Args:
        cfg: a restorer training config: its sources are the samples, its model/method/optim train each fold.
        out_dir: the output folder.
        iterations: training steps per fold (default: ``cfg.optim.total_iters``).
        limit: at most this many samples per source.
        progress: the training progress bars.

    Raises:
        UirError: a fold without samples (too few images), or what training raises.
    """
    if iterations is not None and iterations < 1:
        raise UirError(f"iterations must be at least 1, got {iterations}")
    out = Path(out_dir)
    samples = write_pairs(cfg, out, limit=limit)
    tasks = list(dict.fromkeys(s.task for s in samples))
    folds = [[s for s in samples if s.fold == k] for k in range(FOLDS)]
    empty = [k for k, fold in enumerate(folds) if not fold]
    if empty:
        raise UirError(f"fold {empty[0]} has no samples ({len(samples)} in all); give more images")
    device = resolve_device(cfg.train.device)
    for fold, held_out in enumerate(folds):
        trained_on = 1 - fold
        run = out / "runs" / f"fold{trained_on}"
        fold_cfg = fold_config(cfg, out, trained_on, tasks, iterations)
        logger.info("tiers: training on fold %d (%d samples) in %s", trained_on, len(folds[trained_on]), run)
        result = train(fold_cfg, run, resume=(run / "last.ckpt").is_file(), progress=progress)
        if not result.finished:
            raise UirError(f"{run}: the fold restorer did not finish training")
        render(load_restorer(str(run)), held_out, out, device)
    return write_manifest(out, samples)


def write_manifest(out: Path, samples: list[TierSample]) -> Path:
    """``out/manifest.csv``: one row ``low, medium, high, task, fold`` per sample, paths relative to ``out``."""
    lines = [",".join(MANIFEST_COLUMNS)]
    for s in samples:
        row = (s.pair("lq"), f"medium/{s.name}", s.pair("gt"), s.task, str(s.fold))
        if any("," in value or '"' in value for value in row):
            raise UirError(f"task name {s.task!r}: commas and quotes cannot go in the manifest")
        lines.append(",".join(row))
    return write_text(out / "manifest.csv", "\n".join(lines) + "\n", overwrite=True)


__all__ = ["FOLDS", "TierSample", "fold_of", "fold_config", "make_tiers", "render", "write_manifest", "write_pairs"]
