"""The only code that turns a ``Config`` into objects: backbone, method, data, optimizer and schedule.

Everything here takes typed config sections and calls constructors whose keyword arguments carry the same
names; nothing else in uir reads a config.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import math
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import cv2
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from uir import degradations
from uir.checkpoint import load_checkpoint, read_safetensors, weights_from_safetensors
from uir.config import (
    Config,
    DataConfig,
    ModelConfig,
    OptimConfig,
    SourceConfig,
    ValConfig,
    expand_path,
)
from uir.data import NoisyDataset, PairedDataset, SyntheticDataset, collate, sample_seed
from uir.data.mixing import MixedDataset, MixSampler, NoisyCrops
from uir.degradations import Mix
from uir.errors import UirError
from uir.methods import get_method
from uir.methods.maskdcpt import CLASSIFIER_FORMAT
from uir.methods.perceiver import PERCEIVER_FORMAT, TierDataset
from uir.models.backbones import create_backbone

logger = logging.getLogger(__name__)

# The seed of validation crops and synthetic validation draws: fixed, so runs of any seed compare.
VAL_SEED = 0


def build_backbone(model: ModelConfig, *, init: bool = True) -> nn.Module:
    """``create_backbone(model.backbone, **model.overrides)``, with the weights of ``model.init`` if set.

    Args:
        init: load ``model.init``; a resumed run passes False (its checkpoint holds the weights, and the
            pre-training file need not exist any more).
    """
    backbone = create_backbone(model.backbone, **model.overrides)
    if init and model.init is not None:
        load_init(backbone, model.init)
    return backbone


def load_init(backbone: nn.Module, init: str) -> None:
    """Load pre-trained weights into ``backbone``: a run folder or checkpoint's ``backbone``, or a ``.safetensors``
    (restoration weights, or the backbone of a MaskDCPT classifier or quality-perceiver export, e.g. the shipped
    ``classifier-5d`` as a degradation-aware encoder).

    A backbone with ``base_state`` (``nafnet-ftb-*``) also takes the weights of the network it wraps (``nafnet-*``
    of the same size); its own extra parts keep their initialisation.

    Raises:
        UirError: an unreadable file, or weights that do not fit (missing, unexpected or reshaped keys).
    """
    path = expand_path(init, "model.init")
    path = path / "last.ckpt" if path.is_dir() else path
    if not path.is_file():
        raise UirError(f"model.init: {path} does not exist; give a run folder, its last.ckpt or a .safetensors export")
    try:
        if path.suffix != ".safetensors":
            state = load_checkpoint(path)["backbone"]
        else:
            meta, tensors = read_safetensors(path)
            if meta.get("format") in (CLASSIFIER_FORMAT, PERCEIVER_FORMAT):  # its encoder: the backbone.* tensors
                state = {k.removeprefix("backbone."): v for k, v in tensors.items() if k.startswith("backbone.")}
            else:
                state = weights_from_safetensors(path, meta, tensors).state
    except UirError as err:
        raise UirError(f"model.init: {err}") from err
    adapt = getattr(backbone, "base_state", None)
    mapped = adapt(state) if adapt is not None else None
    if mapped is not None:  # the weights of the network it wraps (e.g. nafnet-cpu's into nafnet-ftb-cpu)
        backbone.load_state_dict(mapped, strict=False)
        fresh = len(backbone.state_dict()) - len(mapped)
        logger.info(
            "model.init: loaded %d tensors of its base network from %s (%d start fresh)", len(mapped), path, fresh
        )
        return
    own = backbone.state_dict()
    problems = {
        "missing": [k for k in own if k not in state],
        "unexpected": [k for k in state if k not in own],
        "reshaped": [k for k in own if k in state and state[k].shape != own[k].shape],
    }
    found = [
        f"{len(keys)} {kind} ({', '.join(keys[:3])}{', ...' if len(keys) > 3 else ''})"
        for kind, keys in problems.items()
        if keys
    ]
    if found:
        raise UirError(
            f"model.init: {path} does not fit this backbone: {'; '.join(found)} keys; "
            "use the model.backbone and model.overrides of the run that made it"
        )
    backbone.load_state_dict(state)
    logger.info("model.init: loaded %d backbone tensors from %s", len(state), path)


def build_method(cfg: Config, backbone: nn.Module) -> nn.Module:
    """The method named by ``cfg.method.name``, owning ``backbone``.

    A method whose builder takes ``labels`` (a classifier, e.g. ``maskdcpt``) gets the training data's class
    names, ``build_train_data(cfg.data, ...).labels``: the order of the batches' ``label`` indices.
    """
    spec = get_method(cfg.method.name)
    if "labels" in inspect.signature(spec.build).parameters:
        return spec.build(backbone, cfg.method, labels=build_train_data(cfg.data, cfg.train.seed).labels)
    return spec.build(backbone, cfg.method)


def _source_seed(seed: int, index: int) -> int:
    """Each source its own augmentation stream, so sample ``i`` of two sources is not cropped alike."""
    return sample_seed(seed, index, -1)


def source_mix(source: SourceConfig) -> Mix:
    """The mix of a synthetic source: its named mix, narrowed to ``types`` and ``severity`` and with ``params``
    fixed where set."""
    assert source.mix is not None
    mix = degradations.get_mix(source.mix)
    if source.types is None and source.severity is None and source.params is None:
        return mix
    weights = dict(mix.weights)
    if source.types is not None:
        unknown = [t for t in source.types if t not in mix.weights]
        if unknown:
            raise UirError(f"types {', '.join(unknown)} are not in mix {mix.name!r} ({', '.join(mix.weights)})")
        weights = {t: mix.weights[t] for t in dict.fromkeys(source.types)}
    severity = mix.severity if source.severity is None else source.severity
    name = mix.name + (f":{'+'.join(weights)}" if source.types is not None else "")
    return degradations.Mix(name, weights, severity, _fixed_params(mix.overrides, weights, source.params or {}))


def _fixed_params(
    overrides: Mapping[str, Mapping[str, Mapping[str, Any]]],
    types: Mapping[str, float],
    params: Mapping[str, Mapping[str, Any]],
) -> dict[str, dict[str, dict[str, Any]]]:
    """A mix's per-type overrides with a source's per-op ``params`` laid over them, in every type having the op."""
    merged = {t: {op: dict(values) for op, values in ops.items()} for t, ops in overrides.items()}
    for op, values in params.items():
        having = [t for t in types if op in degradations.get_type(t).ops]
        if not having:
            raise UirError(f"params: no type of the mix ({', '.join(types)}) has an op {op!r}")
        fields = {f.name for f in dataclasses.fields(degradations.OPS[op].params_type)}
        unknown = sorted(set(values) - fields)
        if unknown:
            raise UirError(
                f"params: op {op!r} has no parameter(s) {', '.join(unknown)}; it has {', '.join(sorted(fields))}"
            )
        for t in having:
            merged.setdefault(t, {}).setdefault(op, {}).update(values)
    return merged


def build_source(source: SourceConfig, key: str, *, crop: int | None, flip: bool, seed: int) -> Dataset:
    """One training source (random crops, flips, fresh noise and degradations per draw)."""
    root = expand_path(source.root, f"{key}.root")
    try:
        if source.kind == "paired":
            return PairedDataset(root, source.layout, source.label, crop=crop, flip=flip, seed=seed, files=source.files)
        if source.kind == "noisy":
            assert source.sigma is not None
            label = source.label or "noise"
            return NoisyCrops(
                root,
                source.sigma,
                crop=crop,
                flip=flip,
                seed=seed,
                layout=source.layout,
                label=label,
                files=source.files,
            )
        if source.kind == "tiers":
            return TierDataset(root, crop=crop, flip=flip, seed=seed)
        return SyntheticDataset(
            root,
            source_mix(source),
            crop=crop,
            seed=seed,
            length=source.length,
            flip=flip,
            layout=source.layout,
            files=source.files,
        )
    except UirError as err:
        raise UirError(f"{key}: {err}") from err


def source_labels(source: SourceConfig, dataset: Dataset) -> list[str]:
    """The labels a training source produces: its fixed label, or its mix's types."""
    if source.kind == "synthetic" and source.label is None:
        return [name for name, weight in dataset.mix.weights.items() if weight > 0]  # type: ignore[attr-defined]
    if source.kind == "tiers" and source.label is None:
        return list(dataset.labels)  # type: ignore[attr-defined]
    return [source.label or dataset.label]  # type: ignore[attr-defined]


@dataclass
class TrainData:
    """The training sources behind one ``MixedDataset``, their repeat factors and the class names."""

    dataset: MixedDataset
    repeats: list[float]
    labels: list[str]


def build_train_data(data: DataConfig, seed: int) -> TrainData:
    """Datasets for every source, mixed; ``labels`` lists the classes in order of first appearance."""
    datasets, labels = [], []
    for i, source in enumerate(data.sources):
        key = f"data.sources.{i}"
        dataset = build_source(source, key, crop=data.crop, flip=data.flip, seed=_source_seed(seed, i))
        datasets.append(dataset)
        labels += [name for name in source_labels(source, dataset) if name not in labels]
        logger.info("%s: %s, %d samples x %g per epoch", key, source.root, len(dataset), source.repeat)
    fixed = [s.label if s.kind in ("synthetic", "tiers") else None for s in data.sources]
    return TrainData(MixedDataset(datasets, labels, fixed), [s.repeat for s in data.sources], labels)


def _leave_stop_signals_to_the_main_process(worker_id: int) -> None:
    """A loader worker's init: one OpenCV thread; ignore SIGTERM and Ctrl-C, which the training loop turns into
    "checkpoint and stop".

    Ctrl-C in a terminal, ``kill -- -PGID`` and cluster schedulers signal the whole process group; a worker killed
    by the signal makes torch raise in the main process mid-step, before it can save. Ignoring them, the workers
    run until the loop has finished its step and checkpointed, then exit with the loader (or, should the main
    process die, with their parent watchdog).
    """
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # One thread per worker: OpenCV's own pool (one thread per core by default) in each of N workers oversubscribes
    # the machine N-fold and starves a GPU of batches. torch already runs a worker on one thread.
    cv2.setNumThreads(1)


def build_loader(
    train_data: TrainData,
    data: DataConfig,
    *,
    seed: int,
    rank: int = 0,
    world_size: int = 1,
    start_step: int = 0,
    pin_memory: bool = False,
) -> tuple[DataLoader, MixSampler]:
    """An endless loader of this rank's batches from ``start_step``, and its sampler."""
    sampler = MixSampler(
        train_data.dataset.sizes(),
        train_data.repeats,
        batch_size=data.batch_size,
        seed=seed,
        rank=rank,
        world_size=world_size,
        start_step=start_step,
    )
    loader = DataLoader(
        train_data.dataset,
        batch_sampler=sampler,
        num_workers=data.num_workers,
        collate_fn=collate,
        pin_memory=pin_memory,
        persistent_workers=data.num_workers > 0,
        # Worker seeds come from this generator, not from the global one the training step may use.
        generator=torch.Generator().manual_seed(seed),
        worker_init_fn=_leave_stop_signals_to_the_main_process if data.num_workers > 0 else None,
    )
    return loader, sampler


def _center_crop(x: torch.Tensor, size: int | None) -> torch.Tensor:
    if size is None:
        return x
    h, w = x.shape[-2:]
    top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return x[..., top : top + size, left : left + size]


def _val_datasets(source: SourceConfig, key: str, val: ValConfig) -> list[Dataset]:
    """A paired or noisy source's first ``max_images``; per type of a synthetic source's mix, ``length`` samples."""
    from torch.utils.data import Subset

    root = expand_path(source.root, f"{key}.root")
    try:
        if source.kind == "paired":
            dataset: Dataset = PairedDataset(root, source.layout, source.label, files=source.files)
        elif source.kind == "tiers":
            dataset = TierDataset(root, crop=None)
        elif source.kind == "noisy":
            if isinstance(source.sigma, list):
                raise UirError("a validation noisy source takes one sigma; add one source per sigma")
            assert source.sigma is not None
            label = source.label or "noise"
            dataset = NoisyDataset(root, source.sigma, layout=source.layout, label=label, files=source.files)
        else:
            mix = source_mix(source)
            count = source.length or val.max_images
            # One single-type mix per type, so that every task gets its samples.
            singles = [Mix(f"{mix.name}:{t}", {t: 1.0}, mix.severity, mix.overrides) for t in mix.weights]
            kwargs = {
                "crop": val.crop,
                "seed": VAL_SEED,
                "length": count,
                "layout": source.layout,
                "files": source.files,
            }
            return [SyntheticDataset(root, single, **kwargs) for single in singles]
    except UirError as err:
        raise UirError(f"{key}: {err}") from err
    return [Subset(dataset, range(min(val.max_images, len(dataset))))]  # type: ignore[arg-type]


def build_val_set(val: ValConfig) -> list[dict[str, Any]]:
    """The fixed validation samples: ``{"group", "lq", "gt"}`` with ``(1, 3, H, W)`` tensors.

    The first ``max_images`` samples of each paired or noisy source, and ``length`` (default ``max_images``)
    samples of each type of a synthetic source's mix, centre-cropped to ``val.crop``; ``group`` (the task PSNR
    is reported for) is the source's ``label`` or the sample's own.
    """
    samples = []
    for i, source in enumerate(val.sources):
        for dataset in _val_datasets(source, f"val.sources.{i}", val):
            for index in range(len(dataset)):  # type: ignore[arg-type]
                sample = dataset[index]
                group = source.label or sample["label"]
                lq, gt = (_center_crop(sample[k], val.crop)[None] for k in ("lq", "gt"))
                samples.append({"group": group, "lq": lq, "gt": gt})
    return samples


def build_optimizer(method: nn.Module, optim: OptimConfig) -> torch.optim.AdamW:
    """AdamW over the trainable parameters; weight decay only on weights of 2+ dimensions (not biases, norms)."""
    params = [p for p in method.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": optim.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    groups = [g for g in groups if g["params"]]
    return torch.optim.AdamW(groups, lr=optim.lr, betas=optim.betas, weight_decay=optim.weight_decay)


class WarmupCosine:
    """The learning-rate factor at iteration ``it``: linear warm-up to 1, then cosine decay to ``min_ratio``.

    ``(it + 1) / warmup_iters`` for ``it < warmup_iters``, then ``min_ratio + (1 - min_ratio) · (1 + cos(π·p)) / 2``
    with ``p`` going from 0 to 1 over the remaining iterations. A callable object (not a lambda), so that
    ``LambdaLR.state_dict`` keeps its plain attributes.

    Example:
        >>> schedule = WarmupCosine(warmup_iters=2, total_iters=10, min_ratio=0.0)
        >>> [round(schedule(i), 3) for i in (0, 1, 2, 6, 10)]
        [0.5, 1.0, 1.0, 0.5, 0.0]
    """

    def __init__(self, warmup_iters: int, total_iters: int, min_ratio: float) -> None:
        self.warmup_iters, self.total_iters, self.min_ratio = warmup_iters, total_iters, min_ratio

    def __call__(self, it: int) -> float:
        if it < self.warmup_iters:
            return (it + 1) / self.warmup_iters
        progress = min(1.0, (it - self.warmup_iters) / max(1, self.total_iters - self.warmup_iters))
        return self.min_ratio + (1 - self.min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def build_scheduler(optimizer: torch.optim.Optimizer, optim: OptimConfig) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-iteration ``LambdaLR`` with ``WarmupCosine`` (call ``step()`` after every optimizer step)."""
    schedule = WarmupCosine(optim.warmup_iters, optim.total_iters, optim.min_lr / optim.lr)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)


def retarget_scheduler(scheduler: torch.optim.lr_scheduler.LambdaLR, optim: OptimConfig) -> None:
    """Make a restored scheduler follow ``optim`` (lr, warm-up, total, floor) from its current iteration on.

    A checkpoint's scheduler carries the schedule it was saved with; resuming with a longer ``total_iters`` or
    another ``lr`` must follow the new config. With an unchanged config this changes nothing, bit for bit.
    """
    schedule = WarmupCosine(optim.warmup_iters, optim.total_iters, optim.min_lr / optim.lr)
    groups = scheduler.optimizer.param_groups
    scheduler.lr_lambdas = [schedule] * len(groups)
    scheduler.base_lrs = [optim.lr] * len(groups)
    for group in groups:
        group["initial_lr"] = optim.lr
        group["lr"] = optim.lr * schedule(scheduler.last_epoch)
