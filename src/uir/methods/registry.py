"""The method registry: each method module registers its name, config dataclass and builder here when imported.

``uir.methods`` imports every method module, so the registry is full once ``uir.methods`` is imported;
``uir.config`` (a run's ``method:`` section) and ``uir.build`` read it through ``uir.methods``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from uir.checkpoint import load_checkpoint
from uir.errors import UirError
from uir.models.backbones import create_backbone
from uir.schema import ConfigError, parse


@dataclass(frozen=True)
class MethodSpec:
    """A registered method.

    Attributes:
        name: registry key (kebab-case), the ``method.name`` of configs.
        config: its config dataclass; its first field is ``name``.
        build: ``build(backbone, config, **helpers) -> nn.Module``; helpers are frozen networks made by
            ``uir.build`` (teachers, perceivers), none for ``supervised``. A builder with a keyword ``labels``
            also gets the training data's class names (a batch's ``label`` indexes them), e.g. ``maskdcpt``.
    """

    name: str
    config: type
    build: Callable[..., nn.Module]


METHODS: dict[str, MethodSpec] = {}


def register_method(name: str, config: type, build: Callable[..., nn.Module]) -> None:
    """Register a method under ``name``."""
    assert name not in METHODS, f"method {name} registered twice"
    METHODS[name] = MethodSpec(name, config, build)


def get_method(name: str) -> MethodSpec:
    """A registered method; the error lists the valid names."""
    if name not in METHODS:
        raise UirError(f"unknown method {name!r}; known: {', '.join(sorted(METHODS))}")
    return METHODS[name]


def build_method(backbone: nn.Module, config: Any, **helpers: nn.Module) -> nn.Module:
    """Build the method named by ``config.name`` around ``backbone``."""
    return get_method(config.name).build(backbone, config, **helpers)


@dataclass(frozen=True)
class TrainedRun:
    """A method restored from a training checkpoint (``method_from_checkpoint``).

    Attributes:
        method: the method, its backbone included, with the raw (not EMA) weights, in eval mode.
        config: its ``method:`` section (the registered config dataclass).
        backbone: the run's ``model.backbone`` preset; ``overrides`` its ``model.overrides``.
    """

    method: nn.Module
    config: Any
    backbone: str
    overrides: dict[str, Any]


def method_from_checkpoint(path: str | Path, name: str, what: str) -> TrainedRun:
    """The method ``name`` of a training checkpoint (or run folder), with its raw (not EMA) weights, in eval mode.

    Only the run's ``model`` and ``method`` sections are read, so the method layer needs no ``uir.config``.

    Args:
        path: a ``last.ckpt`` or the run folder holding it.
        name: the ``method.name`` the run must have.
        what: how the error names such a run (``"a MaskDCPT pre-training"``).

    Raises:
        UirError: an unreadable checkpoint, or a run of another method (one line).
    """
    path = Path(path)
    path = path / "last.ckpt" if path.is_dir() else path
    state = load_checkpoint(path)
    raw = state["config"]
    found = raw.get("method", {}).get("name", "supervised")
    if found != name:
        raise UirError(f"{path}: a {found!r} run, not {what} (method.name: {name})")
    try:
        config = parse(get_method(name).config, raw["method"], "method")
    except ConfigError as err:
        raise UirError(f"{path}: {err}") from err
    model = raw.get("model", {})
    backbone, overrides = model.get("backbone", "nafnet-cpu"), dict(model.get("overrides") or {})
    method = get_method(name).build(create_backbone(backbone, **overrides), config, labels=state["labels"])
    method.load_state_dict({**{f"backbone.{k}": v for k, v in state["backbone"].items()}, **state["method"]})
    return TrainedRun(method.eval(), config, backbone, overrides)
