"""Typed, strict experiment configs: YAML → nested dataclasses, with ``--set key=value`` overrides.

A config file has the sections of ``Config``; every key is a field of a dataclass below (or, for ``method``,
of the dataclass the method registers in ``uir.methods``). Unknown keys, missing required keys and values of
the wrong type are one-line ``UirError``s naming the key path. Paths may use ``${VAR}`` or ``${VAR:-default}``
(expanded by ``expand_path`` when the path is used, so the saved config stays portable).

Example:
    >>> from uir.config import load_config, to_dict
    >>> cfg = load_config("configs/tiny_test.yaml", ["optim.lr=1e-3", "data.sources.0.repeat=2"])  # doctest: +SKIP
    >>> to_dict(cfg)["optim"]["lr"]  # doctest: +SKIP
    0.001
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from uir.errors import UirError
from uir.io import write_text
from uir.methods import get_method
from uir.schema import ConfigError, copy_plain, describe_value, parse, parse_yaml, to_plain
from uir.schema import expand_path as expand_path  # re-exported: config paths are expanded with it

SourceKind = Literal["paired", "noisy", "synthetic", "tiers"]


@dataclass
class ModelConfig:
    """The backbone: a preset of ``uir.models.backbones``, keyword overrides of its arguments, initial weights.

    Attributes:
        backbone: preset name (``nafnet-cpu``, ``nafnet-tiny``, ``restormer-tiny``...).
        overrides: keyword arguments of ``create_backbone`` on top of the preset, e.g. ``{width: 16}``.
        init: start from pre-trained backbone weights (fine-tuning): a run folder or its ``last.ckpt`` (the
            ``backbone`` entry; a method's heads, e.g. MaskDCPT's classifier, are dropped), or an exported
            ``.safetensors``; every key must fit. Null starts from random weights.
    """

    backbone: str = "nafnet-cpu"
    overrides: dict[str, Any] = field(default_factory=dict)
    init: str | None = None


@dataclass
class SourceConfig:
    """One data source.

    Attributes:
        kind: ``paired`` (lq/gt folder), ``noisy`` (clean images + Gaussian noise of ``sigma``), ``synthetic``
            (clean images degraded by a draw from ``mix``) or ``tiers`` (a Perceive-IR tiers manifest: low, medium,
            high images per row; written by ``uir perceive tiers``).
        root: the folder (for ``tiers``: the ``manifest.csv``); ``${UIR_DATA_ROOT}/...`` is expanded.
        layout: the folder layout (``uir.data.LAYOUTS``); null detects it.
        label: the degradation name of its samples; null takes the layout's (paired), ``noise`` (noisy), the
            drawn type (synthetic) or the row's task (tiers).
        sigma: noise level(s) on the 0..255 scale (noisy only); a list draws one per training sample.
        mix: a mix of ``uir.degradations.MIXES`` (synthetic only).
        types: keep only these types of the mix, at their weights in it (synthetic only): a fine-tune that
            works on some tasks, e.g. ``[haze, motion-blur]`` of ``5d`` (its overrides kept); null keeps all.
        severity: ``[low, high]``, the range the severities are drawn from, uniformly (synthetic only); null
            keeps the mix's (0.1 to 1.0 for the named mixes).
        length: samples per pass (synthetic only; default one per image).
        params: per op, parameter values that replace the drawn ones in every type of the mix that has that op
            (synthetic only), e.g. ``{camera-noise: {quality: 0}}``: the camera's grain without its JPEG.
        repeat: how many times per epoch the source is seen (training); fractions take a random subset.
        files: ``[start, stop]``, a slice of the folder's sorted images (pairs), to hold some out: train on
            ``[0, 400]`` and validate on ``[400, 432]``; null takes them all.
    """

    kind: SourceKind
    root: str
    layout: str | None = None
    label: str | None = None
    sigma: float | list[float] | None = None
    mix: str | None = None
    types: list[str] | None = None
    severity: tuple[float, float] | None = None
    length: int | None = None
    params: dict[str, dict[str, Any]] | None = None
    repeat: float = 1.0
    files: tuple[int, int] | None = None

    def check(self) -> None:
        if self.files is not None and not 0 <= self.files[0] < self.files[1]:
            raise ValueError(f"files must be [start, stop] with 0 <= start < stop, got {list(self.files)}")
        if self.kind == "noisy" and self.sigma is None:
            raise ValueError("a noisy source needs sigma (0..255 scale)")
        if self.kind != "noisy" and self.sigma is not None:
            raise ValueError(f"sigma is for noisy sources, not {self.kind}")
        if self.kind == "synthetic" and self.mix is None:
            raise ValueError("a synthetic source needs a mix (e.g. 5d, 3d, all)")
        if self.kind == "tiers" and (self.layout is not None or self.files is not None):
            raise ValueError("layout and files are not for tiers sources (root is the manifest)")
        synthetic_only = (self.mix, self.types, self.severity, self.length, self.params)
        if self.kind != "synthetic" and any(v is not None for v in synthetic_only):
            raise ValueError(f"mix, types, severity, length and params are for synthetic sources, not {self.kind}")
        if self.types is not None and not self.types:
            raise ValueError("types must name at least one degradation type (or be null for all of the mix)")
        if self.severity is not None and not 0.0 <= self.severity[0] <= self.severity[1] <= 1.0:
            raise ValueError(f"severity must be [low, high] with 0 <= low <= high <= 1, got {list(self.severity)}")
        sigmas = self.sigma if isinstance(self.sigma, list) else [self.sigma or 0.0]
        if not sigmas or min(sigmas) < 0:
            raise ValueError(f"sigma must be >= 0 (or a non-empty list of such), got {self.sigma}")
        if self.length is not None and self.length < 1:
            raise ValueError(f"length must be >= 1, got {self.length}")
        if not self.repeat >= 0:
            raise ValueError(f"repeat must be >= 0, got {self.repeat}")


@dataclass
class DataConfig:
    """Training data: sources mixed with their repeat factors, random crops and flips, batching."""

    sources: list[SourceConfig] = field(default_factory=list)
    crop: int = 128
    flip: bool = True
    batch_size: int = 8
    num_workers: int = 0

    def check(self) -> None:
        if not self.sources or not any(s.repeat > 0 for s in self.sources):
            raise ValueError("give at least one source with repeat > 0")
        if self.crop < 8 or self.batch_size < 1 or self.num_workers < 0:
            raise ValueError("crop must be >= 8, batch_size >= 1 and num_workers >= 0")


@dataclass
class OptimConfig:
    """AdamW with a linear warm-up then cosine decay to ``min_lr``, gradient clipping and EMA weights.

    Attributes:
        grad_clip: the maximum global gradient norm; null disables clipping.
        ema_decay: the EMA decay per step; 0 disables EMA (validation and export use the raw weights).
    """

    lr: float = 1e-3
    min_lr: float = 1e-7
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.9)
    warmup_iters: int = 0
    total_iters: int = 10_000
    grad_clip: float | None = None
    ema_decay: float = 0.999

    def check(self) -> None:
        if not (self.lr > 0 and 0 <= self.min_lr <= self.lr and self.weight_decay >= 0):
            raise ValueError("need lr > 0, 0 <= min_lr <= lr and weight_decay >= 0")
        if not (self.total_iters >= 1 and 0 <= self.warmup_iters < self.total_iters):
            raise ValueError("need total_iters >= 1 and 0 <= warmup_iters < total_iters")
        if not all(0 <= b < 1 for b in self.betas) or not 0 <= self.ema_decay < 1:
            raise ValueError("betas and ema_decay must be in [0, 1)")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"grad_clip must be > 0 or null, got {self.grad_clip}")


@dataclass
class TrainConfig:
    """The run: seed, how often to log/validate/checkpoint (in iterations; 0 = only at the end), where, on what.

    Attributes:
        run: the run folder's name under ``out_dir``; null takes the config file's stem.
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda``, ``cuda:1``...
        precision: ``bf16`` runs forward passes under CUDA autocast; exact resume is promised for ``fp32``.
        threads: torch CPU threads per process; null keeps torch's default.
    """

    seed: int = 0
    log_every: int = 50
    val_every: int = 1000
    ckpt_every: int = 1000
    out_dir: str = "runs"
    run: str | None = None
    device: str = "auto"
    precision: Literal["fp32", "bf16"] = "fp32"
    threads: int | None = None

    def check(self) -> None:
        if self.log_every < 1 or self.val_every < 0 or self.ckpt_every < 0:
            raise ValueError("need log_every >= 1, val_every >= 0 and ckpt_every >= 0")


@dataclass
class ValConfig:
    """A small fixed validation set, centre-cropped to ``crop`` (null: whole images).

    Attributes:
        max_images: the first N images of each paired or noisy source; synthetic sources make ``length``
            (default ``max_images``) samples of each type of their mix, from a fixed seed.
    """

    sources: list[SourceConfig] = field(default_factory=list)
    max_images: int = 8
    crop: int | None = 256


def _method_config(name: str) -> type:
    return get_method(name).config


def _default_method() -> Any:
    return _method_config("supervised")()


@dataclass
class Config:
    """A whole experiment. ``method`` is the dataclass registered by the method named in ``method.name``."""

    model: ModelConfig = field(default_factory=ModelConfig)
    method: Any = field(default_factory=_default_method, metadata={"tagged": _method_config})
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    val: ValConfig = field(default_factory=ValConfig)


def apply_override(raw: dict, item: str) -> str:
    """Apply one ``a.b.c=value`` (list entries by index: ``data.sources.0.repeat=2``) to a raw config dict.

    Returns:
        The key path that was set.
    """
    key, sep, text = item.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(parts):
        raise UirError(f"--set takes KEY=VALUE with a dotted KEY (e.g. optim.lr=1e-3), got {item!r}")
    node: Any = raw
    for depth, part in enumerate(parts):
        here = ".".join(parts[:depth]) or "the config"
        last = depth == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise UirError(f"--set {item}: {here} is a list of {len(node)}; use an index 0..{len(node) - 1}")
            index: int | str = int(part)
        elif isinstance(node, dict):
            index = part
            if not last and node.get(part) is None:
                node[part] = {}
        else:
            raise UirError(f"--set {item}: {here} is a value, not a section")
        if last:
            node[index] = parse_yaml(text, f"--set {item}")
        else:
            node = node[index]
    return key.strip()


def to_dict(cfg: Any) -> Any:
    """A config as plain dicts, lists and scalars (tuples become lists): what YAML and checkpoints hold."""
    return to_plain(cfg)


def config_from_dict(raw: Any, overrides: Sequence[str] = (), where: str = "config") -> Config:
    """Build a ``Config`` from a plain dict (a parsed file, a checkpoint's ``config``) plus ``--set`` items."""
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise UirError(f"{where}: expected a mapping of sections, got {describe_value(raw)}")
    raw = copy_plain(raw)
    overridden = {apply_override(raw, item): item for item in overrides}
    try:
        return parse(Config, raw, "")
    except ConfigError as err:
        for key, item in overridden.items():
            if err.key == key:
                raise UirError(f"--set {item}: {err.message}") from err
            if err.key and (_within(err.key, key) or _within(key, err.key)):
                raise UirError(f"--set {item}: {err}") from err
        raise UirError(f"{where}: {err}") from err


def _within(key: str, section: str) -> bool:
    return (key + ".").startswith(section + ".")


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> Config:
    """Read a YAML config strictly and apply ``--set`` overrides (values parsed as YAML).

    Raises:
        UirError: unreadable file, invalid YAML, an unknown key, a missing required key, a wrong type or value.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise UirError(f"{path}: cannot read the config ({err.strerror or err})") from err
    return config_from_dict(parse_yaml(text, str(path)), overrides, where=str(path))


def to_yaml(cfg: Config) -> str:
    """The config as YAML text, sections in order."""
    return yaml.safe_dump(to_dict(cfg), sort_keys=False, default_flow_style=False, allow_unicode=True)


def save_config(cfg: Config, path: str | Path) -> Path:
    """Write the config as YAML, atomically."""
    return write_text(path, to_yaml(cfg))
