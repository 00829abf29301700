"""Perceive-IR stage 1: train the quality perceiver on (low, medium, high) tiers (METHODS §4).

Each batch gives three tiers per sample: ``low`` = ``lq``, ``high`` = ``gt`` and ``medium`` from one of three sources
(``tiers`` in the config):

- ``manifest``: the paper's recipe. The batch carries ``medium`` (a :class:`TierDataset` reads the
  ``(low, medium, high, task, fold)`` CSV that ``uir perceive tiers`` writes: medium = output of a restorer
  trained by 2-fold cross-validation).
- ``synthetic`` **[ours]**, a cheaper stand-in, *not* the paper's recipe: the same clean crop degraded again by
  the same type and seed at ``medium_scale`` × the drawn severity (:func:`synthetic_medium`; samples without
  a degradation record, noisy or paired ones, use ``gt + medium_scale · (lq − gt)``).
- ``mixed`` **[ours]**: per sample, the manifest's medium with probability ``manifest_share``, else the synthetic
  one. A perceiver trained on restorer outputs alone can learn "made by a restorer" instead of quality (a
  degraded image that no restorer touched then reads as high; docs/RESULTS.md, Perceive-IR stage 1); a medium
  tier that is sometimes not a restorer's output weakens that shortcut. A tiers manifest holds no degradation
  record, so there the synthetic medium is the blend ``gt + medium_scale · (lq − gt)``.

Loss: cross-entropy over the 3 tiers of the scaled cosine logits, each sample weighted so that every task
(``label``) of the batch counts equally (task-balanced, on top of the sampler's source mix).

Example:
    >>> from uir.models.backbones import create_backbone
    >>> method = PerceiverTraining(create_backbone("nafnet-tiny"), ["noise", "haze"], embed_dim=8, prompt_tokens=2)
    >>> batch = {"lq": torch.rand(2, 3, 32, 32), "gt": torch.rand(2, 3, 32, 32), "label": torch.tensor([0, 1])}
    >>> loss, logs = method(batch)
    >>> sorted(logs)
    ['accuracy', 'ce']
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from uir.checkpoint import export_safetensors, read_safetensors
from uir.data import load_image, sample_generator
from uir.data.datasets import _augment
from uir.degradations import apply, draw, get_mix
from uir.errors import UirError
from uir.methods.registry import TrainedRun, method_from_checkpoint, register_method
from uir.models.backbones import create_backbone
from uir.models.frozen import ClipImageEncoder
from uir.models.heads.perceiver import TIERS, PerceiverHead, QualityPerceiver
from uir.schema import expand_path

PERCEIVER_FORMAT = "uir-quality-perceiver"
"""The ``format`` metadata of the file :func:`export_perceiver` writes (not loadable as restoration weights)."""

MANIFEST_COLUMNS = ("low", "medium", "high", "task", "fold")


@dataclass
class PerceiverConfig:
    """The ``method:`` section for ``name: perceiver``.

    Attributes:
        tiers: where ``medium`` comes from: ``synthetic`` (re-degraded at a lower severity), ``manifest``
            (the batch's ``medium``, from a tiers manifest) or ``mixed`` (per sample, one or the other).
        manifest_share: with ``mixed``, the probability that a sample's medium is the manifest's, in [0, 1].
        medium_scale: severity factor (or blend factor) of synthetic medium images, in (0, 1).
        medium_mix: the mix whose parameter overrides re-apply to synthetic medium draws (e.g. ``5d``: Gaussian
            noise only); null uses none.
        embed_dim: the joint embedding size.
        prompt_tokens: learnable tokens per tier prompt.
        clip: a local CLIP directory (``transformers``; e.g. ViT-B/32): its frozen image tower replaces
            ``model.backbone`` as the encoder, and only the head trains (the paper's setting).
    """

    name: Literal["perceiver"] = "perceiver"
    tiers: Literal["synthetic", "manifest", "mixed"] = "synthetic"
    manifest_share: float = 0.5
    medium_scale: float = 0.4
    medium_mix: str | None = None
    embed_dim: int = 64
    prompt_tokens: int = 16
    clip: str | None = None

    def check(self) -> None:
        if not 0 < self.medium_scale < 1:
            raise ValueError(f"medium_scale must be in (0, 1), got {self.medium_scale}")
        if not 0 <= self.manifest_share <= 1:
            raise ValueError(f"manifest_share must be in [0, 1], got {self.manifest_share}")
        if self.embed_dim < 2 or self.prompt_tokens < 1:
            raise ValueError("need embed_dim >= 2 and prompt_tokens >= 1")


def synthetic_medium(
    lq: Tensor, gt: Tensor, records: Sequence[Mapping[str, Any] | None] | None, *, scale: float, mix: str | None = None
) -> Tensor:
    """Medium-tier images: each clean crop re-degraded by its record's type and seed at ``scale`` × its severity.

    Args:
        lq, gt: ``(B, 3, H, W)`` in [0, 1].
        records: per sample, the degradation record dict of a synthetic source (``batch["record"]``) or ``None``;
            a sample without one gets ``gt + scale · (lq − gt)`` (for additive noise: noise of ``scale`` × sigma).
        scale: in (0, 1).
        mix: a mix name whose ``overrides`` apply to the new draw.

    Returns:
        ``(B, 3, H, W)``, deterministic given the records.

    Example:
        >>> gt = torch.zeros(1, 3, 8, 8); lq = torch.ones(1, 3, 8, 8)
        >>> synthetic_medium(lq, gt, None, scale=0.25).mean().item()
        0.25
    """
    overrides = get_mix(mix).overrides if mix else {}
    medium = gt + scale * (lq - gt)
    if records is None:
        return medium
    out = []
    for i, record in enumerate(records):
        if record is None:
            out.append(medium[i])
            continue
        redrawn = draw(record["type"], record["severity"] * scale, record["seed"], overrides.get(record["type"]))
        out.append(apply(gt[i : i + 1], redrawn)[0])
    return torch.stack(out)


def task_weights(label: Tensor) -> Tensor:
    """Per-sample weights ``(B,)`` summing to 1 such that each task present in the batch weighs the same."""
    counts = torch.bincount(label)
    weights = 1.0 / counts[label].float()
    return weights / weights.sum()


class PerceiverTraining(nn.Module):
    """Train a :class:`PerceiverHead` over a backbone's encoder (see the module docstring).

    Args:
        backbone: any uir backbone (its ``encode`` is the image encoder; its decoder stays unused).
        labels: the training data's class names (``label`` indexes them), the tasks that are balanced.
        Other arguments: the fields of :class:`PerceiverConfig`.
    """

    def __init__(
        self,
        backbone: nn.Module,
        labels: Sequence[str],
        *,
        tiers: str = "synthetic",
        medium_scale: float = 0.4,
        medium_mix: str | None = None,
        manifest_share: float = 0.5,
        embed_dim: int = 64,
        prompt_tokens: int = 16,
        clip: str | None = None,
    ) -> None:
        super().__init__()
        self.backbone, self.labels = backbone, list(labels)
        self.tiers, self.medium_scale, self.medium_mix = tiers, medium_scale, medium_mix
        self.manifest_share = manifest_share
        # A frozen CLIP tower is a plain attribute (not optimised, not saved: the config's path rebuilds it).
        self._clip: list[nn.Module] = [] if clip is None else [_load_clip(clip)]
        dims = self.encoder.feature_dims
        self.head = PerceiverHead(dims, embed_dim=embed_dim, prompt_tokens=prompt_tokens)

    @property
    def encoder(self) -> nn.Module:
        """The image encoder: the CLIP tower if configured, else the backbone."""
        return self._clip[0] if self._clip else self.backbone

    def _apply(self, fn: Callable[[Tensor], Tensor], recurse: bool = True) -> PerceiverTraining:
        super()._apply(fn, recurse)
        for module in self._clip:
            module._apply(fn, recurse)
        return self

    def medium(self, batch: Mapping[str, Any]) -> Tensor:
        """The batch's medium tier ``(B, 3, H, W)`` (``mixed``: per sample from the global torch generator)."""
        if self.tiers != "synthetic" and "medium" not in batch:
            raise UirError(f"method.tiers is {self.tiers} but the batch has no 'medium'; train on a tiers manifest")
        if self.tiers == "manifest":
            return batch["medium"]
        lq, gt = batch["lq"], batch["gt"]
        synthetic = synthetic_medium(lq, gt, batch.get("record"), scale=self.medium_scale, mix=self.medium_mix)
        if self.tiers == "synthetic":
            return synthetic
        take = (torch.rand(len(lq)) < self.manifest_share).to(lq.device)[:, None, None, None]
        return torch.where(take, batch["medium"].to(synthetic), synthetic)

    def forward(self, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        """Classify the tiers of ``batch`` (``lq``, ``gt``, ``label``; ``medium`` or ``record`` as configured).

        Returns:
            The task-balanced cross-entropy, and ``ce`` and ``accuracy`` (over the 3B tier images) detached.
        """
        lq, gt = batch["lq"], batch["gt"]
        medium = self.medium(batch).to(lq)
        images = torch.cat([lq, medium, gt])
        target = torch.arange(3, device=lq.device).repeat_interleave(len(lq))
        logits = self.head(self.encoder.encode(images))
        label = batch.get("label")
        weights = (
            task_weights(label.to(lq.device))
            if isinstance(label, Tensor)
            else torch.full_like(lq[:, 0, 0, 0], 1 / len(lq))
        )
        ce = (F.cross_entropy(logits.float(), target, reduction="none") * weights.repeat(3) / 3).sum()
        accuracy = (logits.argmax(dim=1) == target).float().mean()
        return ce, {"ce": ce.detach(), "accuracy": accuracy.detach()}

    def perceiver(self) -> QualityPerceiver:
        """The perceiver for inference, sharing this method's backbone and head."""
        return QualityPerceiver(self.encoder, self.head)


def _load_clip(path: str) -> nn.Module:
    return ClipImageEncoder(expand_path(path, "method.clip"))


def build_perceiver(backbone: nn.Module, config: PerceiverConfig, *, labels: Sequence[str]) -> PerceiverTraining:
    """The registry's builder; ``labels`` are the training data's class names (``uir.build`` passes them)."""
    return PerceiverTraining(backbone, labels, **{k: v for k, v in asdict(config).items() if k != "name"})


class TierDataset(Dataset):
    """The tiers of a manifest CSV (columns ``low, medium, high, task, fold``; paths relative to the CSV).

    Sample ``i`` crops the three images at one window drawn from ``sample_generator(seed, i, epoch)``.

    Args:
        manifest: the CSV file.
        crop: the crop side; ``None`` keeps whole images.
        flip: random flips (the same for the three).
        seed: the data seed.
        folds: the folds to keep; ``None`` keeps all.

    Example:
        >>> ds = TierDataset("runs/tiers/manifest.csv", crop=64)  # doctest: +SKIP
        >>> sorted(ds[0])  # doctest: +SKIP
        ['gt', 'label', 'lq', 'medium', 'path']
    """

    def __init__(
        self,
        manifest: str | Path,
        *,
        crop: int | None = 128,
        flip: bool = False,
        seed: int = 0,
        folds: Iterable[int] | None = None,
    ) -> None:
        self.manifest = Path(manifest)
        self.rows = read_manifest(self.manifest)
        if folds is not None:
            keep = set(folds)
            self.rows = [r for r in self.rows if int(r["fold"]) in keep]
        if not self.rows:
            raise UirError(f"{self.manifest}: no rows (folds {folds})")
        self.labels = list(dict.fromkeys(row["task"] for row in self.rows))
        self.label = self.labels[0]
        self.crop, self.flip, self.seed, self.epoch = crop, flip, seed, 0

    def __len__(self) -> int:
        return len(self.rows)

    def set_epoch(self, epoch: int) -> None:
        """Use epoch ``epoch``'s crops from now on."""
        self.epoch = int(epoch)

    def __getitem__(self, index: int) -> dict[str, Any]:
        row = self.rows[index]
        root = self.manifest.parent
        images = tuple(load_image(root / row[k]) for k in ("low", "medium", "high"))
        shapes = {tuple(x.shape) for x in images}
        if len(shapes) > 1:
            raise UirError(f"{self.manifest}: row {index} has tiers of different sizes {sorted(shapes)}")
        generator = sample_generator(self.seed, index, self.epoch)
        low, medium, high = _augment(images, self.crop, self.flip, generator)
        return {"lq": low, "medium": medium, "gt": high, "label": row["task"], "path": str(root / row["low"])}


def read_manifest(path: str | Path) -> list[dict[str, str]]:
    """The rows of a tiers manifest; a missing file or column is an error that names it."""
    path = Path(path)
    if not path.is_file():
        raise UirError(f"{path}: no tiers manifest there; write one with `uir perceive tiers`")
    with path.open(newline="") as file:
        reader = csv.DictReader(file)
        missing = set(MANIFEST_COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise UirError(f"{path}: the manifest lacks column(s) {sorted(missing)}; need {list(MANIFEST_COLUMNS)}")
        return list(reader)


@torch.no_grad()
def tier_accuracy(perceiver: nn.Module, samples: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """Share of correctly ranked tier images per task, and ``all``, over held-out ``{lq, medium, gt, label}``.

    Args:
        perceiver: a :class:`QualityPerceiver` (``(B, 3, H, W) -> (B, 3)`` logits).
        samples: dicts with ``lq``, ``medium``, ``gt`` ``(B, 3, H, W)`` and ``label`` (a task name or list).
    """
    hits: dict[str, list[float]] = {}
    for sample in samples:
        images = torch.cat([sample["lq"], sample["medium"], sample["gt"]])
        count = len(sample["lq"])
        correct = perceiver(images).argmax(dim=1).cpu() == torch.arange(3).repeat_interleave(count)
        tasks = sample["label"] if isinstance(sample["label"], list) else [sample["label"]] * count
        for i, task in enumerate(tasks * 3):
            hits.setdefault(task, []).append(float(correct[i]))
    result = {task: sum(v) / len(v) for task, v in hits.items()}
    every = [h for v in hits.values() for h in v]
    return {**result, "all": sum(every) / max(len(every), 1)}


def _checkpoint_path(path: str | Path) -> Path:
    path = Path(path)
    return path / "last.ckpt" if path.is_dir() else path


def _load_run(path: Path) -> TrainedRun:
    return method_from_checkpoint(path, "perceiver", "a perceiver training")


def export_perceiver(run: str | Path, path: str | Path | None = None) -> Path:
    """Write a perceiver run's encoder and head as one safetensors file (default ``perceiver.safetensors``).

    Example:
        >>> export_perceiver("runs/perceiver_tiers")  # doctest: +SKIP
        PosixPath('runs/perceiver_tiers/perceiver.safetensors')
    """
    checkpoint = _checkpoint_path(run)
    run = _load_run(checkpoint)
    method, config = run.method, run.config
    state = {f"head.{k}": v for k, v in method.head.state_dict().items()}
    if config.clip is None:
        state |= {f"backbone.{k}": v for k, v in method.backbone.state_dict().items()}
    head = {"embed_dim": config.embed_dim, "prompt_tokens": config.prompt_tokens}
    metadata = {"format": PERCEIVER_FORMAT, "backbone": run.backbone, "overrides": run.overrides}
    metadata |= {"head": head, "tiers": list(TIERS), "clip": config.clip}
    return export_safetensors(path or checkpoint.with_name("perceiver.safetensors"), state, metadata)


def load_perceiver(path: str | Path) -> QualityPerceiver:
    """A trained perceiver, in eval mode, from :func:`export_perceiver`'s file or a run folder/checkpoint.

    Example:
        >>> perceiver = load_perceiver("runs/perceiver_tiers")  # doctest: +SKIP
        >>> perceiver.perceive(lq)  # doctest: +SKIP
        {'low': 0.93, 'medium': 0.06, 'high': 0.01}
    """
    path = Path(path)
    if path.suffix != ".safetensors":
        return _load_run(_checkpoint_path(path)).method.perceiver().eval()
    meta, state = read_safetensors(path)
    if meta.get("format") != PERCEIVER_FORMAT:
        raise UirError(f"{path}: not a quality perceiver (made by export_perceiver)")
    head, overrides, tiers = (json.loads(meta[k]) for k in ("head", "overrides", "tiers"))
    clip = json.loads(meta.get("clip", "null"))
    encoder = create_backbone(meta["backbone"], **overrides) if clip is None else _load_clip(clip)
    perceiver = QualityPerceiver(encoder, PerceiverHead(encoder.feature_dims, **head), tiers)
    if clip is None:
        perceiver.load_state_dict(state)
    else:  # the frozen CLIP tower comes from its directory, the file holds the head
        perceiver.head.load_state_dict({k.removeprefix("head."): v for k, v in state.items()})
    return perceiver.eval()


register_method("perceiver", PerceiverConfig, build_perceiver)
